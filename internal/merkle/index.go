package merkle

import "math/bits"

// MaxSize is the largest number of leaves a [Tree] or [Frontier] accepts. It
// keeps every stored-hash index and file offset within int64.
const MaxSize = 1 << 56

// storedHashIndex returns the position in the stored-hash order of the hash
// of the complete subtree at level (0 = leaves) with index k in that level,
// covering leaves [k·2^level, (k+1)·2^level). It is tlog's StoredHashIndex:
// that node is written right after the last leaf it covers, (k+1)·2^level - 1,
// as the level-th hash of that leaf's record.
func storedHashIndex(level int, k uint64) uint64 {
	last := (k+1)<<level - 1
	return storedHashCount(last) + uint64(level)
}

// storedHashCount returns the number of stored hashes of a tree of n leaves,
// 2n - popcount(n): each leaf plus each complete subtree of two or more leaves.
// It is also the position of leaf n's record.
func storedHashCount(n uint64) uint64 {
	return 2*n - uint64(bits.OnesCount64(n))
}

// sizeForStoredHashes returns the largest n with storedHashCount(n) <= count.
func sizeForStoredHashes(count uint64) uint64 {
	lo, hi := uint64(0), count+1 // storedHashCount(count+1) > count
	for hi-lo > 1 {
		mid := lo + (hi-lo)/2
		if storedHashCount(mid) <= count {
			lo = mid
		} else {
			hi = mid
		}
	}
	return lo
}

// splitPoint returns the largest power of two smaller than n (n >= 2): the k
// of RFC 9162 §2.1.1 at which MTH(D[n]) splits into D[0:k] and D[k:n].
func splitPoint(n uint64) uint64 {
	return 1 << (bits.Len64(n-1) - 1)
}
