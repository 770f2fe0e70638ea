package node

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"hash"
	"strconv"
)

// evidenceKey derives commit evidence (ccf-format §4.2) from the ledger
// secret: commit secret = HMAC-SHA256(key = ledger secret, msg = "Commit S");
// nonce(view, seqno) = HMAC-SHA256(commit secret, "<view>.<seqno>");
// commit evidence = "ce:<view>.<seqno>:<hex(nonce)>". Its SHA-256 is in the
// entry's public header; the string itself is revealed only in receipts of
// committed transactions. The keyed inner and outer hash states are
// precomputed once; each nonce clones them.
type evidenceKey struct {
	inner, outer hash.Cloner
}

func newEvidenceKey(ledgerSecret []byte) *evidenceKey {
	m := hmac.New(sha256.New, ledgerSecret)
	m.Write([]byte("Commit S"))
	secret := m.Sum(nil)
	var ipad, opad [sha256.BlockSize]byte
	copy(ipad[:], secret) // 32-byte key: shorter than a block, used as is
	copy(opad[:], secret)
	for i := range ipad {
		ipad[i] ^= 0x36
		opad[i] ^= 0x5c
	}
	in, out := sha256.New(), sha256.New()
	in.Write(ipad[:])
	out.Write(opad[:])
	return &evidenceKey{inner: in.(hash.Cloner), outer: out.(hash.Cloner)}
}

// nonce is HMAC-SHA256(commit secret, msg).
func (k *evidenceKey) nonce(dst, msg []byte) []byte {
	in, _ := k.inner.Clone()
	in.Write(msg)
	var sum [sha256.Size]byte
	inner := in.Sum(sum[:0])
	out, _ := k.outer.Clone()
	out.Write(inner)
	return out.Sum(dst)
}

// commitEvidence returns "ce:<view>.<seqno>:<64 hex>".
func (k *evidenceKey) commitEvidence(view, seqno uint64) string {
	var buf [3 + 41 + 1 + 64]byte
	b := append(buf[:0], "ce:"...)
	b = strconv.AppendUint(b, view, 10)
	b = append(b, '.')
	b = strconv.AppendUint(b, seqno, 10)
	id := b[3:]
	var n [sha256.Size]byte
	nonce := k.nonce(n[:0], id)
	b = append(b, ':')
	b = hex.AppendEncode(b, nonce)
	return string(b)
}

func (k *evidenceKey) digest(view, seqno uint64) [32]byte {
	return sha256.Sum256([]byte(k.commitEvidence(view, seqno)))
}
