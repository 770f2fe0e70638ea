package gov_test

import (
	"bytes"
	"strings"
	"testing"

	"github.com/ledgerd/ledgerd/internal/gov"
	"github.com/ledgerd/ledgerd/internal/recovery"
	"github.com/ledgerd/ledgerd/internal/tables"
)

// TestGenesisRecoveryMember: a genesis member with an encryption key is a
// recovery member: its key is recorded and it holds a share of the ledger
// secret (threshold 1, no service configuration) that recovers it alone.
func TestGenesisRecoveryMember(t *testing.T) {
	m0, id0 := memberPEM(t)
	m1, id1 := memberPEM(t)
	priv, pub, err := recovery.NewEncryptionKey()
	if err != nil {
		t.Fatal(err)
	}
	secret := bytes.Repeat([]byte{0x42}, 32)
	ws, err := gov.Genesis{Members: [][]byte{m0, m1}, EncryptionKeys: [][]byte{pub}, LedgerSecret: secret}.Writes()
	if err != nil {
		t.Fatal(err)
	}
	st := mapState{}
	st.apply(ws)
	if got, ok := st.Get(tables.MembersEncryptionKeysMap, []byte(id0)); !ok || !bytes.Equal(got, pub) {
		t.Fatalf("encryption key of member 0: %q, %v", got, ok)
	}
	if _, ok := st.Get(tables.MembersEncryptionKeysMap, []byte(id1)); ok {
		t.Fatal("member 1 has an encryption key")
	}
	if _, ok, _ := recovery.EncryptedShare(st, id1); ok {
		t.Fatal("member 1 has a share")
	}
	enc, ok, err := recovery.EncryptedShare(st, id0)
	if err != nil || !ok {
		t.Fatalf("share of member 0: %v, %v", ok, err)
	}
	key, err := recovery.ParsePrivateKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	share, err := recovery.DecryptShare(key, enc)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := recovery.Recover([][]byte{share}, st); err != nil || !bytes.Equal(got, secret) {
		t.Fatalf("recovered %x, %v; want the ledger secret", got, err)
	}

	// Without recovery members genesis writes no shares.
	ws, err = gov.Genesis{Members: [][]byte{m0}, LedgerSecret: secret}.Writes()
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range ws {
		if w.Name == tables.RecoverySharesMap || w.Name == tables.MembersEncryptionKeysMap {
			t.Fatalf("genesis without recovery members writes %s", w.Name)
		}
	}

	for name, g := range map[string]gov.Genesis{
		"no secret":     {Members: [][]byte{m0}, EncryptionKeys: [][]byte{pub}},
		"bad key":       {Members: [][]byte{m0}, EncryptionKeys: [][]byte{[]byte("not a key")}, LedgerSecret: secret},
		"too many keys": {Members: [][]byte{m0}, EncryptionKeys: [][]byte{pub, pub}, LedgerSecret: secret},
	} {
		if _, err := g.Writes(); err == nil || !strings.HasPrefix(err.Error(), "gov: ") {
			t.Errorf("%s: %v", name, err)
		}
	}
}
