package api_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/binary"
	"encoding/hex"
	"testing"
	"time"
)

// The tests build their COSE_Sign1 governance envelopes here, with their
// own minimal CBOR encoder (RFC 8949 definite lengths, shortest form), not
// with internal/cose, so that the server's parser and verifier are checked
// against an independent writer.

// cborHead encodes a major type and argument in shortest form.
func cborHead(major byte, n uint64) []byte {
	m := major << 5
	switch {
	case n < 24:
		return []byte{m | byte(n)}
	case n <= 0xff:
		return []byte{m | 24, byte(n)}
	case n <= 0xffff:
		return binary.BigEndian.AppendUint16([]byte{m | 25}, uint16(n))
	case n <= 0xffffffff:
		return binary.BigEndian.AppendUint32([]byte{m | 26}, uint32(n))
	}
	return binary.BigEndian.AppendUint64([]byte{m | 27}, n)
}

func cborInt(v int64) []byte {
	if v >= 0 {
		return cborHead(0, uint64(v))
	}
	return cborHead(1, uint64(-1-v))
}

func cborBytes(b []byte) []byte { return append(cborHead(2, uint64(len(b))), b...) }
func cborText(s string) []byte  { return append(cborHead(3, uint64(len(s))), s...) }

// govMsg describes one envelope; zero fields are left out (to test refusals).
type govMsg struct {
	key        *ecdsa.PrivateKey
	kid        string
	msgType    string
	createdAt  int64 // seconds; 0: now
	proposalID string
	payload    []byte
	noTag      bool
	noCreated  bool
}

// sign builds the envelope.
func (m govMsg) sign(t testing.TB) []byte {
	t.Helper()
	var alg int64
	var h func([]byte) []byte
	switch m.key.Curve {
	case elliptic.P256():
		alg, h = -7, func(b []byte) []byte { s := sha256.Sum256(b); return s[:] }
	case elliptic.P384():
		alg, h = -35, func(b []byte) []byte { s := sha512.Sum384(b); return s[:] }
	default:
		t.Fatal("unsupported curve")
	}
	var pairs [][2][]byte
	pairs = append(pairs, [2][]byte{cborInt(1), cborInt(alg)})
	if m.kid != "" {
		pairs = append(pairs, [2][]byte{cborInt(4), cborBytes([]byte(m.kid))})
	}
	if m.msgType != "" {
		pairs = append(pairs, [2][]byte{cborText("ccf.gov.msg.type"), cborText(m.msgType)})
	}
	if m.proposalID != "" {
		pairs = append(pairs, [2][]byte{cborText("ccf.gov.msg.proposal_id"), cborText(m.proposalID)})
	}
	if !m.noCreated {
		at := m.createdAt
		if at == 0 {
			at = time.Now().Unix()
		}
		pairs = append(pairs, [2][]byte{cborText("ccf.gov.msg.created_at"), cborInt(at)})
	}
	protected := cborHead(5, uint64(len(pairs)))
	for _, p := range pairs {
		protected = append(append(protected, p[0]...), p[1]...)
	}
	payload := m.payload
	if payload == nil {
		payload = []byte{}
	}
	toSign := cborHead(4, 4)
	toSign = append(toSign, cborText("Signature1")...)
	toSign = append(toSign, cborBytes(protected)...)
	toSign = append(toSign, cborBytes(nil)...)
	toSign = append(toSign, cborBytes(payload)...)
	r, s, err := ecdsa.Sign(rand.Reader, m.key, h(toSign))
	if err != nil {
		t.Fatal(err)
	}
	size := (m.key.Curve.Params().BitSize + 7) / 8
	sig := make([]byte, 2*size)
	r.FillBytes(sig[:size])
	s.FillBytes(sig[size:])
	var out []byte
	if !m.noTag {
		out = cborHead(6, 18)
	}
	out = append(out, cborHead(4, 4)...)
	out = append(out, cborBytes(protected)...)
	out = append(out, cborHead(5, 0)...)
	out = append(out, cborBytes(payload)...)
	out = append(out, cborBytes(sig)...)
	return out
}

// memberKey returns a credential's private key and member id.
func (c credential) memberKey() (*ecdsa.PrivateKey, string) {
	sum := sha256.Sum256(c.der)
	return c.cert.PrivateKey.(*ecdsa.PrivateKey), hex.EncodeToString(sum[:])
}
