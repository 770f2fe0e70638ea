package api

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"runtime/debug"
	"slices"
	"strconv"
	"time"

	"github.com/ledgerd/ledgerd/internal/attest"
	"github.com/ledgerd/ledgerd/internal/node"
	"github.com/ledgerd/ledgerd/internal/tables"
)

// CCF's node endpoints (CCF src/node/rpc/node_frontend.h and
// common_endpoint_registry.cpp; shapes of doc/schemas/node_openapi.json):
// the network, its nodes, the commit point, transaction status, version,
// quotes and consensus details, read from the node's latest executed state
// and from what the node knows of its Raft group (node.Reader.RaftInfo).
// Unauthenticated as in CCF, except /node/consensus (any ledger user or
// Active member: issue 11). docs/acl-api.md §10 lists where ledgerd's
// answers differ.

// NetInterface is one network interface of a node, as CCF's rpc_interfaces
// and node_to_node_interface describe it (NodeInfoNetwork).
type NetInterface struct {
	// BindAddress is the address the node listens on (HOST:PORT as
	// configured).
	BindAddress string `json:"bind_address"`
	// PublishedAddress is the address others reach it at (HOST:PORT).
	PublishedAddress string `json:"published_address"`
	// Protocol is "tcp"; AppProtocol "HTTP1" or "HTTP2" (CCF's values).
	Protocol    string `json:"protocol,omitempty"`
	AppProtocol string `json:"app_protocol,omitempty"`
	// Endorsement says who endorses the interface's TLS certificate:
	// "Service" for the client interface, as in CCF.
	Endorsement *Endorsement `json:"endorsement,omitempty"`
}

// Endorsement is CCF's interface endorsement.
type Endorsement struct {
	Authority string `json:"authority"`
}

// Interfaces are a node's own network interfaces.
type Interfaces struct {
	// Client is the client (RPC) interface, reported as CCF's
	// "primary_rpc_interface".
	Client NetInterface
	// Peer is the node-to-node interface; zero when the node has none
	// (a single node).
	Peer NetInterface
}

// primaryRPCInterface is CCF's name of a node's default RPC interface.
const primaryRPCInterface = "primary_rpc_interface"

// Node statuses (CCF's NodeStatus) accepted by ?status=.
var nodeStatuses = []string{"Pending", "Trusted", "Retired"}

// nodeAnswer is CCF's GetNode::Out, an item of GetNodes::Out. last_written
// (the seqno of the node record's last write) is omitted: ledgerd's state
// keeps no per-key version. node_to_node_interface is ledgerd's: the
// node-to-node address, which CCF records in the node table but does not
// report here.
type nodeAnswer struct {
	NodeID              string                     `json:"node_id"`
	Status              string                     `json:"status"`
	Primary             bool                       `json:"primary"`
	RPCInterfaces       map[string]json.RawMessage `json:"rpc_interfaces"`
	NodeData            json.RawMessage            `json:"node_data"`
	NodeToNodeInterface *NetInterface              `json:"node_to_node_interface,omitempty"`
}

// nodeRecord is a public:ccf.gov.nodes.info record as the node endpoints
// read it: ledgerd's fields (tables.NodeInfo: a joiner's addresses, quote
// and Raft id among them) and CCF's node_data and code_digest, which
// set_node_data and CCF-written records carry.
type nodeRecord struct {
	tables.NodeInfo
	NodeData   json.RawMessage `json:"node_data"`
	CodeDigest string          `json:"code_digest"`
}

// readNode decodes node id's record.
func readNode(id string, raw []byte) (nodeRecord, error) {
	var rec nodeRecord
	if err := json.Unmarshal(raw, &rec); err != nil {
		return nodeRecord{}, fmt.Errorf("couldn't decode the info of node %s: %w", id, err)
	}
	return rec, nil
}

