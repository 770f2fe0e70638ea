package node

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"strconv"
)

// commitSecret derives CCF's commit secret from the ledger secret
// (ccf-format §4.2): HMAC-SHA256(key = ledger secret, msg = "Commit S").
func commitSecret(ledgerSecret []byte) []byte {
	m := hmac.New(sha256.New, ledgerSecret)
	m.Write([]byte("Commit S"))
	return m.Sum(nil)
}

// commitEvidence is CCF's commit evidence for a transaction:
// "ce:<view>.<seqno>:<hex(HMAC-SHA256(commit secret, "<view>.<seqno>"))>".
// Its SHA-256 is in the entry's public header; the string itself is revealed
// only in receipts of committed transactions.
func commitEvidence(secret []byte, view, seqno uint64) string {
	var id [48]byte
	b := strconv.AppendUint(id[:0], view, 10)
	b = append(b, '.')
	b = strconv.AppendUint(b, seqno, 10)
	m := hmac.New(sha256.New, secret)
	m.Write(b)
	var sum [32]byte
	out := make([]byte, 0, 3+len(b)+1+64)
	out = append(out, "ce:"...)
	out = append(out, b...)
	out = append(out, ':')
	out = hex.AppendEncode(out, m.Sum(sum[:0]))
	return string(out)
}

func commitEvidenceDigest(secret []byte, view, seqno uint64) [32]byte {
	return sha256.Sum256([]byte(commitEvidence(secret, view, seqno)))
}
