package cose

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"os"
	"runtime"
	"strings"
	"testing"
	"time"
)

// The helpers below build CBOR by hand, independently of the encoder under
// test, so that the tests check the package against RFC 8949/9052 rather
// than against itself.

func hHead(major byte, n uint64) []byte {
	m := major << 5
	switch {
	case n < 24:
		return []byte{m | byte(n)}
	case n < 1<<8:
		return []byte{m | 24, byte(n)}
	case n < 1<<16:
		return []byte{m | 25, byte(n >> 8), byte(n)}
	case n < 1<<32:
		return []byte{m | 26, byte(n >> 24), byte(n >> 16), byte(n >> 8), byte(n)}
	}
	b := []byte{m | 27}
	for i := 7; i >= 0; i-- {
		b = append(b, byte(n>>(8*i)))
	}
	return b
}

func hInt(v int64) []byte {
	if v >= 0 {
		return hHead(0, uint64(v))
	}
	return hHead(1, uint64(-1-v))
}
func hBstr(b []byte) []byte      { return append(hHead(2, uint64(len(b))), b...) }
func hTstr(s string) []byte      { return append(hHead(3, uint64(len(s))), s...) }
func cat(parts ...[]byte) []byte { return bytes.Join(parts, nil) }

// hEntry is one protected header entry, already encoded.
type hEntry struct{ k, v []byte }

func hMap(entries ...hEntry) []byte {
	b := hHead(5, uint64(len(entries)))
	for _, e := range entries {
		b = cat(b, e.k, e.v)
	}
	return b
}

var (
	testKID     = strings.Repeat("ab", 32)
	testCreated = int64(1767225600)
)

// govHeaders returns the hand-encoded protected header entries of a
// governance message.
func govHeaders(alg int64, msgType, proposalID string) []hEntry {
	e := []hEntry{
		{hInt(1), hInt(alg)},
		{hInt(4), hBstr([]byte(testKID))},
		{hTstr("ccf.gov.msg.type"), hTstr(msgType)},
	}
	if proposalID != "" {
		e = append(e, hEntry{hTstr("ccf.gov.msg.proposal_id"), hTstr(proposalID)})
	}
	return append(e, hEntry{hTstr("ccf.gov.msg.created_at"), hInt(testCreated)})
}

// handSign signs protected/payload with key, by hand: the Sig_structure
// encoded byte by byte, the signature as r || s.
func handSign(t testing.TB, key *ecdsa.PrivateKey, protected, payload []byte) []byte {
	t.Helper()
	tbs := cat([]byte{0x84}, hTstr("Signature1"), hBstr(protected), []byte{0x40}, hBstr(payload))
	size := (key.Curve.Params().BitSize + 7) / 8
	var d []byte
	switch size {
	case 32:
		s := sha256.Sum256(tbs)
		d = s[:]
	case 48:
		h := sha512.New384()
		h.Write(tbs)
		d = h.Sum(nil)
	default:
		h := sha512.New()
		h.Write(tbs)
		d = h.Sum(nil)
	}
	r, s, err := ecdsa.Sign(rand.Reader, key, d)
	if err != nil {
		t.Fatal(err)
	}
	sig := make([]byte, 2*size)
	r.FillBytes(sig[:size])
	s.FillBytes(sig[size:])
	return sig
}

// handEnvelope builds a tagged COSE_Sign1 by hand.
func handEnvelope(protected, payload, sig []byte) []byte {
	return cat([]byte{0xd2, 0x84}, hBstr(protected), []byte{0xa0}, hBstr(payload), hBstr(sig))
}