// answerOf builds the answer about node id from its record. For this node,
// what it knows of its own interfaces (Config.Interfaces) is preferred to
// its record's: the record has only published addresses, and a record
// written before addresses were recorded has none.
func (s *Server) answerOf(id string, rec nodeRecord, primary string) nodeAnswer {
	a := nodeAnswer{NodeID: id, Status: rec.Status, Primary: id == primary, RPCInterfaces: map[string]json.RawMessage{},
		NodeData: rec.NodeData}
	for name, iface := range rec.RPCInterfaces {
		a.RPCInterfaces[name], _ = json.Marshal(NetInterface{BindAddress: iface.BindAddress, PublishedAddress: iface.PublishedAddress})
	}
	if p := rec.NodeToNodeInterface; p != nil {
		a.NodeToNodeInterface = &NetInterface{BindAddress: p.BindAddress, PublishedAddress: p.PublishedAddress}
	}
	if id == s.cfg.Identities.Node.ID {
		if own := s.ownRPCInterfaces(); len(own) > 0 {
			a.RPCInterfaces = own
		}
		if peer := s.cfg.Interfaces.Peer; peer.PublishedAddress != "" {
			a.NodeToNodeInterface = &peer
		}
	}
	if len(a.NodeData) == 0 {
		a.NodeData = jsonNull
	}
	return a
}

// ownRPCInterfaces is this node's rpc_interfaces from its configuration.
func (s *Server) ownRPCInterfaces() map[string]json.RawMessage {
	m := map[string]json.RawMessage{}
	if c := s.cfg.Interfaces.Client; c.PublishedAddress != "" {
		raw, _ := json.Marshal(c) // a struct of strings marshals
		m[primaryRPCInterface] = raw
	}
	return m
}

// nodeIDOfRaft returns the node id of the node with Raft id raftID: this
// node's own, or the one whose record carries that Raft id (joining records
// it).
func (s *Server) nodeIDOfRaft(raftID uint64) (string, bool) {
	if raftID == 0 {
		return "", false
	}
	if raftID == s.reads.RaftInfo().ID {
		return s.cfg.Identities.Node.ID, true
	}
	id, found := "", false
	s.reads.State().Range(tables.NodesInfoMap, func(key, value []byte) bool {
		var rec tables.NodeInfo
		if json.Unmarshal(value, &rec) == nil && rec.RaftID == raftID {
			id, found = string(key), true
			return false
		}
		return true
	})
	return id, found
}

// peerAddressOf returns the node-to-node address of node id: this node's
// own, or its record's.
func (s *Server) peerAddressOf(id string) string {
	if id == s.cfg.Identities.Node.ID && s.cfg.Interfaces.Peer.PublishedAddress != "" {
		return s.cfg.Interfaces.Peer.PublishedAddress
	}
	raw, ok := s.reads.State().Get(tables.NodesInfoMap, []byte(id))
	if !ok {
		return ""
	}
	var rec tables.NodeInfo
	if json.Unmarshal(raw, &rec) != nil || rec.NodeToNodeInterface == nil {
		return ""
	}
	return rec.NodeToNodeInterface.PublishedAddress
}

// primaryID returns the node id of the current primary, "" while none is
// known (an election is under way, or the primary's node id is unknown).
func (s *Server) primaryID() string {
	id, _ := s.nodeIDOfRaft(s.reads.RaftInfo().Leader)
	return id
}

// getNetwork serves GET /node/network (CCF's GetNetworkInfo::Out).
// primary_id is omitted while no primary is known, as in CCF;
// current_service_create_txid too (ledgerd's service record has none).
func (s *Server) getNetwork(c *call) error {
	raw, ok := s.reads.State().Get(tables.ServiceInfoMap, tables.SingletonKey)
	if !ok {
		return newError(http.StatusNotFound, codeResourceNotFound, "Service state not available.")
	}
	var info tables.ServiceInfo
	if err := json.Unmarshal(raw, &info); err != nil {
		return fmt.Errorf("couldn't decode the service info: %w", err)
	}
	var extra struct {
		RecoveryCount uint64 `json:"recovery_count"`
	}
	json.Unmarshal(raw, &extra) // absent or malformed: 0, as CCF's value_or(0)
	return c.ok(struct {
		ServiceStatus      string          `json:"service_status"`
		ServiceCertificate string          `json:"service_certificate"`
		CurrentView        uint64          `json:"current_view"`
		PrimaryID          string          `json:"primary_id,omitempty"`
		RecoveryCount      uint64          `json:"recovery_count"`
		ServiceData        json.RawMessage `json:"service_data"`
	}{info.Status, info.Cert, s.reads.RaftInfo().View, s.primaryID(), extra.RecoveryCount, dataField(raw, "service_data")})
}

