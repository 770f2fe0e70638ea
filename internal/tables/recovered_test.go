package tables

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"math"
	"math/big"
	"testing"
	"time"

	"github.com/ledgerd/ledgerd/internal/ledger"
	"github.com/ledgerd/ledgerd/receipt"
)

func testCA(t *testing.T, cn string) (*x509.Certificate, []byte, *ecdsa.PrivateKey) {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: cn},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IsCA: true,
		BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	return cert, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), key
}

// TestEndorsePreviousService: a receipt signed by a node of the previous
// service verifies against the previous service certificate, not against
// the next one, unless it carries the endorsement of the previous
// certificate by the next service key (CCF's service endorsements); an
// endorsement by another key does not do.
func TestEndorsePreviousService(t *testing.T) {
	prev, prevPEM, prevKey := testCA(t, "CCF Network")
	next, _, nextKey := testCA(t, "CCF Network")
	nodeKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "CCF Node"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, prev, &nodeKey.PublicKey, prevKey)
	if err != nil {
		t.Fatal(err)
	}
	root := sha256.Sum256([]byte("a root"))
	sig, _ := ecdsa.SignASN1(rand.Reader, nodeKey, root[:])
	r := &receipt.Receipt{Cert: string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})),
		IsSignatureTransaction: true, Leaf: hex.EncodeToString(root[:]), Signature: base64.StdEncoding.EncodeToString(sig)}
	if err := r.Verify(prev); err != nil {
		t.Fatalf("against the previous certificate: %v", err)
	}
	if err := r.Verify(next); !errors.Is(err, receipt.ErrNotEndorsed) {
		t.Fatalf("against the next certificate without endorsement: %v", err)
	}
	endorsement, err := EndorsePreviousService(prevPEM, next, nextKey)
	if err != nil {
		t.Fatal(err)
	}
	r.ServiceEndorsements = []string{string(endorsement)}
	if err := r.Verify(next); err != nil {
		t.Fatalf("against the next certificate with the endorsement: %v", err)
	}
	other, _, otherKey := testCA(t, "CCF Network") // same name as next, another key
	forged, err := EndorsePreviousService(prevPEM, other, otherKey)
	if err != nil {
		t.Fatal(err)
	}
	r.ServiceEndorsements = []string{string(forged)}
	if err := r.Verify(next); !errors.Is(err, receipt.ErrNotEndorsed) {
		t.Fatalf("an endorsement by another key: %v", err)
	}
}

// TestKeyringPrevious: a recovered service's keyring refuses the previous
// service's seqnos (ErrNotRecovered) until the recovered secrets are set,
// ignores the previous service's rekeys for its own seqnos, and records
// the recovered secrets wrapped for its service key, which only that key
// opens.
func TestKeyringPrevious(t *testing.T) {
	own := make([]byte, 32)
	rand.Read(own)
	svc, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	k, err := NewKeyring(own, svc)
	if err != nil {
		t.Fatal(err)
	}
	if err := k.SetPrevious(10, nil); err != nil {
		t.Fatal(err)
	}
	oldRekeys := []Rekey{{Seqno: 4, Value: []byte(`{"someone else's":[]}`)}}
	if _, err := k.AEAD(oldRekeys, 5); !errors.Is(err, ErrNotRecovered) {
		t.Fatalf("previous seqno before recovery: %v", err)
	}
	if s, err := k.Secret(oldRekeys, 11); err != nil || !bytes.Equal(s, own) {
		t.Fatalf("own seqno: %x %v", s, err)
	}
	if s, err := k.Secret(oldRekeys, math.MaxUint64); err != nil || !bytes.Equal(s, own) {
		t.Fatalf("latest: %x %v", s, err)
	}
	s1, s2 := make([]byte, 32), make([]byte, 32)
	rand.Read(s1)
	rand.Read(s2)
	secrets := []SeqSecret{{From: 1, Secret: s1}, {From: 5, Secret: s2}}
	w, err := k.RecoveredWrites(10, secrets, nil)
	if err != nil {
		t.Fatal(err)
	}
	value := w[0].Writes[0].Value
	if bytes.Contains(value, s1) || bytes.Contains(value, []byte(base64.StdEncoding.EncodeToString(s1))) {
		t.Fatal("a recovered secret is in clear in its record")
	}
	other, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	ko, _ := NewKeyring(own, other)
	if _, _, err := ko.OpenRecovered(value); err == nil {
		t.Fatal("another service key opened the recovered secrets")
	}
	end, got, err := k.OpenRecovered(value)
	if err != nil || end != 10 || len(got) != 2 {
		t.Fatalf("OpenRecovered: %d %v %v", end, got, err)
	}
	if err := k.SetPrevious(end, got); err != nil {
		t.Fatal(err)
	}
	for seqno, want := range map[uint64][]byte{1: s1, 4: s1, 5: s2, 10: s2, 11: own} {
		if s, err := k.Secret(oldRekeys, seqno); err != nil || !bytes.Equal(s, want) {
			t.Fatalf("secret of %d after recovery: %v", seqno, err)
		}
	}
	if !bytes.Equal(k.OwnFirst(), own) {
		t.Fatal("OwnFirst is not the keyring's own first secret")
	}
}

