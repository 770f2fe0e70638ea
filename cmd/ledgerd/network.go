package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.etcd.io/raft/v3/raftpb"

	"github.com/ledgerd/ledgerd/internal/identity"
	"github.com/ledgerd/ledgerd/internal/join"
	"github.com/ledgerd/ledgerd/internal/ledger"
	"github.com/ledgerd/ledgerd/internal/node"
	"github.com/ledgerd/ledgerd/internal/tables"
	"github.com/ledgerd/ledgerd/internal/transport"
)

// network keeps a node's view of its service's other nodes in line with
// the nodes table (public:ccf.gov.nodes.info): the transport's peers are
// the Trusted nodes with a node-to-node address, and, on the primary, the
// Raft voters are the Trusted nodes (a node the service trusts — at join
// on an Opening service, or by transition_node_to_trusted — becomes a
// voter by a configuration change, itself a ledger transaction; a Retired
// one stops being one).
type network struct {
	n    atomic.Pointer[node.Node]
	tr   *transport.Transport
	self uint64
	log  *slog.Logger

	peers   map[uint64]string // raft id -> address the transport has
	dataDir string            // the node's data directory (its committed chunks are served)
	// bootstrap are the peers a joined node was given: trusted and reached
	// until its copy of the nodes table has a record of them.
	bootstrap []join.Peer
	// rpcAddr and peerAddr are the addresses this node serves on now;
	// lastPublish is when a backup last asked the primary to record them.
	rpcAddr, peerAddr string
	lastPublish       time.Time
	// serviceCert is this node's service certificate (PEM): until the
	// state names it (a recovered service before its recovery transaction
	// is executed), the nodes table is the previous service's, whose nodes
	// are neither peers nor voters.
	serviceCert string
	trust       trustMemo // allowed's parsed nodes-table records
}

// addressesPath is the node-to-node route on which a backup asks the
// primary to record the addresses it serves on now (after a restart on
// other addresses: a backup cannot write its own record).
const addressesPath = "/ledgerd/node/addresses"

// nodeAddresses is addressesPath's request body.
type nodeAddresses struct {
	RPCAddress  string `json:"rpc_address"`
	PeerAddress string `json:"node_to_node_address"`
}

// newNetwork builds the transport of a node whose identities are ids and
// Raft id is raftID, its outgoing connections made from clientIface (nil:
// the system's choice). Its callbacks reach the node once attach is called.
func newNetwork(ids *identity.Identities, raftID uint64, bootstrap []join.Peer, rpcAddr, peerAddr string, clientIface net.IP, log *slog.Logger) (*network, error) {
	w := &network{self: raftID, log: log, peers: map[uint64]string{}, bootstrap: bootstrap, rpcAddr: rpcAddr, peerAddr: peerAddr,
		serviceCert: string(ids.Service.CertPEM)}
	tr, err := transport.New(transport.Config{
		RaftID:          raftID,
		Cert:            ids.Node.TLSCertificate(ids.Service),
		ServiceCert:     ids.Service.Cert,
		ClientInterface: clientIface,
		Allowed:         w.allowed,
		Deliver: func(m raftpb.Message) {
			if n := w.n.Load(); n != nil {
				n.Step(m)
			}
		},
		Unreachable: func(id uint64) {
			if n := w.n.Load(); n != nil {
				n.ReportUnreachable(id)
			}
		},
		ReportSnapshot: func(id uint64, failed bool) {
			if n := w.n.Load(); n != nil {
				n.ReportSnapshot(id, failed)
			}
		},
		Logger: log.With("component", "transport"),
	})
	if err != nil {
		return nil, err
	}
	w.tr = tr
	tr.Handle(addressesPath, http.HandlerFunc(w.serveAddresses))
	tr.Handle(snapshotPath, http.HandlerFunc(w.serveSnapshot))
	tr.Handle(chunksPath, http.HandlerFunc(w.serveChunks))
	tr.Handle(chunkPath+"/", http.HandlerFunc(w.serveChunk))
	return w, nil
}

