package receipt

import (
	"crypto/hmac"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
)

// ErrClaimsMismatch means the digest of the application claims given with a
// receipt is not the receipt's claims digest: the claims are not the ones
// the ledger recorded.
var ErrClaimsMismatch = errors.New("application claims do not match the receipt's claims digest")

// Application claim kinds and the one protocol Azure Confidential Ledger
// defines (API 2023-01-18-preview and later).
const (
	ClaimKindLedgerEntry = "LedgerEntry"
	ClaimKindDigest      = "ClaimDigest"
	ProtocolLedgerEntry  = "LedgerEntryV1"
)

// MaxClaims is the largest number of application claims accepted.
const MaxClaims = 1024

// ApplicationClaim is one application claim of a GET .../receipt response
// (its top-level "applicationClaims"): either the data of a ledger entry,
// from which the claim's digest is computed, or the digest itself.
type ApplicationClaim struct {
	// Kind is ClaimKindLedgerEntry or ClaimKindDigest.
	Kind string `json:"kind"`
	// LedgerEntry is set for Kind ClaimKindLedgerEntry.
	LedgerEntry *LedgerEntryClaim `json:"ledgerEntry,omitempty"`
	// Digest is set for Kind ClaimKindDigest.
	Digest *ClaimDigest `json:"digest,omitempty"`
}

// LedgerEntryClaim is the claim a ledger entry makes: its collection, its
// contents and the entry's secret key (base64), from which LedgerEntryV1
// computes the digest with HMAC-SHA256.
type LedgerEntryClaim struct {
	CollectionID string `json:"collectionId"`
	Contents     string `json:"contents"`
	Protocol     string `json:"protocol"`
	SecretKey    string `json:"secretKey"`
}

// ClaimDigest is a claim given in digested form: the hex digest of the
// claim's data under Protocol.
type ClaimDigest struct {
	Protocol string `json:"protocol"`
	Value    string `json:"value"`
}

// LedgerEntryV1Digest returns the LedgerEntryV1 digest of a ledger entry's
// data: SHA-256(HMAC-SHA256(key, collectionId) || HMAC-SHA256(key,
// contents)), the strings as UTF-8. It is the value of the entry's claim in
// digested form.
func LedgerEntryV1Digest(collectionID, contents string, secretKey []byte) [32]byte {
	return ledgerEntryV1Digest([]byte(collectionID), []byte(contents), secretKey)
}

func ledgerEntryV1Digest(collectionID, contents, secretKey []byte) [32]byte {
	m := hmac.New(sha256.New, secretKey)
	m.Write(collectionID)
	var buf [64]byte
	m.Sum(buf[:0])
	m.Reset()
	m.Write(contents)
	m.Sum(buf[:32])
	return sha256.Sum256(buf[:])
}

// digest returns the claim's digest: SHA-256(protocol || d), where d is the
// LedgerEntryV1 digest of a ledger entry claim, or the hex-decoded value of
// a digest claim (the Azure SDK's _claims_digest_computation.py).
func (c ApplicationClaim) digest(i int) ([32]byte, error) {
	var protocol string
	var d []byte
	switch c.Kind {
	case ClaimKindLedgerEntry:
		e := c.LedgerEntry
		if e == nil {
			return [32]byte{}, malformed("application claim %d: kind %s without ledgerEntry", i, c.Kind)
		}
		if e.Protocol != ProtocolLedgerEntry {
			return [32]byte{}, malformed("application claim %d: unsupported protocol %q", i, e.Protocol)
		}
		key, err := base64.StdEncoding.Strict().DecodeString(e.SecretKey)
		if err != nil {
			return [32]byte{}, malformed("application claim %d: secretKey is not base64: %w", i, err)
		}
		v1 := LedgerEntryV1Digest(e.CollectionID, e.Contents, key)
		protocol, d = e.Protocol, v1[:]
	case ClaimKindDigest:
		g := c.Digest
		if g == nil {
			return [32]byte{}, malformed("application claim %d: kind %s without digest", i, c.Kind)
		}
		v, err := hex.DecodeString(g.Value)
		if err != nil {
			return [32]byte{}, malformed("application claim %d: digest value is not hex: %w", i, err)
		}
		protocol, d = g.Protocol, v
	default:
		return [32]byte{}, malformed("application claim %d: unknown kind %q", i, c.Kind)
	}
	h := sha256.New()
	h.Write([]byte(protocol))
	h.Write(d)
	var out [32]byte
	h.Sum(out[:0])
	return out, nil
}

// ClaimsDigest returns the claims digest of a list of application claims as
// Azure Confidential Ledger computes it (and the Azure SDKs verify it):
// SHA-256(uint32 little-endian count || digest_1 || ... || digest_n), each
// claim's digest in order (see ApplicationClaim). The list must not be
// empty.
func ClaimsDigest(claims []ApplicationClaim) ([32]byte, error) {
	if len(claims) == 0 {
		return [32]byte{}, malformed("no application claims")
	}
	if len(claims) > MaxClaims {
		return [32]byte{}, malformed("%d application claims, more than the limit of %d", len(claims), MaxClaims)
	}
	h := sha256.New()
	var n [4]byte
	binary.LittleEndian.PutUint32(n[:], uint32(len(claims)))
	h.Write(n[:])
	for i, c := range claims {
		d, err := c.digest(i)
		if err != nil {
			return [32]byte{}, err
		}
		h.Write(d[:])
	}
	var out [32]byte
	h.Sum(out[:0])
	return out, nil
}

