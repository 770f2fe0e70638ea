package api

import (
	"encoding/hex"
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

// getEnclaveQuotes serves GET /app/enclaveQuotes: the quote of every
// Trusted node of the service (this node's own, the others' as recorded
// when they joined), keyed by node id, with the measurement of the code
// each runs as mrenclave. The real service's answers carry mrenclave (the
// hex MRENCLAVE of SGX nodes) next to nodeId, quoteVersion and raw, and
// clients read it (the SDK's verify_service sample); ledgerd's is the
// virtual platform's measurement, the hex SHA-256 of the running binary.
func (s *Server) getEnclaveQuotes(c *call) error {
	quotes, err := s.trustedQuotes()
	if err != nil {
		return err
	}
	// Keys sort as the real service's do.
	type quote struct {
		MREnclave    string `json:"mrenclave"`
		NodeID       string `json:"nodeId"`
		QuoteVersion string `json:"quoteVersion"`
		Raw          string `json:"raw"`
	}
	all := map[string]quote{}
	for _, q := range quotes {
		all[q.NodeID] = quote{MREnclave: q.Measurement, NodeID: q.NodeID, QuoteVersion: q.Format, Raw: hex.EncodeToString(q.raw)}
	}
	return c.ok(struct {
		CurrentNodeID string           `json:"currentNodeId"`
		EnclaveQuotes map[string]quote `json:"enclaveQuotes"`
	}{s.cfg.Identities.Node.ID, all})
}

// takeQuote takes this node's quote over the SHA-256 of its public key
// (s.quote), once, at start.
func (s *Server) takeQuote() error {
	rd, err := attest.ReportData(&s.cfg.Identities.Node.Key.PublicKey)
	if err != nil {
		return err
	}
	raw, err := s.cfg.Attestation.Quote(rd)
	if err != nil {
		return fmt.Errorf("api: couldn't get this node's quote: %w", err)
	}
	s.quote = raw
	return nil
}
