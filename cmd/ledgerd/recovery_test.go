package main

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"os"
	"path/filepath"
	"testing"

	"github.com/ledgerd/ledgerd/internal/ledger"
	"github.com/ledgerd/ledgerd/internal/recovery"
	"github.com/ledgerd/ledgerd/internal/testbin"
)

// TestFirstStartRecoveryMember: the first start makes member0 a recovery
// member, as CCF's sandbox does. Its share, served at
// /gov/recovery/encrypted-shares and decrypted with member0_enc_privk.pem,
// recovers the node's ledger secret with the recovery shares the genesis
// transaction wrote in the ledger.
func TestFirstStartRecoveryMember(t *testing.T) {
	bin := testbin.Command(t, "", "github.com/ledgerd/ledgerd/cmd/ledgerd")
	data := filepath.Join(t.TempDir(), "data")
	p := startLedgerd(t, bin, "--data", data, "--ledger-id", "recovery")
	privPath := filepath.Join(data, memberEncPrivFile)
	if fi, err := os.Stat(privPath); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("%s: %v, %v", privPath, fi, err)
	}
	announced := false
	for _, line := range p.stdout {
		announced = announced || line == "consortium member recovery key (decrypts its recovery share): "+privPath
	}
	if !announced {
		t.Errorf("the start-up output does not name %s:\n%q", privPath, p.stdout)
	}

	member, err := readCertificate(filepath.Join(data, memberFile))
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(member.Raw)
	id := hex.EncodeToString(sum[:])
	c := httpsClient(t, data)
	status, _, body := call(t, c, "GET", "https://"+p.addr+"/gov/recovery/encrypted-shares/"+id+"?api-version=2024-07-01", "")
	if status != 200 || body["memberId"] != id {
		t.Fatalf("encrypted share: %d %v", status, body)
	}
	enc, err := base64.StdEncoding.DecodeString(body["encryptedShare"].(string))
	if err != nil {
		t.Fatal(err)
	}
	privPEM, err := os.ReadFile(privPath)
	if err != nil {
		t.Fatal(err)
	}
	key, err := recovery.ParsePrivateKey(privPEM)
	if err != nil {
		t.Fatal(err)
	}
	share, err := recovery.DecryptShare(key, enc)
	if err != nil {
		t.Fatal(err)
	}
	p.stop(t)

	// The public state as the ledger holds it.
	var writes []ledger.MapWrites
	err = ledger.Walk(filepath.Join(data, "ledger"), func(_ uint64, raw []byte) error {
		e, err := ledger.ParseEntry(raw)
		if err != nil {
			return err
		}
		d, err := e.PublicDomain()
		if err != nil {
			return err
		}
		writes = append(writes, d.Maps...)
		return nil
	}, ledger.WalkOptions{})
	if err != nil {
		t.Fatal(err)
	}
	secret, err := recovery.Recover([][]byte{share}, recovery.WriteSetState(writes))
	if err != nil {
		t.Fatal(err)
	}
	want, err := os.ReadFile(filepath.Join(data, "ledger.secret"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(secret, want) {
		t.Fatal("the recovered secret is not the node's ledger secret")
	}
}

// TestEncryptionKeyFiles: the key pair is created once, reused after, and
// the public key is rebuilt from the private key if it alone is lost; it
// is not created when creation is not asked for.
func TestEncryptionKeyFiles(t *testing.T) {
	dir := t.TempDir()
	if pub, created, err := encryptionKey(dir, false); err != nil || pub != nil || created != nil {
		t.Fatalf("without create: %q, %v, %v", pub, created, err)
	}
	pub, created, err := encryptionKey(dir, true)
	if err != nil || len(created) != 2 {
		t.Fatalf("create: %v, %v", created, err)
	}
	if _, err := recovery.ParsePublicKey(pub); err != nil {
		t.Fatal(err)
	}
	again, created, err := encryptionKey(dir, true)
	if err != nil || created != nil || !bytes.Equal(again, pub) {
		t.Fatalf("second call: created %v, same key %v, %v", created, bytes.Equal(again, pub), err)
	}
	if err := os.Remove(filepath.Join(dir, memberEncPubFile)); err != nil {
		t.Fatal(err)
	}
	rebuilt, created, err := encryptionKey(dir, false)
	if err != nil || !bytes.Equal(rebuilt, pub) || created != nil {
		t.Fatalf("rebuilt from the private key: same %v, created %v, %v", bytes.Equal(rebuilt, pub), created, err)
	}
	if _, err := os.Stat(filepath.Join(dir, memberEncPubFile)); err == nil {
		t.Fatal("the public key was saved without create")
	}
	rebuilt, created, err = encryptionKey(dir, true)
	if err != nil || !bytes.Equal(rebuilt, pub) || len(created) != 1 || filepath.Base(created[0]) != memberEncPubFile {
		t.Fatalf("rebuilt and saved: same %v, created %v, %v", bytes.Equal(rebuilt, pub), created, err)
	}
}
