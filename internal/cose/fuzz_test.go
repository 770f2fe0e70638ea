package cose

import (
	"bytes"
	"crypto/elliptic"
	"encoding/hex"
	"strings"
	"testing"
)

// FuzzParse: Parse never panics, and anything it accepts re-encodes to
// exactly the input (the decoder admits one encoding per value) with its
// byte fields inside the input.
func FuzzParse(f *testing.F) {
	key := genKey(f, elliptic.P256())
	for _, mt := range MsgTypes {
		env, err := Sign(key, Headers{KID: testKID, MsgType: mt, ProposalID: msgProposalID(mt), CreatedAt: 1767225600}, []byte(`{"x":1}`), nil)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(env)
		f.Add(env[1:])
	}
	for _, e := range loadVectors(f).Envelopes {
		b, _ := hex.DecodeString(e.EnvelopeHex)
		f.Add(b)
	}
	prot := hMap(govHeaders(AlgES256, MsgProposal, "")...)
	f.Add(cat([]byte{0xd2, 0x84}, hBstr(prot), []byte{0xa2, 0x01, 0x82, 0xf4, 0xf5, 0x63, 'a', 'b', 'c', 0xa1, 0x20, 0x40}, []byte{0xf6}, hBstr([]byte(strings.Repeat("s", 64)))))
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := Parse(b)
		if err != nil {
			return
		}
		if got := m.Encode(); !bytes.Equal(got, b) {
			t.Fatalf("re-encoding differs:\n  in %x\n out %x", b, got)
		}
		if len(m.Protected)+len(m.Payload)+len(m.Signature)+len(m.KID) > 2*len(b) {
			t.Fatal("parsed fields larger than the input")
		}
	})
}
