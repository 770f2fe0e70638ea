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

// GetTransactionReceipt returns the receipt of a committed transaction:
// GET /app/transactions/{transactionId}/receipt, asked again while the
// ledger answers Loading within the poll's bounds (PollInterval,
// MaxAttempts, ctx; running out is ErrTimeout). A transaction that is not
// committed yet is ErrUncommitted (HTTP 406), unless WaitForCommit is given:
// then the receipt is asked for again until the transaction commits, within
// the same bounds. The receipt is not verified: call Verify or
// VerifyReceipt.
func (c *Client) GetTransactionReceipt(ctx context.Context, txID string, opts ...ReadOption) (*Receipt, error) {
	path, err := txPath(txID, "/receipt")
	if err != nil {
		return nil, err
	}
	s := c.readSettings(opts)
	rq := &request{method: http.MethodGet, path: path}
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
