package client

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
)

// maxListPages bounds the pages of one list, against a server whose
// nextLinks never end.
const maxListPages = 1000

// ListCollections returns the ids of the ledger's collections: GET
// /app/collections (following nextLink, should the ledger page it).
func (c *Client) ListCollections(ctx context.Context) ([]string, error) {
	var ids []string
	err := c.list(ctx, "/app/collections", "collections", func(raw json.RawMessage) error {
		var item struct {
			CollectionID string `json:"collectionId"`
			SubLedgerID  string `json:"subLedgerId"`
		}
		if err := json.Unmarshal(raw, &item); err != nil {
			return err
		}
		ids = append(ids, item.CollectionID+item.SubLedgerID)
		return nil
	})
	return ids, err
}

// ConsortiumMember is a member of the consortium that governs the ledger.
type ConsortiumMember struct {
	// ID is the member's id, the hex SHA-256 of its certificate.
	ID string `json:"id"`
	// Certificate is the member's PEM certificate.
	Certificate string `json:"certificate"`
}

// Consortium is the ledger's consortium.
type Consortium struct {
	// Members are the consortium's members.
	Members []ConsortiumMember
}

// GetConsortium returns the consortium members: GET
// /app/governance/members (following nextLink, should the ledger page it).
func (c *Client) GetConsortium(ctx context.Context) (Consortium, error) {
	var cons Consortium
	err := c.list(ctx, "/app/governance/members", "members", func(raw json.RawMessage) error {
		var m ConsortiumMember
		if err := json.Unmarshal(raw, &m); err != nil {
			return err
		}
		cons.Members = append(cons.Members, m)
		return nil
	})
	return cons, err
}

// list gets a list at path, whose items are under key, following nextLink.
func (c *Client) list(ctx context.Context, path, key string, item func(json.RawMessage) error) error {
	rq := &request{method: http.MethodGet, path: path}
	for range maxListPages {
		resp, err := c.do(ctx, rq)
		if err != nil {
			return err
		}
		var page map[string]json.RawMessage
		if err := resp.decode(&page); err != nil {
			return err
		}
		var items []json.RawMessage
		if err := json.Unmarshal(page[key], &items); err != nil || page[key] == nil {
			return fmt.Errorf("the ledger's answer to GET %s has no list %q", path, key)
		}
		for _, raw := range items {
			if err := item(raw); err != nil {
				return fmt.Errorf("couldn't decode an item of %s: %w", path, err)
			}
		}
		var link string
		if raw, ok := page["nextLink"]; ok && json.Unmarshal(raw, &link) != nil {
			return fmt.Errorf("the ledger's answer to GET %s has a bad nextLink", path)
		}
		if link == "" {
			return nil
		}
		if rq, err = c.followLink(link, ""); err != nil {
			return err
		}
	}
	return fmt.Errorf("GET %s: more than %d pages", path, maxListPages)
}

// Constitution is the ledger's constitution: the governance script that
// judges the consortium's proposals.
type Constitution struct {
	// Digest is the lowercase hex SHA-256 of Script.
	Digest string `json:"digest"`
	// Script is the JavaScript source.
	Script string `json:"script"`
}

// GetConstitution returns the constitution: GET
// /app/governance/constitution. It checks that the digest is the SHA-256 of
// the script, and returns an error wrapping ErrDigestMismatch if not.
func (c *Client) GetConstitution(ctx context.Context) (Constitution, error) {
	resp, err := c.do(ctx, &request{method: http.MethodGet, path: "/app/governance/constitution"})
	if err != nil {
		return Constitution{}, err
	}
	var con Constitution
	if err := resp.decode(&con); err != nil {
		return Constitution{}, err
	}
	sum := sha256.Sum256([]byte(con.Script))
	if want := hex.EncodeToString(sum[:]); !strings.EqualFold(con.Digest, want) {
		return Constitution{}, fmt.Errorf("%w: the constitution's digest is %q, but its script's SHA-256 is %s", ErrDigestMismatch, con.Digest, want)
	}
	return con, nil
}

// EnclaveQuote is the attestation quote of one node.
type EnclaveQuote struct {
	// NodeID is the node's id, the hex SHA-256 of its public key.
	NodeID string `json:"nodeId"`
	// QuoteVersion is the quote's format: "OE_SGX_v1", "AMD_SEV_SNP_v1",
	// "Insecure_Virtual".
	QuoteVersion string `json:"quoteVersion"`
	// Raw is the hex quote, for a verifier of its format.
	Raw string `json:"raw"`
	// MREnclave is the hex measurement of the enclave, when given.
	MREnclave string `json:"mrenclave,omitempty"`
}

// EnclaveQuotes are the quotes of the ledger's nodes.
type EnclaveQuotes struct {
	// CurrentNodeID is the node that answered.
	CurrentNodeID string `json:"currentNodeId"`
	// Quotes are keyed by node id.
	Quotes map[string]EnclaveQuote `json:"enclaveQuotes"`
}

// GetEnclaveQuotes returns the nodes' attestation quotes: GET
// /app/enclaveQuotes. The quotes are not verified: that needs a verifier of
// each quote's format.
func (c *Client) GetEnclaveQuotes(ctx context.Context) (EnclaveQuotes, error) {
	resp, err := c.do(ctx, &request{method: http.MethodGet, path: "/app/enclaveQuotes"})
	if err != nil {
		return EnclaveQuotes{}, err
	}
	var q EnclaveQuotes
	if err := resp.decode(&q); err != nil {
		return EnclaveQuotes{}, err
	}
	return q, nil
}
