package identity

import (
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/ledgerd/ledgerd/internal/durable"
)

// loadOrCreateLedgerSecret loads ledger.secret (exactly LedgerSecretSize raw
// bytes), or generates and saves it, and reports whether it generated it.
func loadOrCreateLedgerSecret(dir string, o Options) ([]byte, bool, error) {
	path := filepath.Join(dir, LedgerSecretFile)
	ok, err := exists(path)
	if err != nil {
		return nil, false, err
	}
	if ok {
		secret, err := loadLedgerSecret(path, o.Logger)
		return secret, false, err
	}
	secret := make([]byte, LedgerSecretSize)
	if _, err := io.ReadFull(o.Rand, secret); err != nil {
		return nil, false, fmt.Errorf("identity: couldn't generate ledger secret: %w", err)
	}
	if err := durable.WriteFile(path, secret, privateMode); err != nil {
		return nil, false, fmt.Errorf("identity: couldn't save ledger secret: %w", err)
	}
	o.Logger.Info("created ledger secret", slog.String("file", path))
	return secret, true, nil
}

// loadLedgerSecret reads the ledger secret and checks its size.
func loadLedgerSecret(path string, log *slog.Logger) ([]byte, error) {
	warnIfNotPrivate(path, log)
	secret, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("identity: couldn't load ledger secret: %w", err)
	}
	if len(secret) != LedgerSecretSize {
		return nil, fmt.Errorf("identity: ledger secret %s is %d bytes, want %d", path, len(secret), LedgerSecretSize)
	}
	return secret, nil
}
