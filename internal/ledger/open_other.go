//go:build !unix

package ledger

import "os"

// openReadOnly opens a chunk file for preads.
func openReadOnly(path string) (*os.File, error) { return os.Open(path) }