// allowed: a node may take part while the service trusts it.
func (w *network) allowed(nodeID string) bool {
	n := w.n.Load()
	if n == nil {
		// Before the node opens (a joiner fetching its snapshot): the
		// peers it was given.
		return slices.ContainsFunc(w.bootstrap, func(p join.Peer) bool { return p.NodeID == nodeID })
	}
	raw, ok := n.Reader.State().Get(tables.NodesInfoMap, []byte(nodeID))
	if !ok {
		// A joined node that has not caught up yet trusts the peers it was
		// given.
		return slices.ContainsFunc(w.bootstrap, func(p join.Peer) bool { return p.NodeID == nodeID })
	}
	return w.trust.trusted(nodeID, raw)
}

// trustMemo remembers, for each node, the last record of the nodes table
// read for it and whether that record is Trusted. allowed is asked for every
// Raft message a node receives, and parsing the record (JSON with the
// node's certificate) each time was 2-8 % of a node's CPU under load.
type trustMemo struct {
	mu   sync.Mutex
	seen map[string]trustSeen
}

type trustSeen struct {
	raw     []byte
	trusted bool
}

// trusted reports whether raw, the nodes-table record of nodeID, is
// Trusted: parsed only when it differs from the last one seen for nodeID.
func (m *trustMemo) trusted(nodeID string, raw []byte) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	if s, ok := m.seen[nodeID]; ok && bytes.Equal(s.raw, raw) {
		return s.trusted
	}
	var info tables.NodeInfo
	trusted := json.Unmarshal(raw, &info) == nil && info.Status == tables.NodeTrusted
	if m.seen == nil {
		m.seen = map[string]trustSeen{}
	}
	m.seen[nodeID] = trustSeen{raw: bytes.Clone(raw), trusted: trusted}
	return trusted
}

// attach connects the transport to the opened node.
func (w *network) attach(n *node.Node) { w.n.Store(n) }

// run keeps peers and voters in line with the nodes table until ctx ends.
func (w *network) run(ctx context.Context) {
	t := time.NewTicker(100 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			w.sync(ctx)
		}
	}
}

// trustedNode is a Trusted node's record.
type trustedNode struct {
	id   string
	info tables.NodeInfo
}

func (w *network) sync(ctx context.Context) {
	n := w.n.Load()
	if n == nil {
		return
	}
	if raw, ok := n.Reader.State().Get(tables.ServiceInfoMap, tables.SingletonKey); ok {
		var info tables.ServiceInfo
		if json.Unmarshal(raw, &info) == nil && info.Cert != w.serviceCert {
			// A node that joined a recovering service replays the previous
			// service's ledger first: it reaches the peers it was given.
			for _, p := range w.bootstrap {
				if p.RaftID == w.self || p.Address == "" || w.peers[p.RaftID] == p.Address {
					continue
				}
				if err := w.tr.AddPeer(p.RaftID, p.NodeID, p.Address); err == nil {
					w.peers[p.RaftID] = p.Address
				}
			}
			return
		}
	}
	var trusted, retired []trustedNode
	n.Reader.State().Range(tables.NodesInfoMap, func(k, v []byte) bool {
		var info tables.NodeInfo
		if json.Unmarshal(v, &info) != nil || info.RaftID == 0 {
			return true
		}
		switch info.Status {
		case tables.NodeTrusted:
			trusted = append(trusted, trustedNode{string(k), info})
		case tables.NodeRetired:
			retired = append(retired, trustedNode{string(k), info})
		}
		return true
	})
	// A recovered service's first node has the Raft id of a node of the
	// previous service, which its recovery retired: that record is not
	// this service's member.
	retired = slices.DeleteFunc(retired, func(r trustedNode) bool {
		return slices.ContainsFunc(trusted, func(t trustedNode) bool { return t.info.RaftID == r.info.RaftID })
	})
	for _, p := range w.bootstrap {
		if _, known := n.Reader.State().Get(tables.NodesInfoMap, []byte(p.NodeID)); !known {
			trusted = append(trusted, trustedNode{p.NodeID, tables.NodeInfo{RaftID: p.RaftID,
				NodeToNodeInterface: &tables.Iface{PublishedAddress: p.Address}}})
		}
	}
	for _, t := range trusted {
		if t.info.RaftID == w.self || t.info.NodeToNodeInterface == nil {
			continue
		}
		addr := t.info.NodeToNodeInterface.PublishedAddress
		if w.peers[t.info.RaftID] == addr {
			continue
		}
		if err := w.tr.AddPeer(t.info.RaftID, t.id, addr); err != nil {
			w.log.Warn("couldn't add a peer", "node_id", t.id, "raft_id", t.info.RaftID, "err", err)
			continue
		}
		w.peers[t.info.RaftID] = addr
	}
	for _, r := range retired {
		if _, ok := w.peers[r.info.RaftID]; ok && r.info.RaftID != w.self {
			w.tr.RemovePeer(r.info.RaftID)
			delete(w.peers, r.info.RaftID)
		}
	}
	if !n.IsPrimary() {
		w.publishAddresses(ctx, n)
		return
	}
	trusted = slices.DeleteFunc(trusted, func(t trustedNode) bool { return t.info.Status != tables.NodeTrusted })
	voters := n.Reader.RaftInfo().Voters
	for _, t := range trusted {
		if !slices.Contains(voters, t.info.RaftID) {
			w.changeVoters(ctx, n, raftpb.ConfChange{Type: raftpb.ConfChangeAddNode, NodeID: t.info.RaftID}, t.id)
			return // one change at a time
		}
	}
	for _, r := range retired {
		if slices.Contains(voters, r.info.RaftID) && len(voters) > 1 {
			w.changeVoters(ctx, n, raftpb.ConfChange{Type: raftpb.ConfChangeRemoveNode, NodeID: r.info.RaftID}, r.id)
			return
		}
	}
}

