package merkle

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/ledgerd/ledgerd/internal/testfs"
)

// checkTree checks Size, a spread of roots and proofs of tree against leaves.
func checkTree(t *testing.T, tree *Tree, leaves []Hash) {
	t.Helper()
	if got := tree.Size(); got != uint64(len(leaves)) {
		t.Fatalf("Size() = %d, want %d", got, len(leaves))
	}
	ref := newRefTree(leaves)
	for _, n := range sampleSizes(len(leaves)) {
		checkRoot(t, tree, ref, n)
		for _, i := range sampleSizes(n) {
			i--
			proof, err := tree.InclusionProof(uint64(i), uint64(n))
			if err != nil {
				t.Fatal(err)
			}
			if err := VerifyInclusion(leaves[i], uint64(i), uint64(n), proof, ref.mth(0, n)); err != nil {
				t.Fatal(err)
			}
			proof2, err := tree.ConsistencyProof(uint64(i+1), uint64(n))
			if err != nil {
				t.Fatal(err)
			}
			if err := VerifyConsistency(uint64(i+1), uint64(n), ref.mth(0, i+1), ref.mth(0, n), proof2); err != nil {
				t.Fatal(err)
			}
		}
	}
}

// sampleSizes returns sizes in [1, n]: the small ones, the ones around
// powers of two and the last ones.
func sampleSizes(n int) []int {
	var sizes []int
	for s := 1; s <= n; s++ {
		if s <= 9 || s > n-9 || (s&(s-1)) == 0 || ((s+1)&s) == 0 || s%97 == 0 {
			sizes = append(sizes, s)
		}
	}
	return sizes
}

// buildFile writes a synced tree of the given leaves, in batches, and
// returns its path.
func buildFile(t *testing.T, leaves []Hash, batch int) string {
	t.Helper()
	tree, path := openTestTree(t, defaultCacheBudget)
	for lo := 0; lo < len(leaves); lo += batch {
		mustAppend(t, tree, leaves[lo:min(lo+batch, len(leaves))]...)
		mustSync(t, tree)
	}
	if err := tree.Close(); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestReopen(t *testing.T) {
	leaves := testLeaves(5000, 0)
	path := buildFile(t, leaves, 333)
	for _, budget := range testBudgets {
		t.Run(fmt.Sprintf("budget=%d", budget), func(t *testing.T) {
			tree, err := open(path, budget)
			if err != nil {
				t.Fatal(err)
			}
			defer tree.Close()
			if tree.SyncedSize() != uint64(len(leaves)) {
				t.Fatalf("SyncedSize() = %d", tree.SyncedSize())
			}
			checkTree(t, tree, leaves)
		})
	}
}

// copyFile copies the tree file at path into a new temporary file.
func copyFile(t *testing.T, path string) string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	dst := filepath.Join(t.TempDir(), "tree")
	if err := os.WriteFile(dst, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return dst
}

// reopenAndExtend opens path, checks that it holds leaves[:want] and a file
// of exactly that size, appends the remaining leaves and checks again, also
// after a second reopen.
func reopenAndExtend(t *testing.T, path string, leaves []Hash, want int) {
	t.Helper()
	tree, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	checkTree(t, tree, leaves[:want])
	if info, err := os.Stat(path); err != nil || info.Size() != fileOffset(storedHashCount(uint64(want))) {
		t.Fatalf("file not cut back to %d leaves: %v, %v", want, info.Size(), err)
	}
	mustAppend(t, tree, leaves[want:]...)
	if err := tree.Close(); err != nil {
		t.Fatal(err)
	}
	if tree, err = Open(path); err != nil {
		t.Fatal(err)
	}
	defer tree.Close()
	checkTree(t, tree, leaves)
}

// TestTornTail cuts a few bytes off the end of a tree file, as a crash in
// the middle of a write does: Open must come back at the largest size whose
// records are whole.
func TestTornTail(t *testing.T) {
	leaves := testLeaves(100, 0)
	path := buildFile(t, leaves, 30)
	full := fileOffset(storedHashCount(100))
	for _, cut := range []int64{1, 5, 31, 32, 33, 64 + 5, 200, full - headerSize} {
		t.Run(fmt.Sprintf("cut=%d", cut), func(t *testing.T) {
			torn := copyFile(t, path)
			if err := os.Truncate(torn, full-cut); err != nil {
				t.Fatal(err)
			}
			want := int(sizeForStoredHashes(uint64(full-cut-headerSize) / HashSize))
			if want >= 100 || (cut >= 32*3 && want >= 99) {
				t.Fatalf("bad test: cut %d leaves %d leaves", cut, want)
			}
			reopenAndExtend(t, torn, leaves, want)
		})
	}
}

// TestGarbageTail damages the last records without changing the file's
// length, as a crash does when pages of the last write are lost: Open must
// cut the tree back before the first record whose hashes don't match.
func TestGarbageTail(t *testing.T) {
	leaves := testLeaves(100, 0)
	path := buildFile(t, leaves, 30)
	cases := []struct {
		name  string
		leaf  uint64 // first damaged record
		level int    // first damaged hash in it
		want  int    // size after Open
		fill  byte
	}{
		// Leaf 99's record holds the leaf and two subtree hashes.
		{"zeroed parent", 99, 2, 99, 0},
		// A bad level-1 hash may be either leaf's fault: cut before both.
		{"zeroed leaf", 99, 0, 98, 0},
		// Leaf 98 completes no subtree: its damage shows in leaf 99's record.
		{"garbage from leaf 98", 98, 0, 98, 0x5a},
		{"garbage from leaf 80", 80, 0, 80, 0xff},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			bad := copyFile(t, path)
			data, err := os.ReadFile(bad)
			if err != nil {
				t.Fatal(err)
			}
			from := fileOffset(storedHashCount(tc.leaf) + uint64(tc.level))
			copy(data[from:], bytes.Repeat([]byte{tc.fill}, len(data)-int(from)))
			if err := os.WriteFile(bad, data, 0o644); err != nil {
				t.Fatal(err)
			}
			reopenAndExtend(t, bad, leaves, tc.want)
		})
	}
}