// TestPreviousServiceOf: a recovery transaction's write set names the
// previous service's certificate and last seqno; one without the seqno is
// an error, and any other write set is not a recovery transaction.
func TestPreviousServiceOf(t *testing.T) {
	_, certPEM, _ := testCA(t, "previous")
	rec := []ledger.MapWrites{
		{Name: ServiceInfoMap, Writes: []ledger.KV{{Key: SingletonKey, Value: []byte(`{"cert":"x","status":"Recovering","previous_service_identity_version":42}`)}}},
		{Name: PreviousServiceIdentityMap, Writes: []ledger.KV{{Key: SingletonKey, Value: certPEM}}},
	}
	p, ok, err := PreviousServiceOf(rec)
	if err != nil || !ok || p.End != 42 || p.Cert != string(certPEM) {
		t.Fatalf("PreviousServiceOf = %+v %v %v", p, ok, err)
	}
	if _, _, err := PreviousServiceOf(rec[1:]); err == nil {
		t.Fatal("a recovery transaction without previous_service_identity_version was accepted")
	}
	if _, ok, err := PreviousServiceOf(rec[:1]); ok || err != nil {
		t.Fatalf("a service record alone: %v %v", ok, err)
	}
}

// TestPreviousLink: the link a recovered service's opening writes decrypts,
// with that service's latest secret, to the previous service's latest
// secret and names the seqno it applied from; another secret cannot open it.
func TestPreviousLink(t *testing.T) {
	own, prev1, prev2 := bytes.Repeat([]byte{1}, 32), bytes.Repeat([]byte{2}, 32), bytes.Repeat([]byte{3}, 32)
	k, err := NewKeyring(own, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := k.PreviousLinkWrites(own, nil); !errors.Is(err, ErrNotRecovered) {
		t.Fatalf("a link before the previous secrets are recovered: %v", err)
	}
	if err := k.SetPrevious(20, []SeqSecret{{From: 1, Secret: prev1}, {From: 8, Secret: prev2}}); err != nil {
		t.Fatal(err)
	}
	ws, err := k.PreviousLinkWrites(own, nil)
	if err != nil || len(ws) != 1 || ws[0].Name != HistoricalLedgerSecretMap {
		t.Fatalf("PreviousLinkWrites = %v %v", ws, err)
	}
	if _, rekey := RekeyOf(ws); rekey {
		t.Fatal("the link looks like a rekey")
	}
	info, got, err := PreviousSecret(ws[0].Writes[0].Value, own)
	if err != nil || !bytes.Equal(got, prev2) || info.Version != 8 {
		t.Fatalf("PreviousSecret of the link = %v %x %v", info, got, err)
	}
	if _, _, err := PreviousSecret(ws[0].Writes[0].Value, prev1); err == nil {
		t.Fatal("the link opened with another secret")
	}
}
