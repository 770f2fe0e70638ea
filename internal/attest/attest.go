// Package attest produces attestation evidence ("quotes") that bind a
// node's key to the code it runs, as CCF reports them at GET
// /app/enclaveQuotes.
//
// No trusted execution environment is available where ledgerd runs today,
// so the only [Platform] is [Virtual]: an honest, unprotected quote whose
// measurement is the SHA-256 of the running binary and whose report data is
// the SHA-256 of the node's public key. It proves nothing against a
// malicious host; it says truthfully what the node believes it runs. A
// SEV-SNP or TDX platform would implement the same interface with hardware
// evidence over the same report data.
package attest

import (
	"crypto"
	"crypto/sha256"
	"crypto/x509"
	"fmt"
)

// Quote formats, as CCF names them (quoteVersion in the ACL API).
const (
	// FormatVirtual is an unprotected quote (CCF's "virtual" platform).
	FormatVirtual = "Insecure_Virtual"
	// FormatSEVSNP is AMD SEV-SNP attestation (not implemented).
	FormatSEVSNP = "AMD_SEV_SNP_v1"
)

// Platform produces attestation evidence on one kind of hardware (or
// none). Implementations must be safe for concurrent use.
type Platform interface {
	// Format is the quote format (the quoteVersion clients see).
	Format() string
	// Measurement is the hex measurement of the code this node runs.
	Measurement() string
	// Quote returns evidence that binds reportData, the SHA-256 of the
	// node's public key (see ReportData), to the measurement.
	Quote(reportData [sha256.Size]byte) ([]byte, error)
}

// ReportData returns the report data a node's quote binds: the SHA-256 of
// the DER SubjectPublicKeyInfo of its public key (whose hex is also the
// node id).
func ReportData(pub crypto.PublicKey) ([sha256.Size]byte, error) {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return [sha256.Size]byte{}, fmt.Errorf("attest: couldn't marshal public key: %w", err)
	}
	return sha256.Sum256(der), nil
}