func (w *network) changeVoters(ctx context.Context, n *node.Node, cc raftpb.ConfChange, nodeID string) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	id, err := n.ProposeConfChange(ctx, cc)
	if err == nil {
		err = n.WaitCommitted(ctx, id)
	}
	if err != nil {
		w.log.Warn("configuration change not committed; will retry", "change", cc.Type.String(), "node_id", nodeID, "raft_id", cc.NodeID, "err", err)
		return
	}
	w.log.Info("configuration changed", "change", cc.Type.String(), "node_id", nodeID, "raft_id", cc.NodeID, "transaction_id", id.String())
}

// publishAddresses: a backup whose record names other addresses than the
// ones it serves on asks the primary (whichever peer answers as primary) to
// record its own, at most every 2 s, so that its peers reach it again.
func (w *network) publishAddresses(ctx context.Context, n *node.Node) {
	if time.Since(w.lastPublish) < 2*time.Second {
		return
	}
	raw, ok := n.Reader.State().Get(tables.NodesInfoMap, []byte(w.tr.NodeID()))
	if !ok {
		return
	}
	var info tables.NodeInfo
	if json.Unmarshal(raw, &info) != nil || recordsAddresses(info, w.rpcAddr, w.peerAddr) {
		return
	}
	w.lastPublish = time.Now()
	body, _ := json.Marshal(nodeAddresses{RPCAddress: w.rpcAddr, PeerAddress: w.peerAddr})
	for raftID := range w.peers {
		req, err := http.NewRequest("POST", addressesPath, bytes.NewReader(body))
		if err != nil {
			return
		}
		rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		resp, err := w.tr.Do(rctx, raftID, req)
		if err == nil {
			io.Copy(io.Discard, io.LimitReader(resp.Body, 4096))
			resp.Body.Close()
		}
		cancel()
		if err == nil && resp.StatusCode == http.StatusOK {
			w.log.Info("asked the primary to record this node's addresses", "rpc_address", w.rpcAddr, "node_to_node_address", w.peerAddr)
			return
		}
	}
}

// recordsAddresses reports whether a record names these addresses.
func recordsAddresses(info tables.NodeInfo, rpcAddr, peerAddr string) bool {
	return info.RPCInterfaces[tables.PrimaryRPCInterface].PublishedAddress == rpcAddr &&
		info.NodeToNodeInterface != nil && info.NodeToNodeInterface.PublishedAddress == peerAddr
}

