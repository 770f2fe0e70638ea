package merkle

import (
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// BenchmarkAppend measures Append+Sync in batches of 1000 (and 10,000)
// leaves, one write and one fsync per batch, into a file in b.TempDir.
func BenchmarkAppend(b *testing.B) {
	for _, batch := range []int{1000, 10_000} {
		b.Run(fmt.Sprintf("batch=%d", batch), func(b *testing.B) {
			tree, _ := openTestTree(b, defaultCacheBudget)
			leaves := testLeaves(batch, 0)
			for b.Loop() {
				mustAppend(b, tree, leaves...)
				mustSync(b, tree)
			}
			b.ReportMetric(float64(b.N*batch)/b.Elapsed().Seconds(), "leaves/s")
		})
	}
}

// bench1MLeaves is the size of the file-backed tree of the proof benchmarks.
const bench1MLeaves = 1_000_000

// open1M builds a tree of 1,000,000 leaves in dir, in batches of 10,000, and
// reopens it so that the benchmark starts cold: empty cache, pread for
// everything else.
func open1M(b *testing.B) *Tree {
	b.Helper()
	path := filepath.Join(b.TempDir(), "tree")
	tree, err := Open(path)
	if err != nil {
		b.Fatal(err)
	}
	const batch = 10_000
	start := time.Now()
	leaves := make([]Hash, batch)
	for lo := uint64(0); lo < bench1MLeaves; lo += batch {
		for i := range leaves {
			leaves[i] = testLeaf(lo + uint64(i))
		}
		mustAppend(b, tree, leaves...)
		mustSync(b, tree)
	}
	if err := tree.Close(); err != nil {
		b.Fatal(err)
	}
	if tree, err = Open(path); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { tree.Close() })
	if info, err := os.Stat(path); err == nil {
		b.Logf("built a 1M-leaf tree (%d bytes) in %v", info.Size(), time.Since(start))
	}
	return tree
}

// BenchmarkInclusionProof1M measures InclusionProof(i, n) for random leaves
// of a 1,000,000-leaf file-backed tree: n the whole tree (a receipt under the
// latest signature) or random (a receipt under an older signature).
func BenchmarkInclusionProof1M(b *testing.B) {
	tree := open1M(b)
	for _, bc := range []struct {
		name    string
		randomN bool
	}{{"n=size", false}, {"n=random", true}} {
		b.Run(bc.name, func(b *testing.B) {
			rng := rand.New(rand.NewPCG(1, 2))
			for b.Loop() {
				n := uint64(bench1MLeaves)
				if bc.randomN {
					n = 1 + rng.Uint64N(bench1MLeaves)
				}
				if _, err := tree.InclusionProof(rng.Uint64N(n), n); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "proofs/s")
		})
	}
	b.Run("parallel", func(b *testing.B) {
		b.RunParallel(func(pb *testing.PB) {
			rng := rand.New(rand.NewPCG(rand.Uint64(), 2))
			for pb.Next() {
				if _, err := tree.InclusionProof(rng.Uint64N(bench1MLeaves), bench1MLeaves); err != nil {
					b.Error(err)
					return
				}
			}
		})
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "proofs/s")
	})
}

// BenchmarkRoot1M measures Root(n) for random n in a 1,000,000-leaf
// file-backed tree (Root(Size()) is served from memory).
func BenchmarkRoot1M(b *testing.B) {
	tree := open1M(b)
	rng := rand.New(rand.NewPCG(3, 4))
	for b.Loop() {
		if _, err := tree.Root(1 + rng.Uint64N(bench1MLeaves)); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "roots/s")
}

// BenchmarkFrontier measures Frontier.Append, with a Root every 1000 leaves
// as an auditor checking signatures would take.
func BenchmarkFrontier(b *testing.B) {
	leaves := testLeaves(1000, 0)
	var f Frontier
	var i int
	for b.Loop() {
		f.Append(leaves[i%1000])
		if i++; i%1000 == 0 {
			f.Root()
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "leaves/s")
}

// BenchmarkOpen1M measures reopening a 1,000,000-leaf tree: reading the
// header and the right edge and re-checking the last leaves' records.
func BenchmarkOpen1M(b *testing.B) {
	path := open1M(b).f.Name()
	for b.Loop() {
		tree, err := Open(path)
		if err != nil {
			b.Fatal(err)
		}
		tree.Close()
	}
}
