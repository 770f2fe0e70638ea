package client

import (
	"context"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"

	"github.com/ledgerd/ledgerd/receipt"
)

// Receipt is the answer of GET /app/transactions/{transactionId}/receipt
// in the Ready state: a receipt proving that the transaction is in the
// ledger. It is untrusted until Verify returns nil.
type Receipt struct {
	// TransactionID is the transaction the receipt is for.
	TransactionID string
	// Receipt is the parsed receipt: node certificate, leaf components,
	// proof and signature (see package receipt).
	Receipt *receipt.Receipt
	// ApplicationClaims are the application claims of api-versions
	// 2023-01-18-preview and later, as sent; nil if none.
	ApplicationClaims json.RawMessage
	// Raw is the whole response body, for storing the receipt as the ledger
	// gave it (receipt.VerifyPEM accepts it).
	Raw json.RawMessage
}

// Verify checks the receipt against the service certificate with package
// receipt (leaf, Merkle root, node signature over the root, the service's
// endorsement of the node), and that the receipt is for TransactionID.
// It returns nil only if every check passes.
//
// A receipt without leaf components (a signature transaction's, or the CCF
// 1.x receipts of api-version 0.1-preview) states the leaf instead of its
// commit evidence, so it does not name its transaction: Verify proves that
// the leaf is in the signed tree, but cannot check it is TransactionID's.
func (r *Receipt) Verify(serviceCert *x509.Certificate) error {
	if r == nil || r.Receipt == nil {
		return fmt.Errorf("%w: no receipt", receipt.ErrMalformed)
	}
	if serviceCert == nil {
		return errors.New("no service certificate to verify the receipt against")
	}
	if err := r.Receipt.Verify(serviceCert); err != nil {
		return fmt.Errorf("receipt of transaction %s: %w", r.TransactionID, err)
	}
	if r.Receipt.LeafComponents == nil {
		return nil // a signature transaction's receipt names no transaction
	}
	view, seqno, err := r.Receipt.TransactionID()
	if err != nil {
		return err
	}
	if got := (receipt.TxID{View: view, Seqno: seqno}).String(); got != r.TransactionID { // one spelling per id (receipt.ParseTxID)
		return fmt.Errorf("%w: the receipt is for transaction %s, not %s", receipt.ErrMalformed, got, r.TransactionID)
	}
	return nil
}

// VerifyReceipt verifies r against the client's pinned service
// certificate (see Receipt.Verify).
func (c *Client) VerifyReceipt(r *Receipt) error { return r.Verify(c.serviceCert) }

// ErrNoClaims means a receipt has no application claims to verify: it was
// asked for with an api-version before ClaimsAPIVersion (use
// GetTransactionReceiptWithClaims), or its transaction wrote no ledger entry
// with claims (a governance or signature transaction, or an entry written
// before the ledger recorded claims).
var ErrNoClaims = errors.New("the receipt has no application claims")

// Claims parses the receipt's application claims; ErrNoClaims if it has
// none.
func (r *Receipt) Claims() ([]receipt.ApplicationClaim, error) {
	if r == nil || len(r.ApplicationClaims) == 0 {
		return nil, ErrNoClaims
	}
	var claims []receipt.ApplicationClaim
	if err := json.Unmarshal(r.ApplicationClaims, &claims); err != nil {
		return nil, fmt.Errorf("%w: couldn't decode the receipt's applicationClaims: %v", receipt.ErrMalformed, err)
	}
	if len(claims) == 0 {
		return nil, ErrNoClaims
	}
	return claims, nil
}

// VerifyWithClaims verifies the receipt as Verify does, and its application
// claims against the claims digest of its leaf (receipt.VerifyWithClaims,
// the Azure SDK's verify_receipt with application_claims): the digest of the
// claims (for a ledger entry, its LedgerEntryV1 claim of collection,
// contents and secret key) must be the leaf's claimsDigest, which the
// verified signature covers. A receipt without claims is ErrNoClaims;
// altered claims are receipt.ErrClaimsMismatch. On success the claims are
// returned: a LedgerEntry claim holds the entry's collection and contents,
// now proven to be in the ledger.
func (r *Receipt) VerifyWithClaims(serviceCert *x509.Certificate) ([]receipt.ApplicationClaim, error) {
	claims, err := r.Claims()
	if err != nil {
		return nil, err
	}
	if err := r.Verify(serviceCert); err != nil {
		return nil, err
	}
	if err := r.Receipt.VerifyClaims(claims); err != nil {
		return nil, fmt.Errorf("receipt of transaction %s: %w", r.TransactionID, err)
	}
	return claims, nil
}

