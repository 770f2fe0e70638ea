//go:build !unix

package ledger

import "os"

// openReadOnly opens a chunk file for preads.
func openReadOnly(path string) (chunkFile, error) { return os.Open(path) }
