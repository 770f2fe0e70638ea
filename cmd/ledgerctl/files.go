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

// openTreeReadOnly opens the node's Merkle tree file if there is one. It is
// used only to name a modified entry; its contents are never trusted. (Open
// cuts back a torn tail, the one case where it writes.)
func openTreeReadOnly(path string) (*merkle.Tree, error) {
	if _, err := os.Stat(path); err != nil {
		return nil, err
	}
	return merkle.Open(path)
}
