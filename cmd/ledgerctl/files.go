package main

import (
	"fmt"
	"os"

	"github.com/ledgerd/ledgerd/internal/identity"
	"github.com/ledgerd/ledgerd/internal/merkle"
)

// readSecret reads a ledger secret file (32 raw bytes, as ledgerd writes it).
func readSecret(path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	if len(b) != identity.LedgerSecretSize {
		return nil, fmt.Errorf("%s: a ledger secret is %d bytes, got %d", path, identity.LedgerSecretSize, len(b))
	}
	return b, nil
}

// openTreeReadOnly opens the node's Merkle tree file, if there is one,
// without ever writing to it: a running node may be appending to it, and
// cutting what looks like a torn tail would lose its leaves.
func openTreeReadOnly(path string) (*merkle.Tree, error) {
	return merkle.OpenReadOnly(path)
}