// VerifyReceiptWithClaims verifies r and its application claims against
// the client's pinned service certificate (see Receipt.VerifyWithClaims).
func (c *Client) VerifyReceiptWithClaims(r *Receipt) ([]receipt.ApplicationClaim, error) {
	return r.VerifyWithClaims(c.serviceCert)
}

// GetTransactionReceiptWithClaims is GetTransactionReceipt with the
// receipt's application claims: it asks with the client's api-version if
// that has them (ClaimsAPIVersion or later), else with ClaimsAPIVersion.
// Verify them with VerifyWithClaims.
func (c *Client) GetTransactionReceiptWithClaims(ctx context.Context, txID string, opts ...ReadOption) (*Receipt, error) {
	return c.getTransactionReceipt(ctx, txID, c.versionFor(ClaimsAPIVersion), opts)
}

// GetTransactionReceipt returns the receipt of a committed transaction:
// GET /app/transactions/{transactionId}/receipt, asked again while the
// ledger answers Loading within the poll's bounds (PollInterval,
// MaxAttempts, ctx; running out is ErrTimeout). A transaction that is not
// committed yet is ErrUncommitted (HTTP 406), unless WaitForCommit is given:
// then the receipt is asked for again until the transaction commits, within
// the same bounds. The receipt is not verified: call Verify or
// VerifyReceipt.
func (c *Client) GetTransactionReceipt(ctx context.Context, txID string, opts ...ReadOption) (*Receipt, error) {
	return c.getTransactionReceipt(ctx, txID, "", opts)
}

// getTransactionReceipt serves GetTransactionReceipt[WithClaims], with
// apiVersion if not "".
func (c *Client) getTransactionReceipt(ctx context.Context, txID, apiVersion string, opts []ReadOption) (*Receipt, error) {
	path, err := txPath(txID, "/receipt")
	if err != nil {
		return nil, err
	}
	s := c.readSettings(opts)
	rq := &request{method: http.MethodGet, path: path, apiVersion: apiVersion}
	for n := 1; ; n++ {
		r, err := c.getReceipt(ctx, rq, txID)
		switch {
		case err == nil:
			return r, nil
		case errors.Is(err, receipt.ErrNotReady), s.waitCommit && errors.Is(err, ErrUncommitted):
			if !s.more(n) {
				return nil, fmt.Errorf("%w: no receipt for transaction %s after %d attempts: %w", ErrTimeout, txID, n, err)
			}
		default:
			return nil, err
		}
		if err := c.sleep(ctx, s.interval); err != nil {
			return nil, fmt.Errorf("couldn't get the receipt of transaction %s: %w", txID, err)
		}
	}
}

// getReceipt makes one request for a receipt; a Loading answer is
// receipt.ErrNotReady.
func (c *Client) getReceipt(ctx context.Context, rq *request, txID string) (*Receipt, error) {
	resp, err := c.do(ctx, rq)
	if err != nil {
		return nil, err
	}
	var body struct {
		State             string          `json:"state"`
		TransactionID     string          `json:"transactionId"`
		ApplicationClaims json.RawMessage `json:"applicationClaims"`
	}
	if err := resp.decode(&body); err != nil {
		return nil, err
	}
	if body.State != StateReady {
		return nil, fmt.Errorf("receipt of transaction %s is %q: %w", txID, body.State, receipt.ErrNotReady)
	}
	if body.TransactionID != txID {
		return nil, fmt.Errorf("%w: asked for the receipt of transaction %s, got %s's", receipt.ErrMalformed, txID, body.TransactionID)
	}
	r, err := receipt.Parse(resp.body) // checks the commit evidence names the same transaction
	if err != nil {
		return nil, fmt.Errorf("couldn't parse the receipt of transaction %s: %w", txID, err)
	}
	rec := &Receipt{TransactionID: body.TransactionID, Receipt: r, Raw: resp.body}
	if len(body.ApplicationClaims) > 0 && string(body.ApplicationClaims) != "null" {
		rec.ApplicationClaims = body.ApplicationClaims
	}
	return rec, nil
}