// serveAddresses serves addressesPath on the primary: the calling node
// (authenticated by the transport, Trusted) has its record's addresses set
// to the ones it sends, in a transaction answered once committed; its other
// fields are kept.
func (w *network) serveAddresses(rw http.ResponseWriter, r *http.Request) {
	peer, ok := transport.PeerNodeID(r.Context())
	n := w.n.Load()
	switch {
	case !ok || r.Method != http.MethodPost:
		http.Error(rw, "forbidden", http.StatusForbidden)
		return
	case n == nil || !n.IsPrimary():
		http.Error(rw, "not the primary", http.StatusServiceUnavailable)
		return
	}
	var a nodeAddresses
	if err := json.NewDecoder(io.LimitReader(r.Body, 4096)).Decode(&a); err != nil {
		http.Error(rw, "bad request", http.StatusBadRequest)
		return
	}
	if (&join.Request{RPCAddress: a.RPCAddress, PeerAddress: a.PeerAddress}).CheckAddresses() != nil {
		http.Error(rw, "bad addresses", http.StatusBadRequest)
		return
	}
	_, err := n.Exec(r.Context(), node.UntilCommitted, func(st *node.State) ([]ledger.MapWrites, error) {
		raw, ok := st.Get(tables.NodesInfoMap, []byte(peer))
		if !ok {
			return nil, errors.New("no record")
		}
		var info tables.NodeInfo
		var fields map[string]json.RawMessage
		if json.Unmarshal(raw, &info) != nil || json.Unmarshal(raw, &fields) != nil || info.Status != tables.NodeTrusted {
			return nil, errors.New("not a Trusted node")
		}
		if recordsAddresses(info, a.RPCAddress, a.PeerAddress) {
			return nil, nil
		}
		fields["rpc_interfaces"] = tables.Value(map[string]tables.Iface{tables.PrimaryRPCInterface: {PublishedAddress: a.RPCAddress}})
		fields["node_to_node_interface"] = tables.Value(tables.Iface{PublishedAddress: a.PeerAddress})
		return []ledger.MapWrites{{Name: tables.NodesInfoMap, Writes: []ledger.KV{{Key: []byte(peer), Value: tables.Value(fields)}}}}, nil
	})
	if err != nil {
		http.Error(rw, err.Error(), http.StatusConflict)
		return
	}
	w.log.Info("recorded a node's new addresses", "node_id", peer, "rpc_address", a.RPCAddress, "node_to_node_address", a.PeerAddress)
	rw.WriteHeader(http.StatusOK)
}

// snapshotPath is the node-to-node route that serves this node's latest
// committed snapshot file (CCF's GET /node/snapshot, here on the
// authenticated node-to-node interface: the snapshot holds the state's
// private maps in plaintext). The snapshot's name is in snapshotNameHeader;
// 404 if the node has none.
const (
	snapshotPath       = "/ledgerd/node/snapshot"
	snapshotNameHeader = "X-Ledgerd-Snapshot-Name"
)

func (w *network) serveSnapshot(rw http.ResponseWriter, r *http.Request) {
	n := w.n.Load()
	if n == nil {
		writeJSONError(rw, http.StatusServiceUnavailable, "ServiceUnavailable", "The node is starting; retry shortly.")
		return
	}
	if r.Method != http.MethodGet {
		writeJSONError(rw, http.StatusMethodNotAllowed, "MethodNotAllowed", "GET only.")
		return
	}
	name, data, err := n.LatestSnapshot()
	if errors.Is(err, node.ErrNoSnapshot) {
		writeJSONError(rw, http.StatusNotFound, "ResourceNotFound", "This node has no committed snapshot.")
		return
	}
	if err != nil {
		w.log.Warn("couldn't read the latest snapshot", "err", err)
		writeJSONError(rw, http.StatusInternalServerError, "InternalError", "Couldn't read the latest snapshot.")
		return
	}
	rw.Header().Set(snapshotNameHeader, name)
	rw.Header().Set("Content-Type", "application/octet-stream")
	rw.Write(data)
}

func writeJSONError(w http.ResponseWriter, status int, code, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(map[string]any{"error": map[string]string{"code": code, "message": msg}})
}

