package main

import (
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/ledgerd/ledgerd/internal/identity"
	"github.com/ledgerd/ledgerd/internal/node"
)

// PreviousServiceCertFile is where --recover keeps the previous service's
// certificate (the operator copies it to DATA/service.pem; the new service
// writes its own there).
const previousServiceCertFile = "previous_service.pem"

// prepareRecovery readies a data directory for --recover (CCF's recover
// mode; node/disaster.go): the operator has copied the previous service's
// ledger chunks into DATA/ledger/ and its service certificate to
// DATA/service.pem, and nothing else of a node: no service.key, node.key,
// node.pem or ledger.secret, which were lost with the nodes (and whose
// presence would mean DATA is a service's own directory). The previous
// certificate moves to previous_service.pem; the node then creates the new
// service's identities. A directory already recovered (recovery.json)
// needs nothing, and nil is returned: the node finds its recovery itself.
func prepareRecovery(cfg config, log *slog.Logger) (*node.Recover, error) {
	dir := cfg.Data
	if _, err := os.Stat(filepath.Join(dir, node.RecoveryFile)); err == nil {
		log.Info("--recover: this directory's recovery has started already; continuing it", "data", dir)
		return nil, nil
	}
	empty, err := ledgerIsEmpty(dir, log)
	if err != nil {
		return nil, err
	}
	if empty {
		return nil, fmt.Errorf("--recover: %s has no ledger; copy the previous service's ledger files (its DATA/ledger/ledger_*) into %s", dir, filepath.Join(dir, "ledger"))
	}
	prevPath := filepath.Join(dir, previousServiceCertFile)
	if _, err := os.Stat(prevPath); errors.Is(err, fs.ErrNotExist) {
		// A first attempt: the copied files only.
		for _, name := range []string{identity.ServiceKeyFile, identity.NodeKeyFile, identity.NodeCertFile, identity.LedgerSecretFile} {
			if _, err := os.Stat(filepath.Join(dir, name)); err == nil {
				return nil, fmt.Errorf("--recover: %s holds %s: it is a service's own data directory, not a copy of a lost service's ledger files; copy ledger/ and service.pem alone into a new directory", dir, name)
			}
		}
		certPath := filepath.Join(dir, identity.ServiceCertFile)
		if _, err := os.Stat(certPath); err != nil {
			return nil, fmt.Errorf("--recover: the previous service's certificate must be copied to %s: %w", certPath, err)
		}
		if err := os.Rename(certPath, prevPath); err != nil {
			return nil, err
		}
	} else if err != nil {
		return nil, err
	}
	prev, err := os.ReadFile(prevPath)
	if err != nil {
		return nil, err
	}
	log.Info("--recover: starting a new service from the previous service's ledger", "data", dir, "previous_service_cert", prevPath)
	return &node.Recover{PreviousServiceCert: prev}, nil
}