func genKey(t testing.TB, c elliptic.Curve) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(c, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func msgProposalID(msgType string) string {
	if RequiresProposalID(msgType) {
		return strings.Repeat("0f", 32)
	}
	return ""
}

// TestHandBuiltEnvelopes: an envelope built by hand for every message type
// parses with its headers and verifies with the signer's key.
func TestHandBuiltEnvelopes(t *testing.T) {
	key := genKey(t, elliptic.P384())
	for _, mt := range MsgTypes {
		pid := msgProposalID(mt)
		prot := hMap(govHeaders(AlgES384, mt, pid)...)
		payload := []byte(`{"type":"` + mt + `"}`)
		env := handEnvelope(prot, payload, handSign(t, key, prot, payload))
		m, err := Parse(env)
		if err != nil {
			t.Fatalf("%s: Parse: %v", mt, err)
		}
		if !m.Tagged || m.Alg != AlgES384 || string(m.KID) != testKID || m.MsgType != mt || !m.HasMsgType ||
			m.ProposalID != pid || m.HasProposalID != (pid != "") || m.CreatedAt != uint64(testCreated) ||
			!bytes.Equal(m.Payload, payload) || !bytes.Equal(m.Protected, prot) {
			t.Fatalf("%s: parsed %+v", mt, m)
		}
		if err := m.Verify(&key.PublicKey); err != nil {
			t.Fatalf("%s: Verify: %v", mt, err)
		}
		if err := m.CheckGovernance(mt); err != nil {
			t.Fatalf("%s: CheckGovernance: %v", mt, err)
		}
	}
}

// TestSignRoundTrip: Sign -> Parse -> Verify for every message type and
// curve, and Sign's protected header is byte for byte the layout CCF's
// ccf_cose_sign1 writes (alg, kid, type, [proposal_id], created_at).
func TestSignRoundTrip(t *testing.T) {
	for _, c := range []struct {
		curve elliptic.Curve
		alg   int64
	}{{elliptic.P256(), AlgES256}, {elliptic.P384(), AlgES384}, {elliptic.P521(), AlgES512}} {
		key := genKey(t, c.curve)
		for _, mt := range MsgTypes {
			pid := msgProposalID(mt)
			payload := []byte("payload of " + mt)
			env, err := Sign(key, Headers{KID: testKID, MsgType: mt, ProposalID: pid, CreatedAt: uint64(testCreated)}, payload, nil)
			if err != nil {
				t.Fatalf("%s %s: Sign: %v", c.curve.Params().Name, mt, err)
			}
			m, err := Parse(env)
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if want := hMap(govHeaders(c.alg, mt, pid)...); !bytes.Equal(m.Protected, want) {
				t.Fatalf("protected header\n got %x\nwant %x", m.Protected, want)
			}
			if err := m.Verify(&key.PublicKey); err != nil {
				t.Fatalf("%s %s: Verify: %v", c.curve.Params().Name, mt, err)
			}
			if !bytes.Equal(m.Encode(), env) {
				t.Fatal("Encode differs from the parsed bytes")
			}
		}
	}
}

func TestSignRefuses(t *testing.T) {
	key := genKey(t, elliptic.P256())
	for name, h := range map[string]Headers{
		"no kid":                {MsgType: MsgProposal, CreatedAt: 1},
		"no type":               {KID: testKID, CreatedAt: 1},
		"ballot without id":     {KID: testKID, MsgType: MsgBallot, CreatedAt: 1},
		"withdrawal without id": {KID: testKID, MsgType: MsgWithdrawal, CreatedAt: 1},
	} {
		if _, err := Sign(key, h, nil, nil); !errors.Is(err, ErrMissingHeader) {
			t.Errorf("%s: err = %v, want ErrMissingHeader", name, err)
		}
	}
}

// TestEveryMutationFails: flipping any bit of any byte of a signed envelope
// (tag, structure, protected header, payload, signature) makes it fail to
// parse or fail to verify.
func TestEveryMutationFails(t *testing.T) {
	key := genKey(t, elliptic.P256())
	env, err := Sign(key, Headers{KID: testKID, MsgType: MsgBallot, ProposalID: strings.Repeat("0f", 32), CreatedAt: uint64(testCreated)}, []byte(`{"ballot":"x"}`), nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := range env {
		for bit := 0; bit < 8; bit++ {
			mut := bytes.Clone(env)
			mut[i] ^= 1 << bit
			m, err := Parse(mut)
			if err != nil {
				continue
			}
			if err := m.Verify(&key.PublicKey); err == nil {
				t.Fatalf("byte %d bit %d flipped: still verifies", i, bit)
			}
		}
	}
}

func TestVerifyRefuses(t *testing.T) {
	key := genKey(t, elliptic.P256())
	payload := []byte("p")
	env, err := Sign(key, Headers{KID: testKID, MsgType: MsgProposal, CreatedAt: 1}, payload, nil)
	if err != nil {
		t.Fatal(err)
	}
	m, err := Parse(env)
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Verify(&genKey(t, elliptic.P256()).PublicKey); !errors.Is(err, ErrSignature) {
		t.Errorf("other P-256 key: err = %v, want ErrSignature", err)
	}
	if err := m.Verify(&genKey(t, elliptic.P384()).PublicKey); !errors.Is(err, ErrKeyMismatch) {
		t.Errorf("P-384 key for ES256: err = %v, want ErrKeyMismatch", err)
	}
	edPub, _, _ := ed25519.GenerateKey(rand.Reader)
	if err := m.Verify(edPub); !errors.Is(err, ErrKeyMismatch) {
		t.Errorf("Ed25519 key: err = %v, want ErrKeyMismatch", err)
	}
	if err := m.Verify(key.PublicKey); !errors.Is(err, ErrKeyMismatch) {
		t.Errorf("ecdsa.PublicKey by value: err = %v, want ErrKeyMismatch", err)
	}
	var nilKey *ecdsa.PublicKey
	if err := m.Verify(nilKey); err == nil {
		t.Error("nil key verified")
	}

	// alg says ES384 but the signature is P-256's: refused by the key check
	// with the signer's key, and by the signature length with a P-384 key.
	prot := hMap(govHeaders(AlgES384, MsgProposal, "")...)
	lie, err := Parse(handEnvelope(prot, payload, handSign(t, key, prot, payload)))
	if err != nil {
		t.Fatal(err)
	}
	if err := lie.Verify(&key.PublicKey); !errors.Is(err, ErrKeyMismatch) {
		t.Errorf("ES384 header, P-256 key: err = %v, want ErrKeyMismatch", err)
	}
	if err := lie.Verify(&genKey(t, elliptic.P384()).PublicKey); !errors.Is(err, ErrSignature) {
		t.Errorf("ES384 header, P-256 signature, P-384 key: err = %v, want ErrSignature", err)
	}

	// A DER signature (what crypto/ecdsa.SignASN1 makes) is not COSE's r || s.
	prot = hMap(govHeaders(AlgES256, MsgProposal, "")...)
	tbs := cat([]byte{0x84}, hTstr("Signature1"), hBstr(prot), []byte{0x40}, hBstr(payload))
	sum := sha256.Sum256(tbs)
	der, err := ecdsa.SignASN1(rand.Reader, key, sum[:])
	if err != nil {
		t.Fatal(err)
	}
	dm, err := Parse(handEnvelope(prot, payload, der))
	if err != nil {
		t.Fatal(err)
	}
	if err := dm.Verify(&key.PublicKey); !errors.Is(err, ErrSignature) {
		t.Errorf("DER signature: err = %v, want ErrSignature", err)
	}

	// A detached (nil) payload is refused.
	sig := handSign(t, key, prot, payload)
	det, err := Parse(cat([]byte{0xd2, 0x84}, hBstr(prot), []byte{0xa0, 0xf6}, hBstr(sig)))
	if err != nil {
		t.Fatal(err)
	}
	if det.Payload != nil {
		t.Fatal("nil payload parsed as non-nil")
	}
	if err := det.Verify(&key.PublicKey); !errors.Is(err, ErrMalformed) {
		t.Errorf("detached payload: err = %v, want ErrMalformed", err)
	}
}

func TestVerifyEmptyPayload(t *testing.T) {
	key := genKey(t, elliptic.P256())
	env, err := Sign(key, Headers{KID: testKID, MsgType: MsgAck, CreatedAt: 1}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	m, err := Parse(env)
	if err != nil {
		t.Fatal(err)
	}
	if m.Payload == nil || len(m.Payload) != 0 {
		t.Fatalf("payload = %v, want empty, non-nil", m.Payload)
	}
	if err := m.Verify(&key.PublicKey); err != nil {
		t.Fatal(err)
	}
}

func without(entries []hEntry, key []byte) []hEntry {
	var out []hEntry
	for _, e := range entries {
		if !bytes.Equal(e.k, key) {
			out = append(out, e)
		}
	}
	return out
}

// TestParseRefusesHeaders: missing or mistyped protected headers.
func TestParseRefusesHeaders(t *testing.T) {
	base := govHeaders(AlgES256, MsgProposal, "")
	sig := bytes.Repeat([]byte{1}, 64)
	env := func(entries ...hEntry) []byte { return handEnvelope(hMap(entries...), []byte("p"), sig) }
	cases := []struct {
		name string
		b    []byte
		want error
	}{
		{"no alg", env(without(base, hInt(1))...), ErrMissingHeader},
		{"no kid", env(without(base, hInt(4))...), ErrMissingHeader},
		{"no created_at", env(without(base, hTstr("ccf.gov.msg.created_at"))...), ErrMissingHeader},
		{"alg EdDSA", env(append(without(base, hInt(1)), hEntry{hInt(1), hInt(-8)})...), ErrUnsupportedAlg},
		{"alg PS256", env(append(without(base, hInt(1)), hEntry{hInt(1), hInt(-37)})...), ErrUnsupportedAlg},
		{"alg text", env(append(without(base, hInt(1)), hEntry{hInt(1), hTstr("ES256")})...), ErrMalformed},
		{"kid text", env(append(without(base, hInt(4)), hEntry{hInt(4), hTstr(testKID)})...), ErrMalformed},
		{"created_at negative", env(append(without(base, hTstr("ccf.gov.msg.created_at")), hEntry{hTstr("ccf.gov.msg.created_at"), hInt(-1)})...), ErrMalformed},
		{"created_at text", env(append(without(base, hTstr("ccf.gov.msg.created_at")), hEntry{hTstr("ccf.gov.msg.created_at"), hTstr("1")})...), ErrMalformed},
		{"created_at above int64", env(append(without(base, hTstr("ccf.gov.msg.created_at")), hEntry{hTstr("ccf.gov.msg.created_at"), hHead(0, 1<<63)})...), ErrMalformed},
		{"type bytes", env(append(without(base, hTstr("ccf.gov.msg.type")), hEntry{hTstr("ccf.gov.msg.type"), hBstr([]byte("proposal"))})...), ErrMalformed},
		{"proposal_id int", env(append(base, hEntry{hTstr("ccf.gov.msg.proposal_id"), hInt(7)})...), ErrMalformed},
		{"crit", env(append(base, hEntry{hInt(2), cat(hHead(4, 1), hInt(99))})...), ErrMalformed},
		{"duplicate alg", env(append(base, hEntry{hInt(1), hInt(-7)})...), ErrMalformed},
		{"duplicate created_at", env(append(base, hEntry{hTstr("ccf.gov.msg.created_at"), hInt(5)})...), ErrMalformed},
		{"protected not a map", handEnvelope(hInt(1), []byte("p"), sig), ErrMalformed},
		{"protected empty", handEnvelope(nil, []byte("p"), sig), ErrMalformed},
		{"protected trailing", handEnvelope(cat(hMap(base...), []byte{0}), []byte("p"), sig), ErrMalformed},
		{"label in both buckets", cat([]byte{0xd2, 0x84}, hBstr(hMap(base...)), hMap(hEntry{hInt(4), hBstr([]byte("x"))}), hBstr([]byte("p")), hBstr(sig)), ErrMalformed},
	}
	for _, c := range cases {
		if _, err := Parse(c.b); !errors.Is(err, c.want) {
			t.Errorf("%s: err = %v, want %v", c.name, err, c.want)
		}
	}
	// Without ccf.gov.msg.type the message parses (CCF: optional at parse)
	// but fails the endpoint's type check.
	m, err := Parse(env(without(base, hTstr("ccf.gov.msg.type"))...))
	if err != nil {
		t.Fatal(err)
	}
	if err := m.CheckGovernance(MsgProposal); !errors.Is(err, ErrWrongType) {
		t.Errorf("no type: CheckGovernance err = %v, want ErrWrongType", err)
	}
	// Unknown headers in either bucket are allowed, as in CCF.
	extra := cat([]byte{0xd2, 0x84}, hBstr(hMap(append(base, hEntry{hTstr("x-other"), hTstr("v")})...)),
		hMap(hEntry{hInt(33), hBstr([]byte("chain"))}), hBstr([]byte("p")), hBstr(sig))
	if _, err := Parse(extra); err != nil {
		t.Errorf("extra headers: %v", err)
	}
}

// TestParseRefusesStructure: the strict CBOR and COSE_Sign1 shape.
func TestParseRefusesStructure(t *testing.T) {
	prot := hMap(govHeaders(AlgES256, MsgProposal, "")...)
	sig := bytes.Repeat([]byte{1}, 64)
	good := handEnvelope(prot, []byte("p"), sig)
	if _, err := Parse(good); err != nil {
		t.Fatal(err)
	}
	untagged := good[1:]
	if m, err := Parse(untagged); err != nil || m.Tagged {
		t.Fatalf("untagged: %v", err)
	} else if err := m.CheckGovernance(MsgProposal); !errors.Is(err, ErrUntagged) {
		t.Errorf("untagged: CheckGovernance err = %v, want ErrUntagged", err)
	}
	cases := map[string][]byte{
		"empty":                     nil,
		"trailing byte":             cat(good, []byte{0}),
		"trailing message":          cat(good, good),
		"truncated":                 good[:len(good)-1],
		"other tag":                 cat([]byte{0xd1}, untagged),
		"tag 18 twice":              cat([]byte{0xd2}, good),
		"tag 18 non-shortest":       cat([]byte{0xd8, 18}, untagged),
		"array of 3":                cat([]byte{0xd2, 0x83}, hBstr(prot), []byte{0xa0}, hBstr(sig)),
		"array of 5":                cat([]byte{0xd2, 0x85}, hBstr(prot), []byte{0xa0}, hBstr([]byte("p")), hBstr(sig), []byte{0}),
		"map not array":             cat([]byte{0xd2, 0xa2}, hInt(1), hBstr(prot), hInt(2), hBstr(sig)),
		"indefinite array":          cat([]byte{0xd2, 0x9f}, hBstr(prot), []byte{0xa0}, hBstr([]byte("p")), hBstr(sig), []byte{0xff}),
		"indefinite payload":        cat([]byte{0xd2, 0x84}, hBstr(prot), []byte{0xa0, 0x5f, 0x41, 'p', 0xff}, hBstr(sig)),
		"indefinite unprotected":    cat([]byte{0xd2, 0x84}, hBstr(prot), []byte{0xbf, 0xff}, hBstr([]byte("p")), hBstr(sig)),
		"unprotected not a map":     cat([]byte{0xd2, 0x84}, hBstr(prot), []byte{0x80}, hBstr([]byte("p")), hBstr(sig)),
		"unprotected nil":           cat([]byte{0xd2, 0x84}, hBstr(prot), []byte{0xf6}, hBstr([]byte("p")), hBstr(sig)),
		"protected text":            cat([]byte{0xd2, 0x84}, hTstr(string(prot)), []byte{0xa0}, hBstr([]byte("p")), hBstr(sig)),
		"payload text":              cat([]byte{0xd2, 0x84}, hBstr(prot), []byte{0xa0}, hTstr("p"), hBstr(sig)),
		"signature nil":             cat([]byte{0xd2, 0x84}, hBstr(prot), []byte{0xa0}, hBstr([]byte("p")), []byte{0xf6}),
		"non-shortest length":       cat([]byte{0xd2, 0x84}, hBstr(prot), []byte{0xa0, 0x58, 0x01, 'p'}, hBstr(sig)),
		"non-shortest array count":  cat([]byte{0xd2, 0x98, 0x04}, hBstr(prot), []byte{0xa0}, hBstr([]byte("p")), hBstr(sig)),
		"float in unprotected":      cat([]byte{0xd2, 0x84}, hBstr(prot), []byte{0xa1, 0x20, 0xf9, 0x3c, 0x00}, hBstr([]byte("p")), hBstr(sig)),
		"undefined in unprotected":  cat([]byte{0xd2, 0x84}, hBstr(prot), []byte{0xa1, 0x20, 0xf7}, hBstr([]byte("p")), hBstr(sig)),
		"tag inside":                cat([]byte{0xd2, 0x84}, hBstr(prot), []byte{0xa1, 0x20, 0xc1, 0x00}, hBstr([]byte("p")), hBstr(sig)),
		"reserved info 28":          cat([]byte{0xd2, 0x84}, hBstr(prot), []byte{0xa0, 0x5c}, hBstr(sig)),
		"bytes map key":             cat([]byte{0xd2, 0x84}, hBstr(prot), []byte{0xa1, 0x41, 'k', 0x00}, hBstr([]byte("p")), hBstr(sig)),
		"duplicate unprotected key": cat([]byte{0xd2, 0x84}, hBstr(prot), []byte{0xa2, 0x21, 0x00, 0x21, 0x01}, hBstr([]byte("p")), hBstr(sig)),
		"invalid UTF-8 key":         cat([]byte{0xd2, 0x84}, hBstr(prot), []byte{0xa1, 0x61, 0xff, 0x00}, hBstr([]byte("p")), hBstr(sig)),
	}
	for name, b := range cases {
		if _, err := Parse(b); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: err = %v, want ErrMalformed", name, err)
		}
	}
}

func TestParseDepthLimit(t *testing.T) {
	prot := hMap(govHeaders(AlgES256, MsgProposal, "")...)
	nest := func(depth int) []byte {
		v := bytes.Repeat([]byte{0x81}, depth) // [[[...0]]]
		return cat([]byte{0xd2, 0x84}, hBstr(prot), []byte{0xa1, 0x20}, v, []byte{0x00}, hBstr([]byte("p")), hBstr(make([]byte, 64)))
	}
	// The unprotected value sits at depth 2 (message array, map), so
	// maxDepth-2 more arrays reach the limit exactly.
	if _, err := Parse(nest(maxDepth - 2)); err != nil {
		t.Fatalf("nesting at the limit: %v", err)
	}
	if _, err := Parse(nest(maxDepth - 1)); !errors.Is(err, ErrMalformed) {
		t.Fatalf("nesting past the limit: err = %v", err)
	}
	if _, err := Parse(nest(100000)); !errors.Is(err, ErrMalformed) {
		t.Fatalf("deep nesting: err = %v", err)
	}
}

// TestHugeLengthsRefusedWithoutAllocating: a 9-byte head claiming 2^62
// bytes or items is refused before anything is allocated; so is a count
// that the remaining input cannot hold.
func TestHugeLengthsRefusedWithoutAllocating(t *testing.T) {
	huge := []byte{0, 0, 0, 0, 0, 0, 0, 0}
	huge[0] = 0x40 // 2^62
	for name, b := range map[string][]byte{
		"bstr 2^62":            cat([]byte{0x5b}, huge),
		"tstr 2^62":            cat([]byte{0x7b}, huge),
		"array 2^62":           cat([]byte{0x9b}, huge),
		"map 2^62":             cat([]byte{0xbb}, huge),
		"tagged array 2^62":    cat([]byte{0xd2, 0x9b}, huge),
		"payload 2^62":         cat([]byte{0xd2, 0x84, 0x40, 0xa0, 0x5b}, huge),
		"unprotected map 2^62": cat([]byte{0xd2, 0x84, 0x40, 0xbb}, huge),
		"bstr 2^64-1":          cat([]byte{0x5b}, bytes.Repeat([]byte{0xff}, 8)),
	} {
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		_, err := Parse(b)
		runtime.ReadMemStats(&after)
		if !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: err = %v, want ErrMalformed", name, err)
		}
		if d := after.TotalAlloc - before.TotalAlloc; d > 1<<16 {
			t.Errorf("%s: allocated %d bytes", name, d)
		}
	}
	// A million-item array announced by 10 bytes: without the check against
	// the remaining input this would allocate the items up front.
	b := cat([]byte{0xd2, 0x84, 0x40, 0xa1, 0x20, 0x9a, 0x00, 0x10, 0x00, 0x00}, []byte{0})
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	_, err := Parse(b)
	runtime.ReadMemStats(&after)
	if !errors.Is(err, ErrMalformed) {
		t.Errorf("million-item array: err = %v", err)
	}
	if d := after.TotalAlloc - before.TotalAlloc; d > 1<<16 {
		t.Errorf("million-item array: allocated %d bytes", d)
	}
}

type vectorFile struct {
	Envelopes []struct {
		CertPEM     string `json:"cert_pem"`
		KID         string `json:"kid"`
		Alg         int64  `json:"alg"`
		MsgType     string `json:"msg_type"`
		ProposalID  string `json:"proposal_id"`
		CreatedAt   uint64 `json:"created_at"`
		Payload     string `json:"payload"`
		EnvelopeHex string `json:"envelope_hex"`
	} `json:"envelopes"`
	ProposalID struct {
		RootHex      string `json:"root_hex"`
		SignatureHex string `json:"signature_hex"`
		ID           string `json:"id"`
	} `json:"proposal_id"`
}

func loadVectors(t testing.TB) vectorFile {
	t.Helper()
	b, err := os.ReadFile("testdata/vector.json")
	if err != nil {
		t.Fatal(err)
	}
	var v vectorFile
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatal(err)
	}
	return v
}

