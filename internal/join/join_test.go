package join_test

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"testing"

	"github.com/ledgerd/ledgerd/internal/join"
)

func TestSealOpen(t *testing.T) {
	priv, pub, err := join.NewEncryptionKey()
	if err != nil {
		t.Fatal(err)
	}
	secret := bytes.Repeat([]byte{7}, 32)
	sealed, err := join.SealSecrets(pub, join.Secrets{LedgerSecret: secret, ServiceKey: []byte("key")})
	if err != nil {
		t.Fatal(err)
	}
	s, err := join.OpenSecrets(priv, sealed)
	if err != nil || !bytes.Equal(s.LedgerSecret, secret) || string(s.ServiceKey) != "key" {
		t.Fatalf("%+v %v", s, err)
	}
	other, _, _ := join.NewEncryptionKey()
	if _, err := join.OpenSecrets(other, sealed); err == nil {
		t.Fatal("another key opened the secrets")
	}
	sealed[len(sealed)-1] ^= 1
	if _, err := join.OpenSecrets(priv, sealed); err == nil {
		t.Fatal("tampered secrets opened")
	}
	if _, err := join.OpenSecrets(priv, sealed[:10]); err == nil {
		t.Fatal("short secrets opened")
	}
}

func TestRequestCheck(t *testing.T) {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: pkix.Name{CommonName: "CCF Node"}}, key)
	if err != nil {
		t.Fatal(err)
	}
	_, enc, _ := join.NewEncryptionKey()
	good := join.Request{CSR: string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der})),
		EncryptionKey: enc, RPCAddress: "127.0.0.1:8443", PeerAddress: "localhost:8444"}
	if csr, err := good.Check(); err != nil || !csr.PublicKey.(*ecdsa.PublicKey).Equal(&key.PublicKey) {
		t.Fatalf("good request: %v", err)
	}
	for name, mod := range map[string]func(r *join.Request){
		"no csr":        func(r *join.Request) { r.CSR = "" },
		"tampered csr":  func(r *join.Request) { b := []byte(r.CSR); b[100] ^= 1; r.CSR = string(b) },
		"no enc key":    func(r *join.Request) { r.EncryptionKey = "" },
		"ecdsa enc key": func(r *join.Request) { r.EncryptionKey = r.CSR },
		"bad address":   func(r *join.Request) { r.PeerAddress = "nowhere" },
		"bad port":      func(r *join.Request) { r.RPCAddress = "h:0" },
	} {
		r := good
		mod(&r)
		if _, err := r.Check(); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}
