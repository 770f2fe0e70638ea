package merkle

import (
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"path/filepath"
	"slices"
	"testing"
)

func baseLeaf(i uint64) Hash {
	return sha256.Sum256(binary.BigEndian.AppendUint64(nil, i))
}

// A tree created from the right edge of the first B leaves of another
// answers, for every leaf from B and every size from B, what the full tree
// answers: roots, inclusion and consistency proofs; refuses (ErrPruned)
// what lies below B; and keeps its base across a reopen and a truncation.
func TestCreateFromEdge(t *testing.T) {
	const total = 700
	for _, b := range []uint64{1, 2, 3, 64, 511, 512, 537} {
		dir := t.TempDir()
		full, err := Open(filepath.Join(dir, "full"))
		if err != nil {
			t.Fatal(err)
		}
		for i := uint64(0); i < total; i++ {
			full.Append(baseLeaf(i))
		}
		edge, err := full.Edge(b)
		if err != nil {
			t.Fatal(err)
		}
		path := filepath.Join(dir, "based")
		if err := CreateFromEdge(nil, path, b, edge); err != nil {
			t.Fatal(err)
		}
		if err := CreateFromEdge(nil, path, b, edge); err == nil {
			t.Fatal("created over an existing tree")
		}
		tr, err := Open(path)
		if err != nil {
			t.Fatal(err)
		}
		if tr.Size() != b || tr.Base() != b {
			t.Fatalf("base %d: size %d base %d", b, tr.Size(), tr.Base())
		}
		for i := b; i < total; i++ {
			if err := tr.Append(baseLeaf(i)); err != nil {
				t.Fatal(err)
			}
			if i%97 == 0 {
				if err := tr.Sync(); err != nil {
					t.Fatal(err)
				}
			}
		}
		check := func(tr *Tree) {
			t.Helper()
			for n := b; n <= total; n += 1 + n/7 {
				want, _ := full.Root(n)
				if got, err := tr.Root(n); err != nil || got != want {
					t.Fatalf("base %d: Root(%d): %v", b, n, err)
				}
				for i := b; i < n; i += 1 + (n-b)/5 {
					want, _ := full.InclusionProof(i, n)
					if got, err := tr.InclusionProof(i, n); err != nil || !slices.Equal(got, want) {
						t.Fatalf("base %d: InclusionProof(%d, %d): %v", b, i, n, err)
					}
					wantC, _ := full.ConsistencyProof(max(i, 1), n)
					if got, err := tr.ConsistencyProof(max(i, 1), n); err != nil || !slices.Equal(got, wantC) {
						t.Fatalf("base %d: ConsistencyProof(%d, %d): %v", b, i, n, err)
					}
				}
			}
			if _, err := tr.Leaf(b - 1); !errors.Is(err, ErrPruned) {
				t.Fatalf("base %d: Leaf below the base: %v", b, err)
			}
			if b > 1 {
				if _, err := tr.Root(b - 1); !errors.Is(err, ErrPruned) {
					t.Fatalf("base %d: Root below the base: %v", b, err)
				}
			}
			if got, _ := tr.Leaf(b); got != baseLeaf(b) {
				t.Fatalf("base %d: Leaf(%d) wrong", b, b)
			}
		}
		check(tr)
		if err := tr.Close(); err != nil {
			t.Fatal(err)
		}
		if tr, err = Open(path); err != nil {
			t.Fatal(err)
		}
		if tr.Size() != total {
			t.Fatalf("reopened at %d leaves, want %d", tr.Size(), total)
		}
		check(tr)
		if err := tr.Truncate(b - 1); !errors.Is(err, ErrPruned) {
			t.Fatalf("truncated below the base: %v", err)
		}
		if err := tr.Truncate(b); err != nil {
			t.Fatal(err)
		}
		for i := b; i < total; i++ {
			tr.Append(baseLeaf(i))
		}
		check(tr)
		tr.Close()
		ro, err := OpenReadOnly(path)
		if err != nil {
			t.Fatal(err)
		}
		check(ro)
		if leaf, found, err := ro.CheckRecords(0, total); err != nil || found {
			t.Fatalf("CheckRecords: leaf %d found %v: %v", leaf, found, err)
		}
		ro.Close()
		full.Close()
	}
}