// listNetworkNodes serves GET /node/network/nodes[?host=&port=&status=]:
// every node of the node table; host and port match any of a node's RPC
// interfaces' published address, as in CCF.
func (s *Server) listNetworkNodes(c *call) error {
	q := c.r.URL.Query()
	host, byHost, err := param(q, "host")
	if err != nil {
		return err
	}
	port, byPort, err := param(q, "port")
	if err != nil {
		return err
	}
	status, byStatus, err := param(q, "status")
	if err != nil {
		return err
	}
	if byStatus && !slices.Contains(nodeStatuses, status) {
		return newError(http.StatusBadRequest, codeInvalidQuery, "Query parameter '%s' is not a valid node status", clip(status))
	}
	st := s.reads.State()
	primary := s.primaryID()
	nodes := []nodeAnswer{}
	st.Range(tables.NodesInfoMap, func(key, value []byte) bool {
		var rec nodeRecord
		if rec, err = readNode(string(key), value); err != nil {
			return false
		}
		if byStatus && rec.Status != status {
			return true
		}
		a := s.answerOf(string(key), rec, primary)
		if (byHost || byPort) && !publishedAt(a.RPCInterfaces, host, byHost, port, byPort) {
			return true
		}
		nodes = append(nodes, a)
		return true
	})
	if err != nil {
		return err
	}
	return c.ok(struct {
		Nodes []nodeAnswer `json:"nodes"`
	}{nodes})
}

// publishedAt reports whether one of the interfaces is published at host
// (if byHost) and port (if byPort).
func publishedAt(ifaces map[string]json.RawMessage, host string, byHost bool, port string, byPort bool) bool {
	for _, raw := range ifaces {
		var iface NetInterface
		if json.Unmarshal(raw, &iface) != nil {
			continue
		}
		h, p, err := net.SplitHostPort(iface.PublishedAddress)
		if err != nil {
			continue
		}
		if (!byHost || h == host) && (!byPort || p == port) {
			return true
		}
	}
	return false
}

// getNetworkNode serves GET /node/network/nodes/{nodeId}. As in CCF, any id
// is looked up: one not in the node table is 404 "Node not found".
func (s *Server) getNetworkNode(c *call) error {
	id := c.r.PathValue("nodeId")
	raw, ok := s.reads.State().Get(tables.NodesInfoMap, []byte(id))
	if !ok {
		return newError(http.StatusNotFound, codeResourceNotFound, "Node not found")
	}
	rec, err := readNode(id, raw)
	if err != nil {
		return err
	}
	return c.ok(s.answerOf(id, rec, s.primaryID()))
}

// getNetworkNodeSelf serves GET /node/network/nodes/self: this node, from
// its record, or (not in the node table yet: a joiner) from its
// configuration with status Pending, as CCF does.
func (s *Server) getNetworkNodeSelf(c *call) error {
	id := s.cfg.Identities.Node.ID
	rec := nodeRecord{NodeInfo: tables.NodeInfo{Status: "Pending"}}
	if raw, ok := s.reads.State().Get(tables.NodesInfoMap, []byte(id)); ok {
		var err error
		if rec, err = readNode(id, raw); err != nil {
			return err
		}
	}
	return c.ok(s.answerOf(id, rec, s.primaryID()))
}

// getNetworkNodePrimary serves GET /node/network/nodes/primary: the
// primary's record, as CCF answers it (CCF before 4.0 redirected to
// /node/network/nodes/{id} instead). While no primary is known, CCF's 500
// InternalError "Primary unknown".
func (s *Server) getNetworkNodePrimary(c *call) error {
	primary := s.primaryID()
	if primary == "" {
		return newError(http.StatusInternalServerError, codeInternal, "Primary unknown")
	}
	raw, ok := s.reads.State().Get(tables.NodesInfoMap, []byte(primary))
	if !ok {
		return newError(http.StatusNotFound, codeResourceNotFound, "Node not found")
	}
	rec, err := readNode(primary, raw)
	if err != nil {
		return err
	}
	return c.ok(s.answerOf(primary, rec, primary))
}

// getNodeCommit serves GET /node/commit: the last committed transaction id
// (CCF's GetCommit::Out; its view_history options are not served).
func (s *Server) getNodeCommit(c *call) error {
	return c.ok(struct {
		TransactionID string `json:"transaction_id"`
	}{c.served.String()})
}

// txIDParam is CCF's query parameter of /node/tx.
const txIDParam = "transaction_id"

