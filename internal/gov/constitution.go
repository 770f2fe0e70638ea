package gov

import (
	"crypto/sha256"
	"encoding/hex"

	"github.com/ledgerd/ledgerd/internal/constitution"
)

// DefaultConstitution is the constitution a new service starts with:
// internal/constitution/default's .js files (CCF's module shape and
// default actions), which the Engine runs. A proposal passes when a strict
// majority of the Active members vote for it. ledgerd stores the source in
// the ledger and reports it at GET /app/governance/constitution and GET
// /gov/service/constitution.
var DefaultConstitution = constitution.Default()

// Digest returns the digest of a constitution as GET
// /app/governance/constitution reports it: the lowercase hex SHA-256 of the
// script.
func Digest(script string) string {
	sum := sha256.Sum256([]byte(script))
	return hex.EncodeToString(sum[:])
}