// TestZeroExtendedTail appends zero pages, as a file system may after a
// crash that extended the file but lost the data.
func TestZeroExtendedTail(t *testing.T) {
	leaves := testLeaves(100, 0)
	path := buildFile(t, leaves[:99], 30)
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write(make([]byte, 4096)); err != nil {
		t.Fatal(err)
	}
	f.Close()
	// The zero record of leaf 99 stores a zero level-1 parent, which
	// may be leaf 98's fault as well: cut back to 98.
	reopenAndExtend(t, path, leaves, 98)
}

func TestCorruptFile(t *testing.T) {
	good := append([]byte("ledgerd/merkle\x00\x01"), make([]byte, 64)...)
	cases := map[string][]byte{
		"empty":         nil,
		"short":         good[:10],
		"wrong magic":   append([]byte("LEDGERD/merkle\x00\x01"), good[16:]...),
		"wrong version": append([]byte("ledgerd/merkle\x00\x02"), good[16:]...),
	}
	for name, data := range cases {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "tree")
			if err := os.WriteFile(path, data, 0o644); err != nil {
				t.Fatal(err)
			}
			if _, err := Open(path); !errors.Is(err, ErrCorrupt) {
				t.Fatalf("Open: %v, want ErrCorrupt", err)
			}
		})
	}
}

func TestOpenCreates(t *testing.T) {
	path := filepath.Join(t.TempDir(), "tree")
	tree, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	if tree.Size() != 0 {
		t.Fatalf("new tree Size() = %d", tree.Size())
	}
	if err := tree.Close(); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(path)
	if err != nil || string(data) != "ledgerd/merkle\x00\x01" {
		t.Fatalf("new file %q, %v", data, err)
	}
	if _, err := os.Stat(path + ".tmp"); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("temporary file left behind: %v", err)
	}
	if _, err := Open(filepath.Join(t.TempDir(), "missing", "tree")); err == nil {
		t.Fatal("Open in a missing directory succeeded")
	}
}

// TestTruncate rolls the tree back within the unsynced tail and below the
// synced part, appends different leaves and compares with a tree built
// afresh from the same leaves, also after reopening.
func TestTruncate(t *testing.T) {
	a, b, c := testLeaves(400, 1), testLeaves(400, 2), testLeaves(400, 3)
	for _, budget := range testBudgets {
		t.Run(fmt.Sprintf("budget=%d", budget), func(t *testing.T) {
			tree, path := openTestTree(t, budget)
			mustAppend(t, tree, a[:150]...)
			mustSync(t, tree)
			mustAppend(t, tree, a[150:200]...)

			// Within the buffered tail: leaves 170.. are replaced by b's.
			if err := tree.Truncate(170); err != nil {
				t.Fatal(err)
			}
			if tree.SyncedSize() != 170 {
				t.Fatalf("SyncedSize() = %d after Truncate, want 170", tree.SyncedSize())
			}
			want := append(append([]Hash{}, a[:170]...), b[170:260]...)
			mustAppend(t, tree, want[170:]...)
			checkTree(t, tree, want)
			mustSync(t, tree)

			// Below the synced part: leaves 100.. are replaced by c's.
			if err := tree.Truncate(100); err != nil {
				t.Fatal(err)
			}
			if info, err := os.Stat(path); err != nil || info.Size() != fileOffset(storedHashCount(100)) {
				t.Fatalf("file not truncated: %v", err)
			}
			want = append(want[:100:100], c[100:300]...)
			mustAppend(t, tree, want[100:]...)
			checkTree(t, tree, want)

			// The truncation and what followed survive a reopen.
			if err := tree.Close(); err != nil {
				t.Fatal(err)
			}
			tree, err := open(path, budget)
			if err != nil {
				t.Fatal(err)
			}
			defer tree.Close()
			checkTree(t, tree, want)

			// A synced truncation survives a reopen on its own.
			if err := tree.Truncate(42); err != nil {
				t.Fatal(err)
			}
			tree.Close()
			if tree, err = open(path, budget); err != nil {
				t.Fatal(err)
			}
			checkTree(t, tree, want[:42])

			// Down to nothing, and up again.
			if err := tree.Truncate(0); err != nil {
				t.Fatal(err)
			}
			mustAppend(t, tree, c[:77]...)
			checkTree(t, tree, c[:77])
		})
	}
}