// TestVectors: envelopes made by testdata/gen_vector.py (Python's
// cryptography package, CBOR written by hand in CCF's ccf_cose_sign1 layout)
// for a P-384 and a P-256 member certificate: they parse, their kid is the
// certificate's member id, and they verify with the certificate's key.
func TestVectors(t *testing.T) {
	v := loadVectors(t)
	if len(v.Envelopes) == 0 {
		t.Fatal("no vectors")
	}
	for _, e := range v.Envelopes {
		blk, _ := pem.Decode([]byte(e.CertPEM))
		cert, err := x509.ParseCertificate(blk.Bytes)
		if err != nil {
			t.Fatal(err)
		}
		env, _ := hex.DecodeString(e.EnvelopeHex)
		m, err := Parse(env)
		if err != nil {
			t.Fatalf("%s: %v", e.MsgType, err)
		}
		if string(m.KID) != MemberID(cert.Raw) || e.KID != MemberID(cert.Raw) {
			t.Fatalf("kid %s, member id %s", m.KID, MemberID(cert.Raw))
		}
		if m.Alg != e.Alg || m.MsgType != e.MsgType || m.ProposalID != e.ProposalID || m.CreatedAt != e.CreatedAt || string(m.Payload) != e.Payload {
			t.Fatalf("parsed %+v, want %+v", m, e)
		}
		if err := m.Verify(cert.PublicKey); err != nil {
			t.Fatalf("%s: Verify: %v", e.MsgType, err)
		}
		if err := m.CheckMemberID(e.KID); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(m.Encode(), env) {
			t.Fatal("re-encoding differs")
		}
	}
}