// fetchSnapshot is a new joiner's first step after it is trusted (CCF's
// fetch_recent_snapshot): it asks each peer it was given for its latest
// committed snapshot over the node-to-node interface, verifies the latest
// one against the service certificate and installs it, so that the node
// opens at the snapshot's seqno and Raft sends only the suffix. Without a
// snapshot (none yet, or none that verifies) the node replays the whole
// ledger from its peers, as CCF does.
func (w *network) fetchSnapshot(ctx context.Context, dir string, ids *identity.Identities, history bool) {
	var best *fetchedSnapshot
	for _, p := range w.bootstrap {
		if p.RaftID == w.self || p.Address == "" {
			continue
		}
		if err := w.tr.AddPeer(p.RaftID, p.NodeID, p.Address); err != nil {
			continue
		}
		w.peers[p.RaftID] = p.Address
		g, err := w.askSnapshot(ctx, p.RaftID, ids)
		if err != nil {
			w.log.Warn("no snapshot from a peer", "node_id", p.NodeID, "err", err)
			continue
		}
		if best == nil || g.s.Seqno > best.s.Seqno {
			best = &g
		}
	}
	if best == nil {
		w.log.Info("no snapshot to start from; catching up the whole ledger from the peers")
		return
	}
	var staged string
	if history {
		var err error
		if staged, err = w.fetchHistory(ctx, dir, best.s); err != nil {
			w.log.Warn("couldn't fetch the ledger before the snapshot (--fetch-history); catching up the whole ledger from the peers instead", "err", err)
			return
		}
	}
	if _, err := node.InstallSnapshot(nil, dir, ids.Service.Cert, best.data); err != nil {
		w.log.Warn("couldn't install the snapshot; catching up the whole ledger from the peers", "snapshot", best.name, "err", err)
		return
	}
	w.log.Info("installed a snapshot to start from", "snapshot", best.name, "seqno", best.s.Seqno, "bytes", len(best.data))
	if staged != "" {
		// One rename: the ledger is there whole or not at all.
		if err := os.Rename(staged, filepath.Join(dir, "ledger")); err != nil {
			w.log.Warn("couldn't move the fetched history into place; the node starts without it", "err", err)
			return
		}
		w.log.Info("fetched the ledger before the snapshot", "to", best.s.Seqno)
	}
}

// Committed chunk files on the node-to-node interface (CCF's
// /node/ledger-chunk): chunksPath lists this node's committed chunk names,
// chunkPath/NAME serves one.
const (
	chunksPath = "/ledgerd/node/ledger-chunks"
	chunkPath  = "/ledgerd/node/ledger-chunk"
)

var committedChunkName = regexp.MustCompile(`^ledger_[1-9][0-9]*-[1-9][0-9]*\.committed$`)

func (w *network) serveChunks(rw http.ResponseWriter, r *http.Request) {
	ents, err := os.ReadDir(filepath.Join(w.dataDir, "ledger"))
	if err != nil {
		writeJSONError(rw, http.StatusInternalServerError, "InternalError", "Couldn't list the ledger.")
		return
	}
	names := []string{}
	for _, e := range ents {
		if committedChunkName.MatchString(e.Name()) {
			names = append(names, e.Name())
		}
	}
	rw.Header().Set("Content-Type", "application/json")
	json.NewEncoder(rw).Encode(map[string]any{"chunks": names})
}

func (w *network) serveChunk(rw http.ResponseWriter, r *http.Request) {
	name := strings.TrimPrefix(r.URL.Path, chunkPath+"/")
	if !committedChunkName.MatchString(name) {
		writeJSONError(rw, http.StatusNotFound, "ResourceNotFound", "No such committed ledger chunk.")
		return
	}
	http.ServeFile(rw, r, filepath.Join(w.dataDir, "ledger", name))
}

// fetchHistory downloads, from a peer that holds them, the committed chunk
// files up to the snapshot's seqno S (a snapshot's seqno ends a chunk),
// verifies them against the snapshot (node.VerifyHistory: their Merkle tree
// at S is the snapshot's) and returns the directory they are staged in.
func (w *network) fetchHistory(ctx context.Context, dir string, s *node.Snapshot) (string, error) {
	staged := filepath.Join(dir, "ledger.history")
	var errs []error
	for raftID := range w.peers {
		os.RemoveAll(staged)
		if err := w.fetchChunks(ctx, raftID, staged, s.Seqno); err != nil {
			errs = append(errs, fmt.Errorf("peer %d: %w", raftID, err))
			continue
		}
		if err := node.VerifyHistory(staged, s); err != nil {
			errs = append(errs, fmt.Errorf("peer %d: %w", raftID, err))
			continue
		}
		return staged, nil
	}
	os.RemoveAll(staged)
	return "", errors.Join(append(errs, errors.New("no peer holds the whole ledger before the snapshot"))...)
}

