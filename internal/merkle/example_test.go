package merkle_test

import (
	"crypto/sha256"
	"fmt"
	"log"
	"os"
	"path/filepath"

	"github.com/ledgerd/ledgerd/internal/merkle"
)

// The ledger's tree: leaf 0 is 32 zero bytes and leaf i the digest of the
// transaction at seqno i. The signature at seqno 4 signs Root(4), and the
// receipt of seqno 2 is its inclusion proof in the tree of 4 leaves: the
// right sibling SHA-256("tx 3"), then the left sibling H(leaf 0 || leaf 1).
func Example() {
	dir, err := os.MkdirTemp("", "merkle-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	tree, err := merkle.Open(filepath.Join(dir, "tree"))
	if err != nil {
		log.Fatal(err)
	}
	defer tree.Close()

	leaves := []merkle.Hash{{}} // leaf 0
	for _, tx := range []string{"tx 1", "tx 2", "tx 3"} {
		leaves = append(leaves, sha256.Sum256([]byte(tx)))
	}
	if err := tree.Append(leaves...); err != nil {
		log.Fatal(err)
	}
	if err := tree.Sync(); err != nil {
		log.Fatal(err)
	}

	root, err := tree.Root(4)
	if err != nil {
		log.Fatal(err)
	}
	proof, err := tree.InclusionProof(2, 4)
	if err != nil {
		log.Fatal(err)
	}
	for _, step := range proof {
		fmt.Printf("left=%v %.16s…\n", step.Left, step.Hash)
	}
	fmt.Println(merkle.VerifyInclusion(leaves[2], 2, 4, proof, root))
	fmt.Println(merkle.RootFromInclusionProof(leaves[2], proof) == root)
	// Output:
	// left=false 295b8acee9873880…
	// left=true ea2252bb14b8587a…
	// <nil>
	// true
}
