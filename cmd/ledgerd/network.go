package main

import (
	"context"
	"encoding/json"
	"log/slog"
	"slices"
	"sync/atomic"
	"time"

	"go.etcd.io/raft/v3/raftpb"

	"github.com/ledgerd/ledgerd/internal/identity"
	"github.com/ledgerd/ledgerd/internal/join"
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

	peers map[uint64]string // raft id -> address the transport has
	// bootstrap are the peers a joined node was given: trusted and reached
	// until its copy of the nodes table has a record of them.
	bootstrap []join.Peer
}

// newNetwork builds the transport of a node whose identities are ids and
// Raft id is raftID. Its callbacks reach the node once attach is called.
func newNetwork(ids *identity.Identities, raftID uint64, bootstrap []join.Peer, log *slog.Logger) (*network, error) {
	w := &network{self: raftID, log: log, peers: map[uint64]string{}, bootstrap: bootstrap}
	tr, err := transport.New(transport.Config{
		RaftID:      raftID,
		Cert:        ids.Node.TLSCertificate(ids.Service),
		ServiceCert: ids.Service.Cert,
		Allowed:     w.allowed,
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
	return w, nil
}

// allowed: a node may take part while the service trusts it.
func (w *network) allowed(nodeID string) bool {
	n := w.n.Load()
	if n == nil {
		return false
	}
	raw, ok := n.Reader.State().Get(tables.NodesInfoMap, []byte(nodeID))
	if !ok {
		// A joined node that has not caught up yet trusts the peers it was
		// given.
		return slices.ContainsFunc(w.bootstrap, func(p join.Peer) bool { return p.NodeID == nodeID })
	}
	var info tables.NodeInfo
	return json.Unmarshal(raw, &info) == nil && info.Status == tables.NodeTrusted
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