// getNodeTx serves GET /node/tx?transaction_id=: the transaction's status
// by CCF's evaluate_tx_status (node.Reader.Status), 200 whatever it is; a
// missing or malformed id is CCF's 400 InvalidQueryParameterValue.
func (s *Server) getNodeTx(c *call) error {
	raw, ok, err := param(c.r.URL.Query(), txIDParam)
	if err != nil {
		return err
	}
	if !ok {
		return newError(http.StatusBadRequest, codeInvalidQuery, "Missing query parameter '%s'", txIDParam)
	}
	id, err := node.ParseTxID(raw)
	if err != nil {
		return newError(http.StatusBadRequest, codeInvalidQuery,
			"The value '%s' passed as query parameter '%s' could not be converted to a valid Transaction ID.", clip(raw), txIDParam)
	}
	return c.ok(struct {
		Status        string `json:"status"`
		TransactionID string `json:"transaction_id"`
	}{s.reads.Status(id).String(), id.String()})
}

// getNodeVersion serves GET /node/version. ccf_version names ledgerd and its
// version ("ledgerd-" + Config.Version); quickjs_version names the
// constitution's JavaScript engine, which in ledgerd is goja, not QuickJS
// ("goja-" + its module version); unsafe is false (CCF's unsafe builds
// have debug options ledgerd does not have).
func (s *Server) getNodeVersion(c *call) error {
	return c.ok(struct {
		CCFVersion     string `json:"ccf_version"`
		QuickJSVersion string `json:"quickjs_version"`
		Unsafe         bool   `json:"unsafe"`
	}{"ledgerd-" + s.cfg.Version, "goja-" + moduleVersion("github.com/dop251/goja"), false})
}

// mainVersion is the running binary's module version and VCS revision, the
// default Config.Version.
func mainVersion() string {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return "unknown"
	}
	v := bi.Main.Version
	for _, st := range bi.Settings {
		if st.Key == "vcs.revision" {
			v += "+" + st.Value
		}
	}
	return v
}

// moduleVersion is the version of a module the binary is built with.
func moduleVersion(path string) string {
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, m := range bi.Deps {
			if m.Path == path {
				return m.Version
			}
		}
	}
	return "unknown"
}

// quoteAnswer is CCF's Quote: the raw quote and its endorsements in base64,
// the format, and the measurement (hex).
type quoteAnswer struct {
	NodeID       string `json:"node_id"`
	Raw          string `json:"raw"`
	Endorsements string `json:"endorsements"`
	Format       string `json:"format"`
	Measurement  string `json:"measurement,omitempty"`
	raw          []byte // the quote's bytes
}

// ownQuote is this node's quote.
func (s *Server) ownQuote() quoteAnswer {
	return quoteAnswer{NodeID: s.cfg.Identities.Node.ID, Raw: base64.StdEncoding.EncodeToString(s.quote),
		Endorsements: "", Format: s.cfg.Attestation.Format(), Measurement: s.cfg.Attestation.Measurement(), raw: s.quote}
}

// getNodeQuoteSelf serves GET /node/quotes/self: this node's quote over the
// SHA-256 of its public key (the same quote as /app/enclaveQuotes).
func (s *Server) getNodeQuoteSelf(c *call) error {
	return c.ok(s.ownQuote())
}

// getNodeQuotes serves GET /node/quotes: the quotes of the Trusted nodes
// (trustedQuotes).
func (s *Server) getNodeQuotes(c *call) error {
	quotes, err := s.trustedQuotes()
	if err != nil {
		return err
	}
	return c.ok(struct {
		Quotes []quoteAnswer `json:"quotes"`
	}{quotes})
}

// trustedQuotes are the quotes of the Trusted nodes: this node's from
// itself, the others' as recorded when they joined (quote_info).
func (s *Server) trustedQuotes() ([]quoteAnswer, error) {
	quotes := []quoteAnswer{}
	var err error
	s.reads.State().Range(tables.NodesInfoMap, func(key, value []byte) bool {
		var rec nodeRecord
		if rec, err = readNode(string(key), value); err != nil {
			return false
		}
		if rec.Status != tables.NodeTrusted {
			return true
		}
		switch {
		case string(key) == s.cfg.Identities.Node.ID:
			quotes = append(quotes, s.ownQuote())
		case rec.QuoteInfo != nil:
			quotes = append(quotes, quoteAnswer{NodeID: string(key), Raw: base64.StdEncoding.EncodeToString(rec.QuoteInfo.Quote),
				Endorsements: "", Format: rec.QuoteInfo.Format, Measurement: measurementOf(rec), raw: rec.QuoteInfo.Quote})
		}
		return true
	})
	return quotes, err
}

