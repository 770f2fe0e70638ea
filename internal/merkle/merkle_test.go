package merkle

import (
	"encoding/hex"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"testing"
)

// testBudgets are the level-cache budgets the tree tests run with: from
// "almost everything read from the file" to "everything cached".
var testBudgets = []uint64{0, 2, 16, 64, defaultCacheBudget}

// openTestTree opens a new tree in a temporary directory.
func openTestTree(t testing.TB, budget uint64) (*Tree, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "tree")
	tree, err := open(path, budget)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tree.Close() })
	return tree, path
}

func mustAppend(t testing.TB, tree *Tree, leaves ...Hash) {
	t.Helper()
	if err := tree.Append(leaves...); err != nil {
		t.Fatal(err)
	}
}

func mustSync(t testing.TB, tree *Tree) {
	t.Helper()
	if err := tree.Sync(); err != nil {
		t.Fatal(err)
	}
}

// checkRoot checks Root(n) against the reference.
func checkRoot(t *testing.T, tree *Tree, ref *refTree, n int) {
	t.Helper()
	root, err := tree.Root(uint64(n))
	if err != nil {
		t.Fatal(err)
	}
	if want := ref.mth(0, n); root != want {
		t.Fatalf("Root(%d) = %v, want %v", n, root, want)
	}
}

// checkProofs checks every inclusion and consistency proof in the tree of
// size n against the reference, and verifies them.
func checkProofs(t *testing.T, tree *Tree, ref *refTree, n int) {
	t.Helper()
	root := ref.mth(0, n)
	for i := 0; i < n; i++ {
		proof, err := tree.InclusionProof(uint64(i), uint64(n))
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(proof, ref.path(i, 0, n)) {
			t.Fatalf("InclusionProof(%d, %d) differs from the reference", i, n)
		}
		if err := VerifyInclusion(ref.leaves[i], uint64(i), uint64(n), proof, root); err != nil {
			t.Fatal(err)
		}
	}
	for m := 1; m <= n; m++ {
		proof, err := tree.ConsistencyProof(uint64(m), uint64(n))
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(proof, ref.proof(m, n)) {
			t.Fatalf("ConsistencyProof(%d, %d) differs from the reference", m, n)
		}
		if err := VerifyConsistency(uint64(m), uint64(n), ref.mth(0, m), root, proof); err != nil {
			t.Fatal(err)
		}
	}
}

// TestTreeEverySize grows a tree leaf by leaf to 300 leaves, syncing every
// few leaves so that reads mix the file and the pending buffer, and checks
// the root, the Frontier and every proof at every size; then it reopens the
// tree and checks every historical size.
func TestTreeEverySize(t *testing.T) {
	const size = 300
	leaves := testLeaves(size, 0)
	ref := newRefTree(leaves)
	for _, budget := range testBudgets {
		t.Run(fmt.Sprintf("budget=%d", budget), func(t *testing.T) {
			tree, path := openTestTree(t, budget)
			var f Frontier
			for n := 1; n <= size; n++ {
				mustAppend(t, tree, leaves[n-1])
				f.Append(leaves[n-1])
				if n%7 == 0 {
					mustSync(t, tree)
				}
				checkRoot(t, tree, ref, n)
				if got := f.Root(); got != ref.mth(0, n) || f.Size() != uint64(n) {
					t.Fatalf("Frontier at %d leaves: root %v, want %v", n, got, ref.mth(0, n))
				}
				checkProofs(t, tree, ref, n)
			}
			if err := tree.Close(); err != nil {
				t.Fatal(err)
			}
			tree, err := open(path, budget)
			if err != nil {
				t.Fatal(err)
			}
			defer tree.Close()
			if tree.Size() != size {
				t.Fatalf("reopened Size() = %d, want %d", tree.Size(), size)
			}
			for n := 1; n <= size; n++ {
				checkRoot(t, tree, ref, n)
				checkProofs(t, tree, ref, n)
				if leaf, err := tree.Leaf(uint64(n - 1)); err != nil || leaf != leaves[n-1] {
					t.Fatalf("Leaf(%d) = %v, %v", n-1, leaf, err)
				}
			}
		})
	}
}

