package client

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"io"
	"math/big"
	"os"
	"path/filepath"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/ledgerd/ledgerd/internal/cose"
)

// The signer is checked against the node's own parser and verifier
// (internal/cose), which was written independently of it.

// testMember returns a self-signed member certificate and its key on curve.
func testMember(t testing.TB, curve elliptic.Curve) (*x509.Certificate, *ecdsa.PrivateKey) {
	t.Helper()
	key, err := ecdsa.GenerateKey(curve, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(7),
		Subject:      pkix.Name{CommonName: "member"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return cert, key
}

func TestMemberSignerEnvelopesVerifyWithTheNodesParser(t *testing.T) {
	curves := []struct {
		curve elliptic.Curve
		alg   int64
	}{{elliptic.P256(), cose.AlgES256}, {elliptic.P384(), cose.AlgES384}, {elliptic.P521(), cose.AlgES512}}
	msgs := []struct {
		typ, proposalID string
		payload         []byte
	}{
		{MsgProposal, "", []byte(`{"actions":[{"name":"set_user","args":{"cert":"x"}}]}`)},
		{MsgBallot, "a1b2c3", []byte(`{"ballot":"` + BallotYes + `"}`)},
		{MsgWithdrawal, "a1b2c3", nil},
		{MsgAck, "", []byte(`{"stateDigest":"00ff"}`)},
		{MsgStateDigest, "", nil},
	}
	for _, cv := range curves {
		cert, key := testMember(t, cv.curve)
		s, err := NewMemberSigner(cert, key)
		if err != nil {
			t.Fatal(err)
		}
		if s.MemberID() != cose.MemberID(cert.Raw) {
			t.Fatalf("member id %s, the node computes %s", s.MemberID(), cose.MemberID(cert.Raw))
		}
		for _, m := range msgs {
			at := time.Unix(1_790_000_000, 0)
			env, err := s.signAt(m.typ, m.proposalID, m.payload, at)
			if err != nil {
				t.Fatal(err)
			}
			got, err := cose.Parse(env)
			if err != nil {
				t.Fatalf("%s %s: the node's parser refuses the envelope: %v", cv.curve.Params().Name, m.typ, err)
			}
			if err := got.CheckGovernance(m.typ); err != nil {
				t.Fatalf("%s: %v", m.typ, err)
			}
			if err := got.Verify(&key.PublicKey); err != nil {
				t.Fatalf("%s %s: %v", cv.curve.Params().Name, m.typ, err)
			}
			if got.Alg != cv.alg || string(got.KID) != s.MemberID() || got.CreatedAt != uint64(at.Unix()) {
				t.Fatalf("headers alg %d kid %s created_at %d", got.Alg, got.KID, got.CreatedAt)
			}
			if err := got.CheckMemberID(cose.MemberID(cert.Raw)); err != nil {
				t.Fatal(err)
			}
			wantID := cose.RequiresProposalID(m.typ)
			if got.HasProposalID != wantID || (wantID && got.CheckProposalID(m.proposalID) != nil) {
				t.Fatalf("%s: proposal id %q (present %v)", m.typ, got.ProposalID, got.HasProposalID)
			}
			if !bytes.Equal(got.Payload, m.payload) || got.Payload == nil {
				t.Fatalf("%s: payload %q, want %q", m.typ, got.Payload, m.payload)
			}
			// The parser re-encodes only preferred serialization identically.
			if !bytes.Equal(got.Encode(), env) {
				t.Fatalf("%s: the envelope is not in preferred serialization", m.typ)
			}
			// Another member's key does not verify it.
			_, other := testMember(t, cv.curve)
			if err := got.Verify(&other.PublicKey); !errors.Is(err, cose.ErrSignature) {
				t.Fatalf("verified with another key: %v", err)
			}
		}
	}
}

// TestMemberSignerDeterministicHeaders checks the protected header bytes
// against a hand-written encoding: keys in RFC 8949 §4.2.1 order (1, 4,
// then the text labels by length and bytes).
func TestMemberSignerDeterministicHeaders(t *testing.T) {
	cert, key := testMember(t, elliptic.P256())
	s, err := NewMemberSigner(cert, key)
	if err != nil {
		t.Fatal(err)
	}
	env, err := s.signAt(MsgBallot, "p1", []byte("{}"), time.Unix(1000, 0))
	if err != nil {
		t.Fatal(err)
	}
	m, err := cose.Parse(env)
	if err != nil {
		t.Fatal(err)
	}
	kid := s.MemberID()
	var want []byte
	want = append(want, 0xa5)       // map of 5
	want = append(want, 0x01, 0x26) // 1: -7
	want = append(want, 0x04, 0x58, 64)
	want = append(want, kid...)
	want = append(want, 0x70)
	want = append(want, "ccf.gov.msg.type"...)
	want = append(want, 0x66)
	want = append(want, "ballot"...)
	want = append(want, 0x76)
	want = append(want, "ccf.gov.msg.created_at"...)
	want = append(want, 0x19, 0x03, 0xe8) // 1000
	want = append(want, 0x77)
	want = append(want, "ccf.gov.msg.proposal_id"...)
	want = append(want, 0x62, 'p', '1')
	if !bytes.Equal(m.Protected, want) {
		t.Fatalf("protected header\n%x\nwant\n%x", m.Protected, want)
	}
	if env[0] != 0xd2 || env[1] != 0x84 { // tag 18, array of 4
		t.Fatalf("envelope starts %x", env[:2])
	}
}

func TestCBORHeads(t *testing.T) {
	for _, c := range []struct {
		got  []byte
		want string
	}{
		{cborUint(0), "00"}, {cborUint(23), "17"}, {cborUint(24), "1818"}, {cborUint(255), "18ff"},
		{cborUint(256), "190100"}, {cborUint(65535), "19ffff"}, {cborUint(65536), "1a00010000"},
		{cborUint(1 << 32), "1b0000000100000000"}, {cborInt(-1), "20"}, {cborInt(-36), "3823"},
		{cborText(""), "60"}, {cborBytes(nil), "40"}, {cborMap(nil), "a0"},
		// Keys sorted by their encoding: 1, then "b", then "aa" (shorter first).
		{cborMap([]cborPair{{cborText("aa"), cborUint(1)}, {cborText("b"), cborUint(2)}, {cborInt(1), cborUint(3)}}), "a3010361620262616101"},
	} {
		if hex.EncodeToString(c.got) != c.want {
			t.Errorf("got %x, want %s", c.got, c.want)
		}
	}
}

func TestMemberSignerRefuses(t *testing.T) {
	cert, key := testMember(t, elliptic.P256())
	_, otherKey := testMember(t, elliptic.P256())
	if _, err := NewMemberSigner(cert, otherKey); err == nil {
		t.Fatal("a key that is not the certificate's was accepted")
	}
	_, edKey, _ := ed25519.GenerateKey(rand.Reader)
	if _, err := NewMemberSigner(cert, edKey); err == nil {
		t.Fatal("an Ed25519 key was accepted")
	}
	s, err := NewMemberSigner(cert, key)
	if err != nil {
		t.Fatal(err)
	}
	for _, typ := range []string{MsgBallot, MsgWithdrawal} {
		if _, err := s.Sign(typ, "", nil); err == nil {
			t.Fatalf("%s without a proposal id was signed", typ)
		}
	}
	if _, err := s.Sign("", "", nil); err == nil {
		t.Fatal("no message type was signed")
	}
	// A signer returning garbage is caught, not sent.
	bad, err := NewMemberSigner(cert, garbageSigner{key})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := bad.Sign(MsgProposal, "", []byte("{}")); err == nil {
		t.Fatal("a malformed signature was wrapped")
	}
}

type garbageSigner struct{ k *ecdsa.PrivateKey }

func (g garbageSigner) Public() crypto.PublicKey { return g.k.Public() }
func (g garbageSigner) Sign(io.Reader, []byte, crypto.SignerOpts) ([]byte, error) {
	return []byte{0x30, 0x01}, nil
}

// TestLoadMemberSigner loads a combined PEM file (certificate, then key),
// the shape of ledgerd's member0.pem, and signs with it.
func TestLoadMemberSigner(t *testing.T) {
	cert, key := testMember(t, elliptic.P384())
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "member0.pem")
	data := append(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Raw}),
		pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER})...)
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	s, err := LoadMemberSigner(path)
	if err != nil {
		t.Fatal(err)
	}
	if s.MemberID() != cose.MemberID(cert.Raw) || s.CertificatePEM() != string(data[:len(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Raw}))]) {
		t.Fatal("loaded another member")
	}
	env, err := s.Sign(MsgProposal, "", []byte("{}"))
	if err != nil {
		t.Fatal(err)
	}
	m, err := cose.Parse(env)
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Verify(&key.PublicKey); err != nil {
		t.Fatal(err)
	}
	if err := cose.CheckCreatedAt(m.CreatedAt, time.Now(), time.Minute, time.Minute); err != nil {
		t.Fatalf("created_at is not now: %v", err)
	}
	// The same file as a TLS credential gives the same signer by default.
	tc, err := tls.LoadX509KeyPair(path, path)
	if err != nil {
		t.Fatal(err)
	}
	s2, err := memberSignerOf(&tc)
	if err != nil || s2.MemberID() != s.MemberID() {
		t.Fatalf("signer of the TLS credential: %v", err)
	}
	if _, err := LoadMemberSigner(filepath.Join(t.TempDir(), "missing.pem")); err == nil {
		t.Fatal("a missing file loaded")
	}
}