// measurementOf is the measurement of a recorded quote: the record's
// code_digest (CCF's), else the one a virtual quote states.
func measurementOf(rec nodeRecord) string {
	if rec.CodeDigest != "" {
		return rec.CodeDigest
	}
	var vq attest.VirtualQuote
	if rec.QuoteInfo.Format == attest.FormatVirtual && json.Unmarshal(rec.QuoteInfo.Quote, &vq) == nil {
		return vq.Measurement
	}
	return ""
}

// consensusNode is CCF's Configuration::NodeInfo: the node-to-node address.
type consensusNode struct {
	Address string `json:"address"`
}

// consensusAck is CCF's ConsensusDetails::Ack: a backup's acknowledged
// seqno and the milliseconds since its last acknowledgement.
type consensusAck struct {
	Seqno          uint64 `json:"seqno"`
	LastReceivedMS int64  `json:"last_received_ms"`
}

// consensusConfig is CCF's Configuration: idx is the seqno of the
// configuration change, rid the reconfiguration id (ledgerd: the same).
type consensusConfig struct {
	Idx   uint64                   `json:"idx"`
	Nodes map[string]consensusNode `json:"nodes"`
	RID   uint64                   `json:"rid"`
}

// getNodeConsensus serves GET /node/consensus (any ledger user or Active
// member; CCF serves it to anyone): CCF's ConsensusConfigDetails of what this
// node knows of its Raft group. Nodes whose node id this node does not know
// (no record carries their Raft id) are keyed "raft:<Raft id>". acks is, on
// the primary, CCF's view of each other member's replication: seqno, the
// highest seqno known to be in its log (Raft's Progress.Match), and
// last_received_ms, the milliseconds since its last acknowledgement (an
// append or heartbeat response; since this node started if none); empty on
// a backup, as in CCF. raft_id is ledgerd's: this node's Raft id.
func (s *Server) getNodeConsensus(c *call) error {
	ri := s.reads.RaftInfo()
	nodes := map[string]consensusNode{}
	for _, id := range ri.Voters {
		nodeID, ok := s.nodeIDOfRaft(id)
		if !ok {
			nodeID = "raft:" + strconv.FormatUint(id, 10)
		}
		nodes[nodeID] = consensusNode{Address: s.peerAddressOf(nodeID)}
	}
	learners := map[string]uint64{}
	for _, id := range ri.Learners {
		nodeID, ok := s.nodeIDOfRaft(id)
		if !ok {
			nodeID = "raft:" + strconv.FormatUint(id, 10)
		}
		learners[nodeID] = 0
	}
	acks := map[string]consensusAck{}
	now := time.Now()
	for _, a := range ri.Acks {
		nodeID, ok := s.nodeIDOfRaft(a.ID)
		if !ok {
			nodeID = "raft:" + strconv.FormatUint(a.ID, 10)
		}
		acks[nodeID] = consensusAck{Seqno: a.Match, LastReceivedMS: max(0, now.Sub(a.LastAck).Milliseconds())}
	}
	type details struct {
		Configs         []consensusConfig       `json:"configs"`
		Acks            map[string]consensusAck `json:"acks"`
		MembershipState string                  `json:"membership_state"`
		LeadershipState string                  `json:"leadership_state"`
		Learners        map[string]uint64       `json:"learners,omitempty"`
		PrimaryID       string                  `json:"primary_id,omitempty"`
		CurrentView     uint64                  `json:"current_view"`
		Ticking         bool                    `json:"ticking"`
		RaftID          uint64                  `json:"raft_id"`
	}
	membership := "Active"
	if !slices.Contains(ri.Voters, ri.ID) {
		membership = "Learner"
		if !slices.Contains(ri.Learners, ri.ID) {
			membership = "Retired"
		}
	}
	return c.ok(struct {
		Details details `json:"details"`
	}{details{
		Configs:         []consensusConfig{{Idx: ri.ConfIndex, Nodes: nodes, RID: ri.ConfIndex}},
		Acks:            acks,
		MembershipState: membership,
		LeadershipState: ri.Role,
		Learners:        learners,
		PrimaryID:       s.primaryID(),
		CurrentView:     ri.View,
		Ticking:         true,
		RaftID:          ri.ID,
	}})
}
