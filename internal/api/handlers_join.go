package api

import (
	"crypto/ecdsa"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/ledgerd/ledgerd/internal/attest"
	"github.com/ledgerd/ledgerd/internal/gov"
	"github.com/ledgerd/ledgerd/internal/identity"
	"github.com/ledgerd/ledgerd/internal/join"
	"github.com/ledgerd/ledgerd/internal/ledger"
	"github.com/ledgerd/ledgerd/internal/node"
	"github.com/ledgerd/ledgerd/internal/tables"
)

// postJoin serves POST /node/join (CCF's join endpoint, on the client
// interface): a node asks to join the service. The caller must present, as
// its TLS client certificate, a certificate for the key of its certificate
// signing request (the TLS handshake proves it holds the key), and a
// virtual quote binding that key whose measurement the join policy allows
// (public:ccf.gov.nodes.virtual.measurements). A new node is recorded
// Trusted if the service is Opening or Recovering, else Pending until the consortium
// passes transition_node_to_trusted; asking again answers its status. A
// Trusted node gets its service-endorsed certificate, its Raft id, the
// service's peers, and the service's secrets sealed to its encryption key
// (internal/join). Only the primary can record a node: a backup answers 503
// ServiceUnavailable and the joiner asks the primary (/node/network).
func (s *Server) postJoin(c *call) error {
	body, err := readBody(c, mediaJSON)
	if err != nil {
		return err
	}
	if len(body) > join.MaxRequestBytes {
		return &http.MaxBytesError{Limit: join.MaxRequestBytes}
	}
	var req join.Request
	if err := json.Unmarshal(body, &req); err != nil {
		return invalidInput("The join request is not JSON of the expected shape: %v.", err)
	}
	csr, err := req.Check()
	if err != nil {
		return invalidInput("Invalid join request: %v.", err)
	}
	pub := csr.PublicKey.(*ecdsa.PublicKey)
	if c.r.TLS == nil || len(c.r.TLS.PeerCertificates) == 0 {
		return newError(http.StatusUnauthorized, codeUnauthenticated,
			"A joining node presents a TLS client certificate for the key of its certificate signing request.")
	}
	if tlsPub, ok := c.r.TLS.PeerCertificates[0].PublicKey.(*ecdsa.PublicKey); !ok || !tlsPub.Equal(pub) {
		return newError(http.StatusUnauthorized, codeUnauthenticated,
			"The TLS client certificate's key is not the key of the certificate signing request.")
	}
	nodeID, err := identity.NodeID(pub)
	if err != nil {
		return invalidInput("%v", err)
	}
	if err := s.checkJoinQuote(req.QuoteInfo, pub); err != nil {
		return err
	}
	var info tables.NodeInfo
	_, err = s.node.Exec(c.r.Context(), node.UntilCommitted, func(st *node.State) ([]ledger.MapWrites, error) {
		if raw, ok := st.Get(tables.NodesInfoMap, []byte(nodeID)); ok {
			if err := json.Unmarshal(raw, &info); err != nil {
				return nil, err
			}
			if info.Status == tables.NodeRetired {
				return nil, newError(http.StatusForbidden, codeNotAllowed, "Node %s was retired from this service.", nodeID)
			}
			return nil, nil // known: answer its status
		}
		info, err = s.newNodeRecord(st, req)
		if err != nil {
			return nil, err
		}
		ws := []ledger.MapWrites{{Name: tables.NodesInfoMap, Writes: []ledger.KV{{Key: []byte(nodeID), Value: tables.Value(info)}}}}
		if info.Status == tables.NodeTrusted {
			ws = append(ws, ledger.MapWrites{Name: tables.NodeCertsMap, Writes: []ledger.KV{{Key: []byte(nodeID), Value: []byte(info.Cert)}}})
		}
		return ws, nil
	})
	if errors.Is(err, node.ErrNotPrimary) {
		if addr := s.primaryRPCAddress(); addr != "" {
			c.w.Header().Set(PrimaryHeader, addr)
		}
	}
	if err != nil {
		return err
	}
	resp := join.Response{NodeStatus: info.Status, NodeID: nodeID}
	if info.Status == tables.NodeTrusted {
		if resp.Welcome, err = s.welcome(nodeID, info); err != nil {
			return err
		}
	}
	s.log.Info("join request", "node_id", nodeID, "status", info.Status, "raft_id", info.RaftID)
	return c.reply(http.StatusOK, s.reads.CommittedTxID(), resp)
}

// checkJoinQuote checks the joiner's quote: the virtual format, report
// data binding its key, and a measurement the join policy allows.
func (s *Server) checkJoinQuote(q join.QuoteInfo, pub *ecdsa.PublicKey) error {
	if q.Format != attest.FormatVirtual {
		return newError(http.StatusForbidden, codeNotAllowed, "Quote format %q is not accepted: this service runs on %s.", clip(q.Format), attest.FormatVirtual)
	}
	rd, err := attest.ReportData(pub)
	if err != nil {
		return err
	}
	vq, err := attest.VerifyVirtual(q.Quote, rd, "")
	if err != nil {
		return newError(http.StatusForbidden, codeNotAllowed, "The quote does not verify: %v.", err)
	}
	if _, ok := s.reads.State().Get(tables.VirtualMeasurementsMap, []byte(vq.Measurement)); !ok {
		return newError(http.StatusForbidden, codeNotAllowed,
			"Measurement %s is not allowed by the join policy (add_virtual_measurement).", vq.Measurement)
	}
	return nil
}

