package main

import (
	"fmt"

	"github.com/ledgerd/ledgerd/internal/ledger"
)

// Connection limit sizing. Every client connection holds a file descriptor,
// and the node needs descriptors of its own: the ledger's directory, open
// chunk and spare next chunk, up to ledger.DefaultCacheChunks (64) chunk
// files kept open for reads, the derived files, the lock, standard streams,
// the listener, the JWKS fetches, a checkpoint's temporary file. The reserve
// keeps well clear of those.
const (
	minDescriptorReserve = ledger.DefaultCacheChunks + 64
	maxDescriptorReserve = 1024
	// defaultMaxConnections is the limit when RLIMIT_NOFILE is unknown or
	// unlimited.
	defaultMaxConnections = 10_000
)

// descriptorReserve is how many descriptors of limit are kept from clients.
func descriptorReserve(limit uint64) uint64 {
	return max(minDescriptorReserve, min(maxDescriptorReserve, limit/4))
}

// connectionLimit returns the connection limit: requested (--max-connections)
// if set, else RLIMIT_NOFILE minus a reserve for the node's own files. A
// requested limit that would leave the node less than its reserve is an
// error: the node would then die of EMFILE at its next chunk rollover.
func connectionLimit(requested int, limit uint64) (int, error) {
	if limit == 0 {
		if requested == 0 {
			return defaultMaxConnections, nil
		}
		return requested, nil
	}
	reserve := descriptorReserve(limit)
	if limit < reserve+16 {
		return 0, fmt.Errorf("the file descriptor limit (RLIMIT_NOFILE) is %d: too low to serve clients "+
			"beside the ledger's %d; raise it (ulimit -n) to at least %d", limit, reserve, reserve+16)
	}
	most := int(min(limit-reserve, 1<<30))
	switch {
	case requested == 0:
		return most, nil
	case requested > most:
		return 0, fmt.Errorf("--max-connections %d leaves too few of the %d file descriptors (RLIMIT_NOFILE) "+
			"for the ledger's files, which need %d: use at most %d, or raise the limit (ulimit -n)",
			requested, limit, reserve, most)
	}
	return requested, nil
}
