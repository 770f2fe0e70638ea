package merkle

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"os"
	"testing"
)

// TestACLReceipt checks the proof of a receipt from Azure Confidential
// Ledger (testdata/acl-receipt-2022-05-13.json at the repository's root): the
// transaction at seqno 35, proven in the tree of 36 leaves signed at seqno 36.
func TestACLReceipt(t *testing.T) {
	data, err := os.ReadFile("../../testdata/acl-receipt-2022-05-13.json")
	if err != nil {
		t.Skipf("no ACL receipt test vector: %v", err)
	}
	var v struct {
		Receipt struct {
			LeafComponents struct {
				ClaimsDigest, CommitEvidence, WriteSetDigest string
			}
			Proof []map[string]string
		}
		Expected struct{ Leaf, Root string }
	}
	if err := json.Unmarshal(data, &v); err != nil {
		t.Fatal(err)
	}
	// ccf-format.md §4.1: leaf = SHA-256(ws || SHA-256(ce) || claims).
	lc := v.Receipt.LeafComponents
	ce := sha256.Sum256([]byte(lc.CommitEvidence))
	leafInput := append(mustHex(t, lc.WriteSetDigest), ce[:]...)
	leaf := Hash(sha256.Sum256(append(leafInput, mustHex(t, lc.ClaimsDigest)...)))
	if leaf.String() != v.Expected.Leaf {
		t.Fatalf("leaf %v, want %s", leaf, v.Expected.Leaf)
	}
	var proof []ProofStep
	for _, step := range v.Receipt.Proof {
		for dir, h := range step {
			proof = append(proof, ProofStep{Left: dir == "left", Hash: Hash(mustHex(t, h))})
		}
	}
	root := RootFromInclusionProof(leaf, proof)
	if root.String() != v.Expected.Root {
		t.Fatalf("root %v, want %s", root, v.Expected.Root)
	}
	if err := VerifyInclusion(leaf, 35, 36, proof, root); err != nil {
		t.Fatal(err)
	}
	if err := VerifyInclusion(leaf, 34, 36, proof, root); err == nil {
		t.Fatal("the proof verified for seqno 34")
	}
}

func mustHex(t *testing.T, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil || len(b) != HashSize {
		t.Fatalf("bad hash %q: %v", s, err)
	}
	return b
}