// newNodeRecord decides a joiner's record: Trusted with an endorsed
// certificate if the service is Opening, Pending otherwise; the next free
// Raft id.
func (s *Server) newNodeRecord(st *node.State, req join.Request) (tables.NodeInfo, error) {
	var maxRaft uint64
	var err error
	st.Range(tables.NodesInfoMap, func(_, v []byte) bool {
		var n tables.NodeInfo
		if err = json.Unmarshal(v, &n); err != nil {
			return false
		}
		maxRaft = max(maxRaft, n.RaftID)
		return true
	})
	if err != nil {
		return tables.NodeInfo{}, fmt.Errorf("couldn't read the nodes table: %w", err)
	}
	quote := req.QuoteInfo
	info := tables.NodeInfo{
		Status:                    tables.NodePending,
		CertificateSigningRequest: req.CSR,
		EncryptionPubKey:          req.EncryptionKey,
		QuoteInfo:                 &tables.NodeQuoteInfo{Format: quote.Format, Quote: quote.Quote},
		RPCInterfaces:             map[string]tables.Iface{tables.PrimaryRPCInterface: {PublishedAddress: req.RPCAddress}},
		NodeToNodeInterface:       &tables.Iface{PublishedAddress: req.PeerAddress},
		RaftID:                    maxRaft + 1,
	}
	// CCF: a node joining an Opening service, or a Recovering one (so
	// that the recovered network has its nodes before the members submit
	// their shares and open it), is trusted at once.
	if status := gov.ServiceStatus(st); status == tables.ServiceOpening || status == tables.ServiceRecovering {
		info.Status = tables.NodeTrusted
		days := 365
		if cfg, ok := gov.ServiceConfig(st); ok && cfg.MaximumNodeCertificateValidityDays > 0 {
			days = cfg.MaximumNodeCertificateValidityDays
		}
		cert, err := s.cfg.Identities.Service.EndorseCSR([]byte(req.CSR), time.Now().Add(-time.Hour).Truncate(time.Second), days)
		if err != nil {
			return tables.NodeInfo{}, invalidInput("%v", err)
		}
		info.Cert = string(cert)
	}
	return info, nil
}

// welcome is what a Trusted joiner receives.
func (s *Server) welcome(nodeID string, info tables.NodeInfo) (*join.Welcome, error) {
	st := s.reads.State()
	cert, ok := st.Get(tables.NodeCertsMap, []byte(nodeID))
	if !ok {
		return nil, errors.New("a trusted node without an endorsed certificate")
	}
	ids := s.cfg.Identities
	keyPEM, err := identity.KeyPEM(ids.Service.Key)
	if err != nil {
		return nil, err
	}
	defer clear(keyPEM)
	sealed, err := join.SealSecrets(info.EncryptionPubKey, join.Secrets{LedgerSecret: ids.LedgerSecret, ServiceKey: keyPEM})
	if err != nil {
		return nil, err
	}
	w := &join.Welcome{ServiceCert: string(ids.Service.CertPEM), EndorsedCert: string(cert), RaftID: info.RaftID,
		Secrets: sealed, Peers: []join.Peer{}}
	if rec, ok := s.node.JoinedRecovery(); ok {
		// A service being recovered: the joiner replays the previous
		// services' ledger, verified against their identities; it gets the
		// previous ledger secrets from the ledger once the members' shares
		// are in (CCF's public-only network, then its private recovery).
		w.Recovery = rec
	}
	st.Range(tables.NodesInfoMap, func(k, v []byte) bool {
		var n tables.NodeInfo
		if json.Unmarshal(v, &n) == nil && n.Status == tables.NodeTrusted && n.RaftID != 0 && n.NodeToNodeInterface != nil {
			w.Peers = append(w.Peers, join.Peer{NodeID: string(k), RaftID: n.RaftID, Address: n.NodeToNodeInterface.PublishedAddress})
		}
		return true
	})
	return w, nil
}

// PrimaryHeader names, on a backup's 503 to a join request, the primary's
// client address (host:port), so that the joiner asks it.
const PrimaryHeader = "x-ledgerd-primary"

// primaryRPCAddress is the client address of the primary this node knows
// of, from its record in the nodes table ("" if unknown).
func (s *Server) primaryRPCAddress() string {
	id, ok := s.nodeIDOfRaft(s.reads.RaftInfo().Leader)
	if !ok {
		return ""
	}
	raw, ok := s.reads.State().Get(tables.NodesInfoMap, []byte(id))
	if !ok {
		return ""
	}
	var n tables.NodeInfo
	if json.Unmarshal(raw, &n) != nil {
		return ""
	}
	return n.RPCInterfaces[tables.PrimaryRPCInterface].PublishedAddress
}
