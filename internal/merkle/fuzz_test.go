package merkle

import (
	"encoding/binary"
	"os"
	"path/filepath"
	"testing"
)

// fuzzInput reads the parts of a fuzzed proof from data.
type fuzzInput struct{ data []byte }

func (in *fuzzInput) hash() Hash {
	var h Hash
	in.data = in.data[copy(h[:], in.data):]
	return h
}

// size reads a small uint64 so that sizes and proofs often fit each other.
func (in *fuzzInput) size() uint64 {
	var b [2]byte
	in.data = in.data[copy(b[:], in.data):]
	return uint64(binary.LittleEndian.Uint16(b[:]))
}

func (in *fuzzInput) steps() []ProofStep {
	var proof []ProofStep
	for len(in.data) > 0 {
		left := in.data[0]&1 == 1
		in.data = in.data[1:]
		proof = append(proof, ProofStep{Left: left, Hash: in.hash()})
	}
	return proof
}

func (in *fuzzInput) hashes() []Hash {
	var proof []Hash
	for len(in.data) > 0 {
		proof = append(proof, in.hash())
	}
	return proof
}

// encodeInclusion is the fuzz encoding of a VerifyInclusion call.
func encodeInclusion(leaf Hash, i, n uint64, root Hash, proof []ProofStep) []byte {
	b := append(leaf[:], root[:]...)
	b = binary.LittleEndian.AppendUint16(b, uint16(i))
	b = binary.LittleEndian.AppendUint16(b, uint16(n))
	for _, s := range proof {
		dir := byte(0)
		if s.Left {
			dir = 1
		}
		b = append(append(b, dir), s.Hash[:]...)
	}
	return b
}

func FuzzVerifyInclusion(f *testing.F) {
	leaves := testLeaves(37, 0)
	ref := newRefTree(leaves)
	for _, c := range [][2]int{{0, 1}, {3, 7}, {35, 36}, {36, 37}, {16, 37}} {
		f.Add(encodeInclusion(leaves[c[0]], uint64(c[0]), uint64(c[1]), ref.mth(0, c[1]), ref.path(c[0], 0, c[1])))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		in := &fuzzInput{data}
		leaf, root := in.hash(), in.hash()
		i, n := in.size(), in.size()
		proof := in.steps()
		if VerifyInclusion(leaf, i, n, proof, root) == nil {
			if RootFromInclusionProof(leaf, proof) != root || len(proof) != inclusionProofLen(i, n) {
				t.Fatalf("accepted a proof that doesn't fold to the root or has the wrong length")
			}
		}
	})
}

func FuzzVerifyConsistency(f *testing.F) {
	leaves := testLeaves(37, 0)
	ref := newRefTree(leaves)
	for _, c := range [][2]int{{1, 1}, {1, 2}, {3, 7}, {4, 8}, {36, 37}, {16, 37}} {
		rootM, rootN := ref.mth(0, c[0]), ref.mth(0, c[1])
		b := append(rootM[:], rootN[:]...)
		b = binary.LittleEndian.AppendUint16(b, uint16(c[0]))
		b = binary.LittleEndian.AppendUint16(b, uint16(c[1]))
		for _, h := range ref.proof(c[0], c[1]) {
			b = append(b, h[:]...)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		in := &fuzzInput{data}
		rootM, rootN := in.hash(), in.hash()
		m, n := in.size(), in.size()
		VerifyConsistency(m, n, rootM, rootN, in.hashes())
	})
}

// FuzzOpen opens arbitrary file contents. Open must not panic, and a tree it
// accepts must give proofs that verify against its roots. (Appending after a
// recovery is TestTornTail's and TestGarbageTail's job: fsyncs are slow.)
func FuzzOpen(f *testing.F) {
	f.Add([]byte{})
	f.Add([]byte("ledgerd/merkle\x00\x01"))
	f.Add([]byte("ledgerd/merkle\x00\x02"))
	for _, n := range []int{1, 2, 3, 7, 8, 13} {
		f.Add(treeFileBytes(f, testLeaves(n, 0)))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		path := filepath.Join(t.TempDir(), "tree")
		if err := os.WriteFile(path, data, 0o644); err != nil {
			t.Fatal(err)
		}
		tree, err := open(path, 4)
		if err != nil {
			return
		}
		defer tree.Close()
		checkOpened(t, tree)
	})
}

// checkOpened checks that every proof of tree verifies against its roots.
func checkOpened(t *testing.T, tree *Tree) {
	size := tree.Size()
	if size == 0 || size > 64 {
		return
	}
	rootN, err := tree.Root(size)
	if err != nil {
		t.Fatal(err)
	}
	for i := range size {
		leaf, err := tree.Leaf(i)
		if err != nil {
			t.Fatal(err)
		}
		proof, err := tree.InclusionProof(i, size)
		if err != nil {
			t.Fatal(err)
		}
		if err := VerifyInclusion(leaf, i, size, proof, rootN); err != nil {
			t.Fatal(err)
		}
		rootM, err := tree.Root(i + 1)
		if err != nil {
			t.Fatal(err)
		}
		cproof, err := tree.ConsistencyProof(i+1, size)
		if err != nil {
			t.Fatal(err)
		}
		if err := VerifyConsistency(i+1, size, rootM, rootN, cproof); err != nil {
			t.Fatal(err)
		}
	}
}

// treeFileBytes returns the file of a synced tree of the given leaves.
func treeFileBytes(tb testing.TB, leaves []Hash) []byte {
	path := filepath.Join(tb.TempDir(), "tree")
	tree, err := Open(path)
	if err != nil {
		tb.Fatal(err)
	}
	mustAppend(tb, tree, leaves...)
	if err := tree.Close(); err != nil {
		tb.Fatal(err)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		tb.Fatal(err)
	}
	return data
}