func TestProposalIDVector(t *testing.T) {
	v := loadVectors(t).ProposalID
	root, _ := hex.DecodeString(v.RootHex)
	sig, _ := hex.DecodeString(v.SignatureHex)
	if got := ProposalID([32]byte(root), sig); got != v.ID {
		t.Fatalf("ProposalID = %s, want %s", got, v.ID)
	}
	if ProposalID([32]byte(root), append(sig, 0)) == v.ID {
		t.Fatal("proposal id ignores the signature")
	}
	root[0] ^= 1
	if ProposalID([32]byte(root), sig) == v.ID {
		t.Fatal("proposal id ignores the root")
	}
}

func TestChecks(t *testing.T) {
	key := genKey(t, elliptic.P256())
	pid := strings.Repeat("0f", 32)
	env, err := Sign(key, Headers{KID: testKID, MsgType: MsgBallot, ProposalID: pid, CreatedAt: 1000}, []byte("b"), nil)
	if err != nil {
		t.Fatal(err)
	}
	m, err := Parse(env)
	if err != nil {
		t.Fatal(err)
	}
	if err := m.CheckGovernance(MsgBallot); err != nil {
		t.Error(err)
	}
	if err := m.CheckGovernance(MsgWithdrawal); !errors.Is(err, ErrWrongType) {
		t.Errorf("type mismatch: %v", err)
	}
	if err := m.CheckProposalID(pid); err != nil {
		t.Error(err)
	}
	if err := m.CheckProposalID(strings.Repeat("0e", 32)); !errors.Is(err, ErrProposalIDMismatch) {
		t.Errorf("proposal id mismatch: %v", err)
	}
	if err := m.CheckMemberID(testKID); err != nil {
		t.Error(err)
	}
	if err := m.CheckMemberID(strings.Repeat("cd", 32)); !errors.Is(err, ErrMemberIDMismatch) {
		t.Errorf("member id mismatch: %v", err)
	}
	env, _ = Sign(key, Headers{KID: testKID, MsgType: MsgProposal, CreatedAt: 1000}, []byte("p"), nil)
	p, _ := Parse(env)
	if err := p.CheckProposalID(""); !errors.Is(err, ErrProposalIDMismatch) {
		t.Errorf("no proposal id header: %v", err)
	}

	now := time.Unix(1_000_000, 0)
	for _, c := range []struct {
		at uint64
		ok bool
	}{
		{1_000_000, true}, {1_000_000 - 300, true}, {1_000_000 - 301, false},
		{1_000_000 + 60, true}, {1_000_000 + 61, false}, {0, false}, {MaxCreatedAt + 1, false},
	} {
		err := CheckCreatedAt(c.at, now, 5*time.Minute, time.Minute)
		if (err == nil) != c.ok || (err != nil && !errors.Is(err, ErrCreatedAt)) {
			t.Errorf("CheckCreatedAt(%d): %v, want ok=%v", c.at, err, c.ok)
		}
	}

	d := RequestDigest([]byte("sig"))
	k, err := CreatedAtKey(42, d)
	if err != nil || k != "0000000042:"+hex.EncodeToString(d[:]) {
		t.Errorf("CreatedAtKey = %q, %v", k, err)
	}
	if _, err := CreatedAtKey(MaxCreatedAt+1, d); !errors.Is(err, ErrCreatedAt) {
		t.Errorf("CreatedAtKey too large: %v", err)
	}
}

func TestAlgForKey(t *testing.T) {
	for c, want := range map[elliptic.Curve]int64{elliptic.P256(): AlgES256, elliptic.P384(): AlgES384, elliptic.P521(): AlgES512} {
		if got, err := AlgForKey(&genKey(t, c).PublicKey); err != nil || got != want {
			t.Errorf("%s: %d, %v", c.Params().Name, got, err)
		}
	}
	if _, err := AlgForKey(nil); !errors.Is(err, ErrKeyMismatch) {
		t.Error("nil key accepted")
	}
}