// TestKnownRoot pins the root of leaves SHA-256(uint64le(i)), i = 0..6,
// computed independently with Python's hashlib.
func TestKnownRoot(t *testing.T) {
	const want = "cfb692c6daf9c52bb2cd097c357319305f6527efbc1c5e680fb7860fa407186c"
	leaves := testLeaves(7, 0)
	if got := newRefTree(leaves).mth(0, 7).String(); got != want {
		t.Fatalf("reference root %s, want %s", got, want)
	}
	tree, _ := openTestTree(t, defaultCacheBudget)
	mustAppend(t, tree, leaves...)
	root, err := tree.Root(7)
	if err != nil {
		t.Fatal(err)
	}
	if root.String() != want {
		t.Fatalf("Root(7) = %v, want %s", root, want)
	}
}

func TestOutOfRange(t *testing.T) {
	tree, _ := openTestTree(t, defaultCacheBudget)
	if _, err := tree.Root(1); !errors.Is(err, ErrOutOfRange) {
		t.Fatalf("Root(1) of empty tree: %v", err)
	}
	mustAppend(t, tree, testLeaves(5, 0)...)
	calls := map[string]func() error{
		"Root(0)":               func() error { _, err := tree.Root(0); return err },
		"Root(6)":               func() error { _, err := tree.Root(6); return err },
		"Leaf(5)":               func() error { _, err := tree.Leaf(5); return err },
		"InclusionProof(3, 3)":  func() error { _, err := tree.InclusionProof(3, 3); return err },
		"InclusionProof(0, 6)":  func() error { _, err := tree.InclusionProof(0, 6); return err },
		"ConsistencyProof(0,3)": func() error { _, err := tree.ConsistencyProof(0, 3); return err },
		"ConsistencyProof(4,3)": func() error { _, err := tree.ConsistencyProof(4, 3); return err },
		"ConsistencyProof(3,6)": func() error { _, err := tree.ConsistencyProof(3, 6); return err },
		"Truncate(6)":           func() error { return tree.Truncate(6) },
	}
	for name, call := range calls {
		if err := call(); !errors.Is(err, ErrOutOfRange) {
			t.Errorf("%s: %v, want ErrOutOfRange", name, err)
		}
	}
}

// tamperHash returns h with one bit flipped.
func tamperHash(h Hash, j int) Hash {
	h[j%HashSize] ^= 1 << (j % 8)
	return h
}

// TestVerifyInclusionRejects checks that every way of damaging a valid
// inclusion proof is rejected, for every leaf of every size up to 300.
func TestVerifyInclusionRejects(t *testing.T) {
	leaves := testLeaves(300, 0)
	ref := newRefTree(leaves)
	for n := 1; n <= len(leaves); n++ {
		root := ref.mth(0, n)
		for i := 0; i < n; i++ {
			proof := ref.path(i, 0, n)
			if got := RootFromInclusionProof(leaves[i], proof); got != root {
				t.Fatalf("RootFromInclusionProof(%d, %d) = %v, want %v", i, n, got, root)
			}
			for name, bad := range inclusionTampers(proof, i+n) {
				if err := VerifyInclusion(leaves[i], uint64(i), uint64(n), bad, root); !errors.Is(err, ErrProofInvalid) {
					t.Fatalf("i=%d n=%d %s: %v", i, n, name, err)
				}
			}
			mustReject := func(what string, leaf Hash, i2 uint64, r Hash) {
				if err := VerifyInclusion(leaf, i2, uint64(n), proof, r); !errors.Is(err, ErrProofInvalid) {
					t.Fatalf("i=%d n=%d %s: %v", i, n, what, err)
				}
			}
			mustReject("wrong root", leaves[i], uint64(i), tamperHash(root, i))
			mustReject("wrong leaf", tamperHash(leaves[i], n), uint64(i), root)
			mustReject("index beyond size", leaves[i], uint64(n), root)
			if n > 1 {
				mustReject("wrong index", leaves[i], uint64((i+1)%n), root)
			}
		}
	}
}

// inclusionTampers returns damaged copies of proof; seed picks what to damage.
func inclusionTampers(proof []ProofStep, seed int) map[string][]ProofStep {
	bad := map[string][]ProofStep{
		"extra step": append(slices.Clone(proof), ProofStep{Hash: testLeaf(1)}),
	}
	if len(proof) == 0 {
		return bad
	}
	j := seed % len(proof)
	hash, dir := slices.Clone(proof), slices.Clone(proof)
	hash[j].Hash = tamperHash(hash[j].Hash, seed)
	dir[j].Left = !dir[j].Left
	bad["tampered hash"], bad["flipped direction"] = hash, dir
	bad["missing step"] = proof[:len(proof)-1]
	return bad
}

