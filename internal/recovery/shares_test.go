package recovery_test

import (
	"bytes"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/ledgerd/ledgerd/internal/ledger"
	"github.com/ledgerd/ledgerd/internal/recovery"
	"github.com/ledgerd/ledgerd/internal/tables"
)

// mapState is a State held in a map, written by the tests.
type mapState map[string]map[string][]byte

func (s mapState) Get(name string, key []byte) ([]byte, bool) {
	v, ok := s[name][string(key)]
	return v, ok
}

func (s mapState) Range(name string, fn func(key, value []byte) bool) {
	recovery.WriteSetState(s.writes(name)).Range(name, fn)
}

func (s mapState) writes(name string) []ledger.MapWrites {
	m := ledger.MapWrites{Name: name}
	for k, v := range s[name] {
		m.Writes = append(m.Writes, ledger.KV{Key: []byte(k), Value: v})
	}
	return []ledger.MapWrites{m}
}

func (s mapState) set(name, key string, value []byte) {
	if s[name] == nil {
		s[name] = map[string][]byte{}
	}
	s[name][key] = value
}

func (s mapState) apply(writes []ledger.MapWrites) {
	for _, m := range writes {
		for _, kv := range m.Writes {
			s.set(m.Name, string(kv.Key), kv.Value)
		}
	}
}

// keyPair is a member's encryption key pair, PEM.
type keyPair struct{ priv, pub []byte }

var (
	keysOnce sync.Once
	keys     []keyPair
	keysErr  error
)

// memberKeys returns n encryption key pairs (made once: RSA key generation
// is slow).
func memberKeys(t *testing.T, n int) []keyPair {
	t.Helper()
	keysOnce.Do(func() {
		for range 4 {
			priv, pub, err := recovery.NewEncryptionKey()
			if err != nil {
				keysErr = err
				return
			}
			keys = append(keys, keyPair{priv, pub})
		}
	})
	if keysErr != nil {
		t.Fatal(keysErr)
	}
	return keys[:n]
}

func info(status, role string) []byte {
	v := map[string]string{"status": status}
	if role != "" {
		v["recovery_role"] = role
	}
	b, _ := json.Marshal(v)
	return b
}

// consortium returns a state with active recovery members m0..m(n-1), the
// given threshold (0: no service configuration), and their private keys
// by id.
func consortium(t *testing.T, n, threshold int) (mapState, map[string]*rsa.PrivateKey) {
	t.Helper()
	st := mapState{}
	privs := map[string]*rsa.PrivateKey{}
	for i, kp := range memberKeys(t, n) {
		id := fmt.Sprintf("m%d", i)
		st.set(tables.MembersInfoMap, id, info("Active", ""))
		st.set(tables.MembersEncryptionKeysMap, id, kp.pub)
		priv, err := recovery.ParsePrivateKey(kp.priv)
		if err != nil {
			t.Fatal(err)
		}
		privs[id] = priv
	}
	if threshold > 0 {
		setThreshold(st, threshold)
	}
	return st, privs
}

func setThreshold(st mapState, k int) {
	st.set(tables.ServiceConfigMap, string(tables.SingletonKey),
		[]byte(fmt.Sprintf(`{"reconfiguration_type":"OneTransaction","recovery_threshold":%d}`, k)))
}

// decrypted returns member id's share, decrypted with its private key.
func decrypted(t *testing.T, st mapState, privs map[string]*rsa.PrivateKey, id string) []byte {
	t.Helper()
	enc, ok, err := recovery.EncryptedShare(st, id)
	if err != nil || !ok {
		t.Fatalf("share of %s: ok=%v, %v", id, ok, err)
	}
	share, err := recovery.DecryptShare(privs[id], enc)
	if err != nil {
		t.Fatal(err)
	}
	return share
}