// LedgerEntryClaimsDigest returns the claims digest of the single
// LedgerEntryV1 claim of a ledger entry (ClaimsDigest of
// NewLedgerEntryClaim): what the leaf of a transaction that writes the entry
// carries as its claims digest.
func LedgerEntryClaimsDigest(collectionID, contents string, secretKey []byte) [32]byte {
	return LedgerEntryClaimsDigestBytes([]byte(collectionID), []byte(contents), secretKey)
}

// LedgerEntryClaimsDigestBytes is LedgerEntryClaimsDigest of byte slices
// (the node's write set), without copying them.
func LedgerEntryClaimsDigestBytes(collectionID, contents, secretKey []byte) [32]byte {
	v1 := ledgerEntryV1Digest(collectionID, contents, secretKey)
	var claim [len(ProtocolLedgerEntry) + 32]byte
	copy(claim[:], ProtocolLedgerEntry)
	copy(claim[len(ProtocolLedgerEntry):], v1[:])
	var all [4 + 32]byte
	binary.LittleEndian.PutUint32(all[:4], 1)
	d := sha256.Sum256(claim[:])
	copy(all[4:], d[:])
	return sha256.Sum256(all[:])
}

// NewLedgerEntryClaim returns the LedgerEntryV1 application claim of a
// ledger entry.
func NewLedgerEntryClaim(collectionID, contents string, secretKey []byte) ApplicationClaim {
	return ApplicationClaim{Kind: ClaimKindLedgerEntry, LedgerEntry: &LedgerEntryClaim{
		CollectionID: collectionID,
		Contents:     contents,
		Protocol:     ProtocolLedgerEntry,
		SecretKey:    base64.StdEncoding.EncodeToString(secretKey),
	}}
}

// VerifyClaims checks that the application claims' digest (ClaimsDigest)
// is the receipt's claims digest. It does not verify the receipt: call
// Verify (or VerifyWithClaims, which does both).
func (r *Receipt) VerifyClaims(claims []ApplicationClaim) error {
	if r.LeafComponents == nil {
		return malformed("the receipt has no leaf components, so no claims digest")
	}
	want, err := decodeDigest("claimsDigest", r.LeafComponents.ClaimsDigest)
	if err != nil {
		return err
	}
	got, err := ClaimsDigest(claims)
	if err != nil {
		return err
	}
	if got != want {
		return fmt.Errorf("receipt: claims digest %x, receipt says %s: %w", got, r.LeafComponents.ClaimsDigest, ErrClaimsMismatch)
	}
	return nil
}

// VerifyClaimsDigest checks that digest is the receipt's claims digest: the
// check of a transaction whose claims digest its application set (a CCF
// endpoint's ccf.rpc.setClaimsDigest, e.g. the SHA-256 of a claim the
// verifier holds) rather than ACL's application claims. It does not verify
// the receipt: call Verify too. A mismatch wraps ErrClaimsMismatch.
func (r *Receipt) VerifyClaimsDigest(digest [32]byte) error {
	if r.LeafComponents == nil {
		return malformed("the receipt has no leaf components, so no claims digest")
	}
	want, err := decodeDigest("claimsDigest", r.LeafComponents.ClaimsDigest)
	if err != nil {
		return err
	}
	if digest != want {
		return fmt.Errorf("receipt: claims digest %x, receipt says %s: %w", digest, r.LeafComponents.ClaimsDigest, ErrClaimsMismatch)
	}
	return nil
}

// VerifyWithClaims verifies the receipt against the service certificate
// (Verify) and the application claims against its claims digest
// (VerifyClaims), as the Azure SDK's verify_receipt(receipt, cert,
// application_claims=...) does. Errors wrap those of Verify, or
// ErrClaimsMismatch, or ErrMalformed for a malformed claim.
func (r *Receipt) VerifyWithClaims(serviceCert *x509.Certificate, claims []ApplicationClaim) error {
	if err := r.Verify(serviceCert); err != nil {
		return err
	}
	return r.VerifyClaims(claims)
}

// ParseApplicationClaims returns the "applicationClaims" of a GET
// .../receipt response body (API 2023-01-18-preview and later), nil if it
// has none. It checks only that they decode: VerifyClaims checks them.
func ParseApplicationClaims(data []byte) ([]ApplicationClaim, error) {
	if len(data) > MaxSize {
		return nil, malformed("%d bytes, more than the limit of %d", len(data), MaxSize)
	}
	f, err := decodeObject(data)
	if err != nil {
		return nil, malformed("couldn't decode JSON object: %w", err)
	}
	if !f.has("applicationClaims") {
		return nil, nil
	}
	var claims []ApplicationClaim
	if err := json.Unmarshal(f.m["applicationClaims"], &claims); err != nil {
		return nil, malformed("couldn't decode applicationClaims: %w", err)
	}
	if len(claims) > MaxClaims {
		return nil, malformed("%d application claims, more than the limit of %d", len(claims), MaxClaims)
	}
	return claims, nil
}

// VerifyResponsePEM parses a GET .../receipt response body (or anything
// Parse accepts) and verifies its receipt against the PEM service
// certificate and, if the body has applicationClaims, the claims against the
// receipt's claims digest. It reports how many claims it checked.
func VerifyResponsePEM(body, serviceCertPEM []byte) (claims int, err error) {
	serviceCert, err := ParseCertificatePEM(serviceCertPEM)
	if err != nil {
		return 0, fmt.Errorf("receipt: couldn't parse service certificate: %w", err)
	}
	r, err := Parse(body)
	if err != nil {
		return 0, err
	}
	cs, err := ParseApplicationClaims(body)
	if err != nil {
		return 0, err
	}
	if err := r.Verify(serviceCert); err != nil {
		return 0, err
	}
	if cs == nil {
		return 0, nil
	}
	return len(cs), r.VerifyClaims(cs)
}
