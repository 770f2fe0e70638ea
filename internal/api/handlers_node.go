package api

import (
	"errors"
	"net/http"
	"time"

	"github.com/ledgerd/ledgerd/internal/node"
)

// getLedgerIdentity serves GET /ledgerIdentity/{ledgerId}, the identity
// service: the service certificate that clients pin. It needs no
// credentials and no api-version (the JS client sends none). Any ledgerId
// is accepted and answered with the configured one: the Python client
// derives the id from the endpoint's host name (everything before the first
// dot, so "localhost:8443" for https://localhost:8443), which says nothing
// about a self-hosted ledger's name.
func (s *Server) getLedgerIdentity(c *call) error {
	return c.ok(struct {
		LedgerID             string `json:"ledgerId"`
		LedgerTLSCertificate string `json:"ledgerTlsCertificate"`
	}{s.cfg.LedgerID, string(s.cfg.Identities.Service.CertPEM)})
}

// Node states as CCF's GET /node/state reports them.
const (
	nodePartOfNetwork = "PartOfNetwork"
	nodeStopped       = "Stopped"
)

// getNodeState serves GET /node/state (any ledger user or member):
// CCF's fields, plus ledgerd's commit and primary status, and whether the
// node accepts writes: "writable" is false while persisting is stalled
// ("write_stall" says why: "disk_full" or "no_file_descriptors", since
// "write_stall_since"). last_signed_seqno is the last committed signature's
// seqno.
func (s *Server) getNodeState(c *call) error {
	state := nodePartOfNetwork
	if s.node.Err() != nil {
		state = nodeStopped
	}
	body := struct {
		NodeID          string `json:"node_id"`
		State           string `json:"state"`
		LastSignedSeqno uint64 `json:"last_signed_seqno"`
		StartupSeqno    uint64 `json:"startup_seqno"`
		CommittedTxID   string `json:"committed_transaction_id"`
		LastSeqno       uint64 `json:"last_seqno"`
		IsPrimary       bool   `json:"is_primary"`
		Writable        bool   `json:"writable"`
		WriteStall      string `json:"write_stall,omitempty"`
		WriteStallSince string `json:"write_stall_since,omitempty"`
	}{
		NodeID:          s.cfg.Identities.Node.ID,
		State:           state,
		LastSignedSeqno: c.served.Seqno,
		StartupSeqno:    s.startupSeqno,
		CommittedTxID:   c.served.String(),
		LastSeqno:       s.reads.LastSeqno(),
		IsPrimary:       s.reads.IsPrimary(),
		Writable:        true,
	}
	if st := s.node.Stalled(); st != nil {
		body.Writable, body.WriteStall = false, stallReason(st)
		body.WriteStallSince = st.Since.UTC().Format(time.RFC3339)
	}
	return c.ok(body)
}

// stallReason names why persisting is stalled.
func stallReason(st *node.Stall) string {
	if errors.Is(st.Err, node.ErrNoSpace) {
		return "disk_full"
	}
	return "no_file_descriptors"
}

// getHealth serves GET /healthz, the unauthenticated liveness probe: 200
// {"status":"ok"} while the node runs, 503 once it has stopped after a fatal
// error (the process should be restarted). While persisting is stalled the
// node is alive and serves reads, so the answer stays 200, with
// {"status":"degraded","writable":false,"reason":...}: restarting would not
// free the disk.
func (s *Server) getHealth(c *call) error {
	if s.node.Err() != nil {
		return newError(http.StatusServiceUnavailable, codeUnavailable, "The node has stopped after a fatal error; see its log.")
	}
	if st := s.node.Stalled(); st != nil {
		return c.ok(map[string]any{"status": "degraded", "writable": false, "reason": stallReason(st)})
	}
	return c.ok(map[string]string{"status": "ok"})
}