func (w *network) fetchChunks(ctx context.Context, raftID uint64, staged string, upTo uint64) error {
	req, _ := http.NewRequest("GET", chunksPath, nil)
	resp, err := w.tr.Do(ctx, raftID, req)
	if err != nil {
		return err
	}
	var list struct {
		Chunks []string `json:"chunks"`
	}
	err = json.NewDecoder(io.LimitReader(resp.Body, 16<<20)).Decode(&list)
	resp.Body.Close()
	if err != nil || resp.StatusCode != http.StatusOK {
		return fmt.Errorf("listing its chunks: %s %v", resp.Status, err)
	}
	type chunk struct {
		name       string
		start, end uint64
	}
	var want []chunk
	for _, name := range list.Chunks {
		var c chunk
		if !committedChunkName.MatchString(name) {
			continue
		}
		if _, err := fmt.Sscanf(name, "ledger_%d-%d.committed", &c.start, &c.end); err != nil || c.end > upTo {
			continue
		}
		c.name = name
		want = append(want, c)
	}
	slices.SortFunc(want, func(a, b chunk) int { return int(a.start) - int(b.start) })
	next := uint64(1)
	for _, c := range want {
		if c.start != next {
			return fmt.Errorf("it holds no chunk from %d", next)
		}
		next = c.end + 1
	}
	if next != upTo+1 {
		return fmt.Errorf("its chunks end at %d, not at %d", next-1, upTo)
	}
	if err := os.MkdirAll(staged, 0o700); err != nil {
		return err
	}
	for _, c := range want {
		req, _ := http.NewRequest("GET", chunkPath+"/"+c.name, nil)
		resp, err := w.tr.Do(ctx, raftID, req)
		if err != nil {
			return err
		}
		if resp.StatusCode != http.StatusOK {
			resp.Body.Close()
			return fmt.Errorf("%s: %s", c.name, resp.Status)
		}
		f, err := os.OpenFile(filepath.Join(staged, c.name), os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
		if err == nil {
			_, err = io.Copy(f, resp.Body)
			if err == nil {
				err = f.Sync()
			}
			if cerr := f.Close(); err == nil {
				err = cerr
			}
		}
		resp.Body.Close()
		if err != nil {
			return err
		}
	}
	return nil
}

type fetchedSnapshot struct {
	name string
	data []byte
	s    *node.Snapshot
}

func (w *network) askSnapshot(ctx context.Context, raftID uint64, ids *identity.Identities) (fetchedSnapshot, error) {
	ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	data, name, err := w.getSnapshot(ctx, raftID)
	if err != nil {
		return fetchedSnapshot{}, err
	}
	s, err := node.VerifySnapshot(data, ids.Service.Cert)
	if err != nil {
		return fetchedSnapshot{}, err
	}
	if seqno, evidence, ok := node.ParseSnapshotName(name); !ok || seqno != s.Seqno || evidence != s.EvidenceSeqno {
		return fetchedSnapshot{}, fmt.Errorf("the snapshot named %q holds seqno %d with evidence at %d", name, s.Seqno, s.EvidenceSeqno)
	}
	return fetchedSnapshot{name, data, s}, nil
}

// fetchSnapshotFile is node.Config.FetchSnapshot: a backup whose primary
// sent a Raft snapshot fetches the primary's latest committed snapshot file
// (the node verifies it before installing anything).
func (w *network) fetchSnapshotFile(ctx context.Context, raftID uint64) ([]byte, error) {
	data, _, err := w.getSnapshot(ctx, raftID)
	return data, err
}

// getSnapshot fetches peer raftID's latest committed snapshot file and its
// name over the node-to-node route, at most node.MaxSnapshotFile bytes
// (checked against Content-Length before reading, and while reading).
func (w *network) getSnapshot(ctx context.Context, raftID uint64) ([]byte, string, error) {
	req, err := http.NewRequest("GET", snapshotPath, nil)
	if err != nil {
		return nil, "", err
	}
	resp, err := w.tr.Do(ctx, raftID, req)
	if err != nil {
		return nil, "", err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 4<<10))
		return nil, "", fmt.Errorf("%s: %s", resp.Status, bytes.TrimSpace(msg))
	}
	if resp.ContentLength > node.MaxSnapshotFile {
		return nil, "", fmt.Errorf("a snapshot of %d bytes: at most %d allowed", resp.ContentLength, node.MaxSnapshotFile)
	}
	data, err := io.ReadAll(io.LimitReader(resp.Body, node.MaxSnapshotFile+1))
	if err != nil {
		return nil, "", err
	}
	if len(data) > node.MaxSnapshotFile {
		return nil, "", fmt.Errorf("a snapshot of more than %d bytes", node.MaxSnapshotFile)
	}
	return data, resp.Header.Get(snapshotNameHeader), nil
}
