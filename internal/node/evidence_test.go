package node

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"testing"
)

// reference is CCF's derivation written out with crypto/hmac.
func reference(secret []byte, view, seqno uint64) string {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte("Commit S"))
	cs := m.Sum(nil)
	m = hmac.New(sha256.New, cs)
	fmt.Fprintf(m, "%d.%d", view, seqno)
	return fmt.Sprintf("ce:%d.%d:%s", view, seqno, hex.EncodeToString(m.Sum(nil)))
}

func TestCommitEvidenceMatchesHMAC(t *testing.T) {
	secret := []byte("0123456789abcdef0123456789abcdef")
	k := newEvidenceKey(secret)
	for _, c := range [][2]uint64{{1, 1}, {2, 35}, {8, 29569}, {1 << 31, 1 << 62}} {
		if got, want := k.commitEvidence(c[0], c[1]), reference(secret, c[0], c[1]); got != want {
			t.Fatalf("commitEvidence(%d,%d) = %s, want %s", c[0], c[1], got, want)
		}
	}
}
