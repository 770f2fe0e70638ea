package merkle

import (
	"bytes"
	"errors"
	"os"
	"testing"
)

// An auditor opens a running node's tree file: OpenReadOnly must never
// write to it, even when its tail is torn (a write in progress), where Open
// would cut the tail back and the node would lose leaves (issue 8 item 4).
func TestOpenReadOnlyNeverWrites(t *testing.T) {
	leaves := testLeaves(1000, 0)
	path := buildFile(t, leaves, 100)
	// A write in progress: half a record of the next leaf.
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write(bytes.Repeat([]byte{7}, HashSize/2)); err != nil {
		t.Fatal(err)
	}
	f.Close()
	before, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}

	tree, err := OpenReadOnly(path)
	if err != nil {
		t.Fatal(err)
	}
	checkTree(t, tree, leaves)
	if err := tree.Append(Hash{}); !errors.Is(err, ErrReadOnly) {
		t.Fatalf("Append on a read-only tree: %v, want ErrReadOnly", err)
	}
	if err := tree.Truncate(10); !errors.Is(err, ErrReadOnly) {
		t.Fatalf("Truncate on a read-only tree: %v, want ErrReadOnly", err)
	}
	if err := tree.Sync(); !errors.Is(err, ErrReadOnly) {
		t.Fatalf("Sync on a read-only tree: %v, want ErrReadOnly", err)
	}
	if err := tree.Close(); err != nil {
		t.Fatal(err)
	}
	after, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(before, after) {
		t.Fatalf("OpenReadOnly changed the file: %d bytes before, %d after", len(before), len(after))
	}
	if _, err := OpenReadOnly(path + ".missing"); err == nil {
		t.Fatal("OpenReadOnly created a missing file")
	}
	if _, err := os.Stat(path + ".missing"); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("OpenReadOnly left a file behind: %v", err)
	}
}

// CheckRecords finds a damaged subtree hash anywhere in the file, where
// Open re-checks only the last 16384 leaves.
func TestCheckRecordsFindsOldDamage(t *testing.T) {
	leaves := testLeaves(tailCheckLeaves+4000, 0)
	path := buildFile(t, leaves, 4096)
	tree, err := OpenReadOnly(path)
	if err != nil {
		t.Fatal(err)
	}
	if _, found, err := tree.CheckRecords(0, tree.Size()); found || err != nil {
		t.Fatalf("intact file: damage found (%v)", err)
	}
	tree.Close()
	// Leaf 1001's record: its leaf, then the level-1 hash H(leaf 1000, leaf 1001).
	b, _ := os.ReadFile(path)
	b[fileOffset(storedHashCount(1001)+1)] ^= 1
	os.WriteFile(path, b, 0o644)
	tree, err = OpenReadOnly(path)
	if err != nil {
		t.Fatal(err)
	}
	defer tree.Close()
	if tree.Size() != uint64(len(leaves)) {
		t.Fatalf("Size %d: damage this old is beyond Open's tail check", tree.Size())
	}
	if leaf, found, err := tree.CheckRecords(0, tree.Size()); !found || err != nil || leaf != 1001 {
		t.Fatalf("CheckRecords = %d, %v, %v; want leaf 1001", leaf, found, err)
	}
}