func TestClosed(t *testing.T) {
	tree, _ := openTestTree(t, defaultCacheBudget)
	mustAppend(t, tree, testLeaves(3, 0)...)
	if err := tree.Close(); err != nil {
		t.Fatal(err)
	}
	calls := map[string]func() error{
		"Close":            tree.Close,
		"Sync":             tree.Sync,
		"Append":           func() error { return tree.Append(Hash{}) },
		"Truncate":         func() error { return tree.Truncate(0) },
		"Root":             func() error { _, err := tree.Root(1); return err },
		"Leaf":             func() error { _, err := tree.Leaf(0); return err },
		"InclusionProof":   func() error { _, err := tree.InclusionProof(0, 1); return err },
		"ConsistencyProof": func() error { _, err := tree.ConsistencyProof(1, 1); return err },
	}
	for name, call := range calls {
		if err := call(); !errors.Is(err, ErrClosed) {
			t.Errorf("%s after Close: %v, want ErrClosed", name, err)
		}
	}
}

// TestWriteFailure makes a Sync fail and checks that the tree then refuses
// writes, and that reopening recovers the synced leaves.
func TestWriteFailure(t *testing.T) {
	leaves := testLeaves(50, 0)
	tree, path := openTestTree(t, defaultCacheBudget)
	mustAppend(t, tree, leaves[:30]...)
	mustSync(t, tree)
	mustAppend(t, tree, leaves[30:]...)
	tree.f.Close() // behind the tree's back: the next write fails
	if err := tree.Sync(); err == nil {
		t.Fatal("Sync on a closed file succeeded")
	}
	if err := tree.Append(Hash{}); err == nil {
		t.Fatal("Append after a failed Sync succeeded")
	}
	if err := tree.Truncate(10); err == nil {
		t.Fatal("Truncate after a failed Sync succeeded")
	}
	tree.Close()
	tree, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer tree.Close()
	checkTree(t, tree, leaves[:30])
}

// TestCrashAfterSync copies the file while leaves are buffered, as a crash
// after a Sync would leave it: the copy opens at exactly the synced leaves.
func TestCrashAfterSync(t *testing.T) {
	leaves := testLeaves(500, 0)
	tree, path := openTestTree(t, 16)
	for lo := 0; lo < len(leaves); lo += 90 {
		mustAppend(t, tree, leaves[lo:min(lo+90, len(leaves))]...)
		if lo%180 == 0 {
			mustSync(t, tree)
		}
		crashed, err := Open(copyFile(t, path))
		if err != nil {
			t.Fatal(err)
		}
		checkTree(t, crashed, leaves[:tree.SyncedSize()])
		crashed.Close()
	}
}

// TestDiskFull fills the file system under the tree: Flush and Sync report
// ENOSPC, the tree keeps its leaves and takes more, and once space returns
// they are written; the reopened file holds every leaf.
func TestDiskFull(t *testing.T) {
	dir := testfs.Tmpfs(t, 256<<10)
	leaves := testLeaves(3000, 0)
	path := filepath.Join(dir, "merkle.tree")
	tree, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	mustAppend(t, tree, leaves[:1000]...)
	mustSync(t, tree)
	free := testfs.Fill(t, dir)
	mustAppend(t, tree, leaves[1000:2000]...)
	if err := tree.Flush(); !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("Flush on a full disk: %v, want ENOSPC", err)
	}
	mustAppend(t, tree, leaves[2000:]...)
	if err := tree.Sync(); !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("Sync on a full disk: %v, want ENOSPC", err)
	}
	checkTree(t, tree, leaves)
	free()
	mustSync(t, tree)
	if err := tree.Close(); err != nil {
		t.Fatal(err)
	}
	if tree, err = Open(path); err != nil {
		t.Fatal(err)
	}
	defer tree.Close()
	checkTree(t, tree, leaves)
}
