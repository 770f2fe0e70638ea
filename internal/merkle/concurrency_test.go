package merkle

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
)

// TestConcurrentReaders runs readers taking roots and proofs while the
// writer appends, syncs and rolls back. Leaf i is always testLeaf(i), so every
// version of the tree a reader sees has the same roots; run it with -race.
func TestConcurrentReaders(t *testing.T) {
	const size, readers, minReads = 6000, 4, 20000
	leaves := testLeaves(size, 0)
	roots := make([]Hash, size+1)
	var f Frontier
	for i, leaf := range leaves {
		f.Append(leaf)
		roots[i+1] = f.Root()
	}
	for _, budget := range []uint64{16, defaultCacheBudget} {
		t.Run(fmt.Sprintf("budget=%d", budget), func(t *testing.T) {
			// Start from a reopened tree, so that readers also fill the cache.
			path := buildFile(t, leaves[:2000], 500)
			tree, err := open(path, budget)
			if err != nil {
				t.Fatal(err)
			}
			defer tree.Close()
			var done atomic.Bool
			var reads atomic.Int64
			var wg sync.WaitGroup
			errs := make(chan error, readers+1)
			for r := range readers {
				wg.Go(func() {
					rng := rand.New(rand.NewPCG(uint64(r), 1))
					for !done.Load() {
						if err := readOnce(tree, rng, leaves, roots); err != nil {
							errs <- err
							return
						}
						reads.Add(1)
					}
				})
			}
			// Grow the tree to its full size, then roll back and grow it again
			// until the readers have done enough.
			for round := 0; ; round++ {
				if err := writeAll(tree, leaves, uint64(round)); err != nil {
					errs <- err
					break
				}
				if reads.Load() >= minReads {
					break
				}
				if err := tree.Truncate(size / 3); err != nil {
					errs <- err
					break
				}
			}
			done.Store(true)
			wg.Wait()
			close(errs)
			for err := range errs {
				if err != nil {
					t.Fatal(err)
				}
			}
		})
	}
}

// writeAll appends the leaves the tree lacks in random batches, syncing
// after each and rolling back a little every few batches.
func writeAll(tree *Tree, leaves []Hash, seed uint64) error {
	rng := rand.New(rand.NewPCG(seed, 42))
	for batch := 0; tree.Size() < uint64(len(leaves)); batch++ {
		n := tree.Size()
		if batch%10 == 9 {
			if err := tree.Truncate(n - min(n, 37)); err != nil {
				return err
			}
			continue
		}
		hi := min(n+1+rng.Uint64N(100), uint64(len(leaves)))
		if err := tree.Append(leaves[n:hi]...); err != nil {
			return err
		}
		if batch%3 != 0 {
			if err := tree.Sync(); err != nil {
				return err
			}
		}
	}
	return nil
}

// readOnce checks a random root, leaf, inclusion proof and consistency
// proof. A rollback between Size and the read may make it out of range.
func readOnce(tree *Tree, rng *rand.Rand, leaves []Hash, roots []Hash) error {
	size := tree.Size()
	if size == 0 {
		return nil
	}
	n := 1 + rng.Uint64N(size)
	i := rng.Uint64N(n)
	root, err := tree.Root(n)
	if err == nil && root != roots[n] {
		return fmt.Errorf("Root(%d) = %v, want %v", n, root, roots[n])
	}
	leaf, err2 := tree.Leaf(i)
	if err2 == nil && leaf != leaves[i] {
		return fmt.Errorf("Leaf(%d) = %v", i, leaf)
	}
	proof, err3 := tree.InclusionProof(i, n)
	if err3 == nil {
		err3 = VerifyInclusion(leaves[i], i, n, proof, roots[n])
	}
	cproof, err4 := tree.ConsistencyProof(i+1, n)
	if err4 == nil {
		err4 = VerifyConsistency(i+1, n, roots[i+1], roots[n], cproof)
	}
	for _, err := range []error{err, err2, err3, err4} {
		if err != nil && !errors.Is(err, ErrOutOfRange) {
			return err
		}
	}
	return nil
}

// TestAppendDuringSync appends from one goroutine while another syncs, as a
// pipelined sequencer does, then checks the reopened tree.
func TestAppendDuringSync(t *testing.T) {
	leaves := testLeaves(3000, 0)
	tree, path := openTestTree(t, 16)
	var done atomic.Bool
	var wg sync.WaitGroup
	wg.Go(func() {
		for !done.Load() {
			if err := tree.Sync(); err != nil {
				t.Error(err)
				return
			}
		}
	})
	for lo := 0; lo < len(leaves); lo += 7 {
		mustAppend(t, tree, leaves[lo:min(lo+7, len(leaves))]...)
	}
	done.Store(true)
	wg.Wait()
	if err := tree.Close(); err != nil {
		t.Fatal(err)
	}
	tree, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer tree.Close()
	checkTree(t, tree, leaves)
}