// TestVerifyConsistencyRejects checks that damaged consistency proofs and
// wrong roots are rejected for every pair of sizes up to 300.
func TestVerifyConsistencyRejects(t *testing.T) {
	leaves := testLeaves(300, 0)
	ref := newRefTree(leaves)
	for n := 1; n <= len(leaves); n++ {
		rootN := ref.mth(0, n)
		for m := 1; m <= n; m++ {
			rootM, proof := ref.mth(0, m), ref.proof(m, n)
			for name, bad := range consistencyTampers(proof, m+n) {
				if err := VerifyConsistency(uint64(m), uint64(n), rootM, rootN, bad); !errors.Is(err, ErrProofInvalid) {
					t.Fatalf("m=%d n=%d %s: %v", m, n, name, err)
				}
			}
			if err := VerifyConsistency(uint64(m), uint64(n), tamperHash(rootM, n), rootN, proof); !errors.Is(err, ErrProofInvalid) {
				t.Fatalf("m=%d n=%d wrong old root: %v", m, n, err)
			}
			if err := VerifyConsistency(uint64(m), uint64(n), rootM, tamperHash(rootN, m), proof); !errors.Is(err, ErrProofInvalid) {
				t.Fatalf("m=%d n=%d wrong new root: %v", m, n, err)
			}
		}
	}
	if err := VerifyConsistency(0, 1, Hash{}, Hash{}, nil); !errors.Is(err, ErrProofInvalid) {
		t.Fatalf("m=0: %v", err)
	}
	if err := VerifyConsistency(2, 1, Hash{}, Hash{}, nil); !errors.Is(err, ErrProofInvalid) {
		t.Fatalf("m>n: %v", err)
	}
}

// consistencyTampers returns damaged copies of proof; seed picks what to
// damage.
func consistencyTampers(proof []Hash, seed int) map[string][]Hash {
	bad := map[string][]Hash{
		"extra hash": append(slices.Clone(proof), testLeaf(1)),
	}
	if len(proof) == 0 {
		return bad
	}
	j := seed % len(proof)
	hash := slices.Clone(proof)
	hash[j] = tamperHash(hash[j], seed)
	bad["tampered hash"] = hash
	bad["missing hash"] = proof[:len(proof)-1]
	bad["missing first hash"] = proof[1:]
	return bad
}

func TestStoredHashIndex(t *testing.T) {
	// tlog's definition: level L's n'th hash is written right after level
	// L+1's 2n+1'th hash; level 0's n'th hash at n + n/2 + n/4 + ...
	tlogIndex := func(level int, n uint64) uint64 {
		for l := level; l > 0; l-- {
			n = 2*n + 1
		}
		i := uint64(0)
		for ; n > 0; n >>= 1 {
			i += n
		}
		return i + uint64(level)
	}
	// Lay the records out and check every index and count against it.
	var next uint64
	for leaf := uint64(0); leaf < 1<<12; leaf++ {
		if got := storedHashCount(leaf); got != next {
			t.Fatalf("storedHashCount(%d) = %d, want %d", leaf, got, next)
		}
		for level := 0; level == 0 || leaf>>(level-1)&1 == 1; level++ {
			if got, want := storedHashIndex(level, leaf>>level), tlogIndex(level, leaf>>level); got != next || want != next {
				t.Fatalf("storedHashIndex(%d, %d) = %d (tlog %d), want %d", level, leaf>>level, got, want, next)
			}
			next++
		}
		for c := storedHashCount(leaf); c < next; c++ {
			if got := sizeForStoredHashes(c); got != leaf {
				t.Fatalf("sizeForStoredHashes(%d) = %d, want %d", c, got, leaf)
			}
		}
	}
}

// TestFrontierEmpty checks the documented zero root of an empty Frontier.
func TestFrontierEmpty(t *testing.T) {
	var f Frontier
	if f.Size() != 0 || f.Root() != (Hash{}) {
		t.Fatalf("empty Frontier: size %d root %v", f.Size(), f.Root())
	}
}

func TestHashString(t *testing.T) {
	h := HashChildren(Hash{}, Hash{})
	// SHA-256 of 64 zero bytes.
	const want = "f5a5fd42d16a20302798ef6ed309979b43003d2320d9f0e8ea9831a92759fb4b"
	if h.String() != want {
		t.Fatalf("HashChildren(0, 0) = %v, want %s", h, want)
	}
	if _, err := hex.DecodeString(h.String()); err != nil {
		t.Fatal(err)
	}
}
