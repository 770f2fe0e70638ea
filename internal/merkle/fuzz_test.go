package merkle

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
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

// fuzzTreeSize is the size of the tree FuzzVerifyConsistency proves from.
const fuzzTreeSize = 300

// FuzzVerifyConsistency checks properties of consistency proofs, not only
// that VerifyConsistency does not panic, for sizes 1 <= m <= n <= 300 drawn
// by the fuzzer from one tree (a file-backed Tree with a small level cache,
// so that proofs read the file):
//   - the proof the Tree generates equals the reference (RFC 9162) proof
//     and verifies against the Tree's roots;
//   - the proof with one bit of one hash flipped, with a hash dropped or
//     added, against a mutated old or new root, never verifies;
//   - the proof for (m, n) verifies for another old size m2 (with m2's
//     true root) only if it is also m2's proof;
//   - an arbitrary proof (the fuzzer's bytes) against the true roots
//     verifies only if it is the true proof.
func FuzzVerifyConsistency(f *testing.F) {
	leaves := testLeaves(fuzzTreeSize, 0)
	ref := newRefTree(leaves)
	tree, _ := openTestTree(f, 2)
	mustAppend(f, tree, leaves...)
	mustSync(f, tree)
	for _, c := range [][2]uint16{{1, 1}, {1, 2}, {3, 7}, {4, 8}, {36, 37}, {16, 37}, {127, 300}, {299, 300}} {
		f.Add(c[0], c[1], uint16(0), uint16(7), []byte(nil))
	}
	f.Add(uint16(5), uint16(9), uint16(3), uint16(255), bytesOfHashes(ref.proof(5, 9)))
	f.Fuzz(func(t *testing.T, mm, nn, mm2, bit uint16, arbitrary []byte) {
		n := uint64(nn)%fuzzTreeSize + 1
		m := uint64(mm)%n + 1
		m2 := uint64(mm2)%n + 1
		rootM, err := tree.Root(m)
		if err != nil {
			t.Fatal(err)
		}
		rootN, err := tree.Root(n)
		if err != nil {
			t.Fatal(err)
		}
		if rootM != ref.mth(0, int(m)) || rootN != ref.mth(0, int(n)) {
			t.Fatalf("roots of %d and %d differ from the reference", m, n)
		}
		proof, err := tree.ConsistencyProof(m, n)
		if err != nil {
			t.Fatal(err)
		}
		if want := ref.proof(int(m), int(n)); !slices.Equal(proof, want) {
			t.Fatalf("m=%d n=%d: proof %v, reference %v", m, n, proof, want)
		}
		if err := VerifyConsistency(m, n, rootM, rootN, proof); err != nil {
			t.Fatalf("m=%d n=%d: the generated proof doesn't verify: %v", m, n, err)
		}
		rejects := func(what string, m uint64, rootM, rootN Hash, proof []Hash) {
			t.Helper()
			if err := VerifyConsistency(m, n, rootM, rootN, proof); !errors.Is(err, ErrProofInvalid) {
				t.Fatalf("m=%d n=%d %s: %v, want ErrProofInvalid", m, n, what, err)
			}
		}
		flip := func(h Hash) Hash { h[int(bit/8)%len(h)] ^= 1 << (bit % 8); return h }
		rejects("mutated old root", m, flip(rootM), rootN, proof)
		rejects("mutated new root", m, rootM, flip(rootN), proof)
		rejects("extra hash", m, rootM, rootN, append(slices.Clone(proof), flip(rootN)))
		if len(proof) > 0 {
			j := int(bit) % len(proof)
			bad := slices.Clone(proof)
			bad[j] = flip(bad[j])
			rejects(fmt.Sprintf("hash %d mutated", j), m, rootM, rootN, bad)
			rejects("last hash dropped", m, rootM, rootN, proof[:len(proof)-1])
			rejects("first hash dropped", m, rootM, rootN, proof[1:])
		}
		if m2 != m {
			root2 := ref.mth(0, int(m2))
			if VerifyConsistency(m2, n, root2, rootN, proof) == nil && !slices.Equal(proof, ref.proof(int(m2), int(n))) {
				t.Fatalf("the proof for m=%d n=%d verifies for m=%d", m, n, m2)
			}
		}
		if arb := (&fuzzInput{arbitrary}).hashes(); VerifyConsistency(m, n, rootM, rootN, arb) == nil && !slices.Equal(arb, proof) {
			t.Fatalf("m=%d n=%d: an arbitrary proof verifies: %v", m, n, arb)
		}
	})
}

// bytesOfHashes is the fuzz encoding of a list of hashes.
func bytesOfHashes(hs []Hash) []byte {
	var b []byte
	for _, h := range hs {
		b = append(b, h[:]...)
	}
	return b
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
