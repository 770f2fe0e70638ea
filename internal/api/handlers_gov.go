package api

import (
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"

	"github.com/ledgerd/ledgerd/internal/attest"
	"github.com/ledgerd/ledgerd/internal/gov"
)

// listMembers serves GET /app/governance/members.
func (s *Server) listMembers(c *call) error {
	members, err := gov.Members(s.reads.State())
	if err != nil {
		return fmt.Errorf("couldn't read members: %w", err)
	}
	type member struct {
		Certificate string `json:"certificate"`
		ID          string `json:"id"`
	}
	items := make([]member, len(members))
	for i, m := range members {
		items[i] = member{Certificate: string(m.CertPEM), ID: m.ID}
	}
	return c.ok(struct {
		Members []member `json:"members"`
	}{items})
}

// getConstitution serves GET /app/governance/constitution.
func (s *Server) getConstitution(c *call) error {
	script, ok := gov.Constitution(s.reads.State())
	if !ok {
		return newError(http.StatusNotFound, codeResourceNotFound, "The service has no constitution.")
	}
	return c.ok(struct {
		Digest string `json:"digest"`
		Script string `json:"script"`
	}{gov.Digest(script), script})
}

// getEnclaveQuotes serves GET /app/enclaveQuotes: this node's quote,
// computed once when the server was created.
func (s *Server) getEnclaveQuotes(c *call) error {
	return c.ok(json.RawMessage(s.quotes))
}

// enclaveQuotes builds the /app/enclaveQuotes body of this node: its quote
// over the SHA-256 of its public key, keyed by its node id, with the
// measurement of the code it runs as mrenclave. The real service's answers
// carry mrenclave (the hex MRENCLAVE of SGX nodes) next to nodeId,
// quoteVersion and raw, and clients read it (the SDK's verify_service
// sample); ledgerd's is the virtual platform's measurement, the hex SHA-256
// of the running binary.
func (s *Server) enclaveQuotes() ([]byte, error) {
	n := s.cfg.Identities.Node
	rd, err := attest.ReportData(&n.Key.PublicKey)
	if err != nil {
		return nil, err
	}
	raw, err := s.cfg.Attestation.Quote(rd)
	if err != nil {
		return nil, fmt.Errorf("api: couldn't get this node's quote: %w", err)
	}
	s.quote = raw
	// Keys sort as the real service's do.
	type quote struct {
		MREnclave    string `json:"mrenclave"`
		NodeID       string `json:"nodeId"`
		QuoteVersion string `json:"quoteVersion"`
		Raw          string `json:"raw"`
	}
	q := quote{MREnclave: s.cfg.Attestation.Measurement(), NodeID: n.ID, QuoteVersion: s.cfg.Attestation.Format(),
		Raw: hex.EncodeToString(raw)}
	body, err := json.Marshal(struct {
		CurrentNodeID string           `json:"currentNodeId"`
		EnclaveQuotes map[string]quote `json:"enclaveQuotes"`
	}{n.ID, map[string]quote{n.ID: q}})
	if err != nil {
		return nil, fmt.Errorf("api: couldn't encode enclave quotes: %w", err)
	}
	return body, nil
}