// FuzzMemberSigner: whatever the payload, proposal id and time, the node's
// parser accepts the envelope, reads back exactly what was signed, and the
// signature verifies.
func FuzzMemberSigner(f *testing.F) {
	cert, key := testMember(f, elliptic.P256())
	s, err := NewMemberSigner(cert, key)
	if err != nil {
		f.Fatal(err)
	}
	f.Add([]byte(`{"actions":[]}`), "p", int64(0), uint8(0))
	f.Add([]byte{}, "", int64(1<<33), uint8(1))
	f.Add(make([]byte, 70000), "é\x00", int64(9_999_999_999), uint8(2))
	types := []string{MsgProposal, MsgBallot, MsgWithdrawal, MsgAck, MsgStateDigest}
	f.Fuzz(func(t *testing.T, payload []byte, proposalID string, at int64, typ uint8) {
		msgType := types[int(typ)%len(types)]
		if at < 0 {
			at = -at
		}
		if at < 0 {
			at = 0
		}
		env, err := s.signAt(msgType, proposalID, payload, time.Unix(at, 0))
		if cose.RequiresProposalID(msgType) && (proposalID == "" || !utf8.ValidString(proposalID)) {
			if err == nil {
				t.Fatal("signed without a proposal id, or with one that is not UTF-8")
			}
			return
		}
		if err != nil {
			t.Fatal(err)
		}
		m, err := cose.Parse(env)
		if err != nil {
			t.Fatal(err)
		}
		if err := m.Verify(&key.PublicKey); err != nil {
			t.Fatal(err)
		}
		if m.MsgType != msgType || m.CreatedAt != uint64(at) || !bytes.Equal(m.Payload, payload) {
			t.Fatalf("read back type %q created_at %d payload %d bytes", m.MsgType, m.CreatedAt, len(m.Payload))
		}
		if cose.RequiresProposalID(msgType) && m.ProposalID != proposalID {
			t.Fatalf("proposal id %q, want %q", m.ProposalID, proposalID)
		}
		if !bytes.Equal(m.Encode(), env) {
			t.Fatal("not preferred serialization")
		}
	})
}