func TestEncryptionKeyRoundTrip(t *testing.T) {
	kp := memberKeys(t, 2)
	pub, err := recovery.ParsePublicKey(kp[0].pub)
	if err != nil {
		t.Fatal(err)
	}
	priv, err := recovery.ParsePrivateKey(kp[0].priv)
	if err != nil {
		t.Fatal(err)
	}
	share := bytes.Repeat([]byte{7}, recovery.ShareSize)
	enc, err := recovery.EncryptShare(pub, share, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := recovery.DecryptShare(priv, enc); err != nil || !bytes.Equal(got, share) {
		t.Fatalf("round trip: %x, %v", got, err)
	}
	// It is RSA-OAEP with SHA-256 and no label, as CCF's rsa_oaep_wrap:
	// the standard library's own OAEP decryption reads it...
	if got, err := rsa.DecryptOAEP(sha256.New(), nil, priv, enc, nil); err != nil || !bytes.Equal(got, share) {
		t.Fatalf("OAEP-SHA256 decryption: %x, %v", got, err)
	}
	// ...and OAEP with SHA-1 (OpenSSL's default) is not what is expected.
	sha1Enc, err := rsa.EncryptOAEP(sha1.New(), rand.Reader, pub, share, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := recovery.DecryptShare(priv, sha1Enc); err == nil {
		t.Fatal("a share encrypted with OAEP-SHA1 decrypted")
	}
	// Another member's key cannot decrypt it.
	other, err := recovery.ParsePrivateKey(kp[1].priv)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := recovery.DecryptShare(other, enc); err == nil {
		t.Fatal("another member's key decrypted the share")
	}
}

func TestParsePublicKeyRefuses(t *testing.T) {
	kp := memberKeys(t, 1)
	for name, p := range map[string][]byte{
		"not PEM":     []byte("hello"),
		"private key": kp[0].priv,
		"garbage":     []byte("-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n"),
	} {
		if _, err := recovery.ParsePublicKey(p); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

// TestSharesWrites: three recovery members, threshold 2. Each member's
// share decrypts with its key; any two reconstruct the ledger secret, one
// does not.
func TestSharesWrites(t *testing.T) {
	st, privs := consortium(t, 3, 2)
	// Members that get no share: an Accepted one, one without a key, a
	// NonParticipant.
	extra := memberKeys(t, 4)[3]
	st.set(tables.MembersInfoMap, "accepted", info("Accepted", ""))
	st.set(tables.MembersEncryptionKeysMap, "accepted", extra.pub)
	st.set(tables.MembersInfoMap, "nokey", info("Active", ""))
	st.set(tables.MembersInfoMap, "nonparticipant", info("Active", "NonParticipant"))
	st.set(tables.MembersEncryptionKeysMap, "nonparticipant", extra.pub)

	secret := bytes.Repeat([]byte{0x5c}, 32)
	writes, err := recovery.SharesWrites(st, secret, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	if len(writes) != 1 || writes[0].Name != tables.RecoverySharesMap || len(writes[0].Writes) != 1 ||
		!bytes.Equal(writes[0].Writes[0].Key, tables.SingletonKey) {
		t.Fatalf("writes %+v", writes)
	}
	var raw map[string]any
	if err := json.Unmarshal(writes[0].Writes[0].Value, &raw); err != nil {
		t.Fatal(err)
	}
	if _, ok := raw["wrapped_latest_ledger_secret"].(string); !ok || len(raw) != 2 {
		t.Fatalf("recovery shares value %v: want CCF's wrapped_latest_ledger_secret and encrypted_shares", raw)
	}
	if bytes.Contains(writes[0].Writes[0].Value, secret) {
		t.Fatal("the ledger secret is in the clear in the write")
	}
	st.apply(writes)

	info, ok, err := recovery.Info(st)
	if err != nil || !ok {
		t.Fatal(ok, err)
	}
	if len(info.EncryptedShares) != 3 {
		t.Fatalf("shares for %d members, want m0, m1, m2", len(info.EncryptedShares))
	}
	for _, id := range []string{"accepted", "nokey", "nonparticipant"} {
		if _, ok, _ := recovery.EncryptedShare(st, id); ok {
			t.Errorf("%s has a share", id)
		}
	}
	shares := map[string][]byte{}
	for _, id := range []string{"m0", "m1", "m2"} {
		shares[id] = decrypted(t, st, privs, id)
		if len(shares[id]) != recovery.ShareSize {
			t.Fatalf("share of %d bytes", len(shares[id]))
		}
	}
	for _, pair := range [][2]string{{"m0", "m1"}, {"m0", "m2"}, {"m2", "m1"}} {
		got, err := recovery.Recover([][]byte{shares[pair[0]], shares[pair[1]]}, st)
		if err != nil || !bytes.Equal(got, secret) {
			t.Fatalf("%v: %x, %v; want the secret", pair, got, err)
		}
	}
	all, err := recovery.Recover([][]byte{shares["m0"], shares["m1"], shares["m2"]}, st)
	if err != nil || !bytes.Equal(all, secret) {
		t.Fatalf("all three: %x, %v", all, err)
	}
	for id, s := range shares {
		if _, err := recovery.Recover([][]byte{s}, st); !errors.Is(err, recovery.ErrTooFewShares) {
			t.Fatalf("%s alone: %v, want ErrTooFewShares", id, err)
		}
	}
	// The threshold is not only counted: with the configuration lowered to
	// 1 after the shares were issued, one share still does not unwrap the
	// secret.
	setThreshold(st, 1)
	for id, s := range shares {
		if got, err := recovery.Recover([][]byte{s}, st); !errors.Is(err, recovery.ErrWrongShares) {
			t.Fatalf("%s alone under threshold 1: %x, %v; want ErrWrongShares", id, got, err)
		}
	}
	setThreshold(st, 2)
	// A changed share is refused, never taken for the right secret.
	bad := bytes.Clone(shares["m1"])
	bad[5] ^= 0x80
	if got, err := recovery.Recover([][]byte{shares["m0"], bad}, st); !errors.Is(err, recovery.ErrWrongShares) {
		t.Fatalf("a changed share: %x, %v; want ErrWrongShares", got, err)
	}

	// A refresh issues new shares: the old ones no longer recover.
	again, err := recovery.SharesWrites(st, secret, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	st.apply(again)
	if _, err := recovery.Recover([][]byte{shares["m0"], shares["m1"]}, st); !errors.Is(err, recovery.ErrWrongShares) {
		t.Fatalf("shares from before a refresh: %v, want ErrWrongShares", err)
	}
	got, err := recovery.Recover([][]byte{decrypted(t, st, privs, "m0"), decrypted(t, st, privs, "m2")}, st)
	if err != nil || !bytes.Equal(got, secret) {
		t.Fatalf("after the refresh: %x, %v", got, err)
	}
}

func TestSharesWritesDefaultsAndLimits(t *testing.T) {
	secret := bytes.Repeat([]byte{1}, 32)
	// No recovery member: nothing to write, no error.
	st := mapState{}
	st.set(tables.MembersInfoMap, "m", info("Active", ""))
	if writes, err := recovery.SharesWrites(st, secret, rand.Reader); err != nil || writes != nil {
		t.Fatalf("no recovery member: %v, %v", writes, err)
	}
	// No service configuration: threshold 1, each share alone recovers.
	st, privs := consortium(t, 2, 0)
	writes, err := recovery.SharesWrites(st, secret, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	st.apply(writes)
	for _, id := range []string{"m0", "m1"} {
		if got, err := recovery.Recover([][]byte{decrypted(t, st, privs, id)}, st); err != nil || !bytes.Equal(got, secret) {
			t.Fatalf("%s alone, default threshold: %x, %v", id, got, err)
		}
	}
	// A threshold above the number of recovery members is an error.
	st, _ = consortium(t, 2, 3)
	if _, err := recovery.SharesWrites(st, secret, rand.Reader); err == nil {
		t.Fatal("threshold 3 of 2 members: no error")
	}
	// A member's key that does not parse is an error.
	st, _ = consortium(t, 1, 1)
	st.set(tables.MembersEncryptionKeysMap, "m0", []byte("not a key"))
	if _, err := recovery.SharesWrites(st, secret, rand.Reader); err == nil {
		t.Fatal("a malformed encryption key: no error")
	}
	// No shares recorded.
	if _, err := recovery.Recover([][]byte{make([]byte, recovery.ShareSize)}, mapState{}); !errors.Is(err, recovery.ErrNoShares) {
		t.Fatalf("no shares: %v", err)
	}
}

// FuzzRecover feeds arbitrary recovery-shares records and submitted shares
// to EncryptedShare and Recover: they never panic, and Recover never
// returns a secret without an error but from a record that authenticates
// it.
func FuzzRecover(f *testing.F) {
	f.Add([]byte(`{"wrapped_latest_ledger_secret":"AAAA","encrypted_shares":{"m":"AA=="}}`), make([]byte, 2*recovery.ShareSize))
	f.Add([]byte(`{"wrapped_latest_ledger_secret":"`+strings.Repeat("A", 80)+`","encrypted_shares":{}}`), bytes.Repeat([]byte{1}, recovery.ShareSize))
	f.Add([]byte(`null`), []byte{})
	f.Fuzz(func(t *testing.T, record, submitted []byte) {
		st := mapState{}
		st.set(tables.RecoverySharesMap, string(tables.SingletonKey), record)
		recovery.EncryptedShare(st, "m")
		var shares [][]byte
		for len(submitted) >= recovery.ShareSize && len(shares) < 4 {
			shares = append(shares, submitted[:recovery.ShareSize])
			submitted = submitted[recovery.ShareSize:]
		}
		if len(submitted) > 0 {
			shares = append(shares, submitted)
		}
		secret, err := recovery.Recover(shares, st)
		if err == nil && secret == nil {
			t.Fatal("no secret and no error")
		}
	})
}

// TestRecoveryOwners: a recovery owner gets the whole wrapping key (index
// 0), which recovers alone whatever the threshold, as CCF's full key
// share; participants still need the threshold.
func TestRecoveryOwners(t *testing.T) {
	secret := bytes.Repeat([]byte{0x0f}, 32)
	st, privs := consortium(t, 3, 2)
	st.set(tables.MembersInfoMap, "m2", info("Active", "Owner"))
	writes, err := recovery.SharesWrites(st, secret, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	st.apply(writes)
	owner := decrypted(t, st, privs, "m2")
	if !recovery.IsFullKey(owner) {
		t.Fatalf("the owner's share %x is not a full key", owner[:1])
	}
	if got, err := recovery.Recover([][]byte{owner}, st); err != nil || !bytes.Equal(got, secret) {
		t.Fatalf("the owner alone: %x, %v", got, err)
	}
	p0, p1 := decrypted(t, st, privs, "m0"), decrypted(t, st, privs, "m1")
	if recovery.IsFullKey(p0) || recovery.IsFullKey(p1) {
		t.Fatal("a participant holds a full key")
	}
	if _, err := recovery.Recover([][]byte{p0}, st); !errors.Is(err, recovery.ErrTooFewShares) {
		t.Fatalf("one participant: %v", err)
	}
	if got, err := recovery.Recover([][]byte{p0, p1}, st); err != nil || !bytes.Equal(got, secret) {
		t.Fatalf("two participants: %x, %v", got, err)
	}
	// Two participants cannot meet threshold 3 even with an owner.
	setThreshold(st, 3)
	if _, err := recovery.SharesWrites(st, secret, rand.Reader); err == nil {
		t.Fatal("threshold 3 with 2 participants: no error")
	}

	// Owners only: threshold 1, each owner recovers alone; threshold 2 is
	// an error.
	st, privs = consortium(t, 2, 1)
	st.set(tables.MembersInfoMap, "m0", info("Active", "Owner"))
	st.set(tables.MembersInfoMap, "m1", info("Active", "Owner"))
	writes, err = recovery.SharesWrites(st, secret, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	st.apply(writes)
	for _, id := range []string{"m0", "m1"} {
		if got, err := recovery.Recover([][]byte{decrypted(t, st, privs, id)}, st); err != nil || !bytes.Equal(got, secret) {
			t.Fatalf("owner %s: %x, %v", id, got, err)
		}
	}
	setThreshold(st, 2)
	if _, err := recovery.SharesWrites(st, secret, rand.Reader); err == nil {
		t.Fatal("owners only with threshold 2: no error")
	}

	// A key without member info is an error, as in CCF.
	st, _ = consortium(t, 1, 1)
	st.set(tables.MembersEncryptionKeysMap, "ghost", memberKeys(t, 1)[0].pub)
	if _, err := recovery.SharesWrites(st, secret, rand.Reader); err == nil || !strings.Contains(err.Error(), "ghost") {
		t.Fatalf("a key without member info: %v", err)
	}
}
