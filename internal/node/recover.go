package node

import (
	"encoding/hex"
	"encoding/json"
	"fmt"

	"github.com/ledgerd/ledgerd/internal/consensus"
	"github.com/ledgerd/ledgerd/internal/ledger"
	"github.com/ledgerd/ledgerd/internal/merkle"
	"github.com/ledgerd/ledgerd/internal/tables"
)

// recover brings the derived files back in line with the ledger (the only
// source of truth) after a clean stop or a crash, then builds the Raft node.
//
//  1. The ledger has already recovered its open chunk (torn tail dropped).
//     Start-up checks (startup.go): the ledger secret must authenticate the
//     first entries it encrypts (and, once step 5 knows every rekey, the
//     last entries must authenticate with theirs); the durable commit point
//     (raft.state, .committed chunk names, the checkpoint) must not lie
//     beyond the ledger's end.
//  2. Merkle tree: cut anything beyond the ledger; check its last leaf and
//     the root at the last known signature against the ledger; if they
//     disagree, fall back to the checkpoint's fsynced size, then to empty.
//  3. Replay the ledger suffix the tree or signature index lack, verifying
//     every signature found against the recomputed root.
//  4. Raft state: a missing or unreadable raft.state is rebuilt from the
//     ledger for a single-node service, else the node refuses to start.
//     Commit point: the last signature Raft had committed, or the end of the
//     last .committed chunk, whichever is later.
//  5. State: the checkpoint (a committed state) if it matches the ledger,
//     then the ledger after it executed by the live path's derive, the
//     part up to the commit point folded into the committed state.
func (n *Node) recover() error {
	last := n.ledger.LastSeqno()
	if err := n.checkSecret(last); err != nil {
		return err
	}
	cp := n.loadCheckpoint()
	if err := n.checkCommitPoint(last, cp); err != nil {
		return err
	}
	if err := n.recoverTree(last, cp); err != nil {
		return err
	}
	if err := n.replaySuffix(last); err != nil {
		return err
	}
	if n.firstRecovery {
		var err error
		if last, err = n.endFirstRecovery(last); err != nil {
			return err
		}
	}
	if err := n.checkPreviousCovered(); err != nil {
		return err
	}
	if err := n.findRecoveredSecrets(last); err != nil {
		return err
	}
	if cp != nil && cp.PreviousPublicOnly {
		if _, recovered := n.keys.Previous(); recovered {
			n.log.Info("recovery: the checkpoint predates the recovered secrets; replaying the ledger")
			cp = nil
		}
	}
	if err := n.recoverRaftState(last); err != nil {
		return err
	}
	if err := n.setUpJoinedRecovery(); err != nil {
		return err
	}
	hs := n.storage.State().Hard
	committed := max(n.sigs.LastAtOrBefore(hs.Commit), n.ledger.CommittedSeqno())
	if err := n.recoverState(cp, committed, last); err != nil {
		return err
	}
	if err := n.checkTailSecrets(last); err != nil {
		return err
	}
	n.committed.Store(committed)
	n.lastSeqno.Store(last)
	n.lastSig = n.sigs.Last()
	n.txsSinceSig = int(last - min(last, n.lastSig))
	rn, err := consensus.NewRawNode(n.cfg.Raft, n.storage, min(hs.Commit, committed))
	if err != nil {
		return err
	}
	n.rn = rn
	n.publishRaftInfo()
	n.queueGenesisIfNeeded()
	n.log.Info("node recovered", "last", last, "committed", committed, "tree", n.tree.Size(), "signatures", n.sigs.Count())
	return nil
}

func (n *Node) recoverTree(last uint64, cp *checkpointFile) error {
	if n.tree.Size() > last+1 {
		if err := n.tree.Truncate(last + 1); err != nil {
			return err
		}
	}
	if n.sigs.Last() > last {
		if err := n.sigs.TruncateAfter(last); err != nil {
			return err
		}
	}
	if n.treeMatchesLedger() {
		return nil
	}
	if cp != nil && cp.TreeSize < n.tree.Size() {
		n.log.Warn("Merkle tree disagrees with the ledger; falling back to the checkpoint", "size", n.tree.Size(), "checkpoint", cp.TreeSize)
		if err := n.tree.Truncate(cp.TreeSize); err != nil {
			return err
		}
		if n.treeMatchesLedger() {
			return nil
		}
	}
	n.log.Warn("Merkle tree disagrees with the ledger; rebuilding it", "size", n.tree.Size())
	if err := n.tree.Truncate(n.tree.Base()); err != nil {
		return err
	}
	return n.resetSigs()
}

// resetSigs empties the signature index, but for the startup snapshot's
// signature (the first a node that started from a snapshot knows).
func (n *Node) resetSigs() error {
	if err := n.sigs.Reset(); err != nil {
		return err
	}
	if n.startup != nil {
		if err := n.sigs.Append(n.startup.Seqno); err != nil {
			return err
		}
		return n.sigs.Flush()
	}
	return nil
}

// treeMatchesLedger checks the tree's last leaf and the root at the last
// signature it covers against the ledger.
func (n *Node) treeMatchesLedger() bool {
	size := n.tree.Size()
	if size <= max(1, n.tree.Base()) {
		return true
	}
	raw, err := n.ledger.Read(size - 1)
	if err != nil {
		return false
	}
	leaf, err := n.leafAt(raw)
	if got, err2 := n.tree.Leaf(size - 1); err != nil || err2 != nil || got != leaf {
		return false
	}
	s := n.sigs.LastAtOrBefore(size - 1)
	if s == 0 || s < n.tree.Base() {
		return true
	}
	ps, err := n.signatureAt(s)
	if err != nil {
		return false
	}
	root, err := n.tree.Root(s)
	return err == nil && hex.EncodeToString(root[:]) == ps.Root
}

func (n *Node) leafAt(raw []byte) (merkle.Hash, error) {
	e, err := ledger.ParseEntry(raw)
	if err != nil {
		return merkle.Hash{}, err
	}
	return leafOf(raw, e)
}

// replaySuffix appends to the tree and the signature index what they lack
// of the ledger, verifying every signature it meets.
func (n *Node) replaySuffix(last uint64) error {
	if n.tree.Size() == 0 {
		if err := n.tree.Append(merkle.Hash{}); err != nil { // leaf 0: 32 zero bytes
			return err
		}
	}
	treeFrom, sigFrom := n.tree.Size(), n.sigs.Last()+1
	from := min(treeFrom, sigFrom)
	p := n.startReplay("Merkle tree and signature index", from, last)
	err := n.ledger.Range(from, last, func(s uint64, raw []byte) error {
		p.at(s)
		e, err := ledger.ParseEntry(raw)
		if err != nil {
			return fmt.Errorf("node: entry %d: %w", s, err)
		}
		if s >= sigFrom && consensus.HasPublicMaps(e) {
			ps, err := signatureOf(e)
			if err != nil {
				return fmt.Errorf("node: entry %d: %w", s, err)
			}
			if ps != nil {
				if err := n.checkSignature(ps, s, false); err != nil {
					return fmt.Errorf("node: signature at %d: %w", s, err)
				}
				if err := n.sigs.Append(s); err != nil {
					return err
				}
			}
		}
		if s >= treeFrom {
			leaf, err := leafOf(raw, e)
			if err != nil {
				return fmt.Errorf("node: entry %d: %w", s, err)
			}
			if err := n.tree.Append(leaf); err != nil {
				return err
			}
			if s%replayFlushLeaves == 0 { // keep the tree's write buffer small
				return n.flushDerived()
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	p.done()
	return n.flushDerived()
}

func (n *Node) recoverState(cp *checkpointFile, committed, last uint64) error {
	if cp != nil && n.checkpointMatches(cp, committed) {
		n.state.restore(cp)
	} else {
		if cp != nil {
			n.log.Warn("checkpoint does not match the ledger; replaying from the start", "applied", cp.Applied)
		}
		if n.startup != nil { // the start is the snapshot's state
			n.state.restore(n.startup.body.State)
		}
	}
	// Committed in steps, so the deltas held meanwhile stay few.
	const step = 4096
	from := n.state.Applied() + 1
	p := n.startReplay("state", from, last)
	err := n.ledger.Range(from, last, func(s uint64, raw []byte) error {
		p.at(s)
		e, err := ledger.ParseEntry(raw)
		if err != nil {
			return fmt.Errorf("node: entry %d: %w", s, err)
		}
		if err := n.derive(e); err != nil {
			return fmt.Errorf("node: %w", err)
		}
		if s <= committed && (s%step == 0 || s == committed) {
			n.state.commit(s)
		}
		return nil
	})
	if err != nil {
		return err
	}
	p.done()
	n.state.commit(committed)
	return nil
}

func (n *Node) checkpointMatches(cp *checkpointFile, committed uint64) bool {
	if cp.Applied > committed || cp.Applied >= n.tree.Size() {
		return false
	}
	if n.startup != nil && cp.Applied <= n.startup.Seqno {
		return n.startupCheckpoint(cp)
	}
	v, err := n.ledger.View(cp.Applied)
	if err != nil || v != cp.AppliedView {
		return false
	}
	leaf, err := n.tree.Leaf(cp.Applied)
	return err == nil && hex.EncodeToString(leaf[:]) == cp.AppliedLeaf
}

// queueGenesisIfNeeded queues the genesis transaction of a new service: the
// service certificate and status (Open, or Opening with StartOpening), this node's endorsed certificate, and the
// configured initial governance (users, members, constitution).
func (n *Node) queueGenesisIfNeeded() {
	if n.cfg.NoBootstrap {
		return
	}
	// The latest state: a service record written but not committed yet
	// counts (it commits, or the primary that replaces it writes one).
	if _, ok := n.state.Get(tables.ServiceInfoMap, tables.SingletonKey); ok {
		if n.queueRecoveryIfNeeded() {
			return
		}
		n.queueNodeCertIfChanged()
		return
	}
	id := n.cfg.Identities
	status := tables.ServiceOpen
	if n.cfg.StartOpening {
		status = tables.ServiceOpening
	}
	info := tables.Value(tables.ServiceInfo{Cert: string(id.Service.CertPEM), Status: status})
	nodeInfo := tables.Value(n.ownInfo(tables.NodeInfo{Status: tables.NodeTrusted}))
	writes := []ledger.MapWrites{
		{Name: tables.ServiceInfoMap, Writes: []ledger.KV{{Key: tables.SingletonKey, Value: info}}},
		{Name: tables.NodesInfoMap, Writes: []ledger.KV{{Key: []byte(id.Node.ID), Value: nodeInfo}}},
		{Name: tables.NodeCertsMap, Writes: []ledger.KV{{Key: []byte(id.Node.ID), Value: id.Node.CertPEM}}},
	}
	writes = append(writes, n.cfg.Genesis...)
	p := &proposal{writes: writes, fut: newFuture()}
	n.qmu.Lock()
	n.queue = append([]*proposal{p}, n.queue...)
	n.qmu.Unlock()
	n.genesisQueued = true
}

// ownInfo returns this node's record with what the node itself knows set:
// its certificate, Raft member id and addresses (Config.RPCAddress,
// Config.PeerAddress).
func (n *Node) ownInfo(info tables.NodeInfo) tables.NodeInfo {
	info.Cert = string(n.cfg.Identities.Node.CertPEM)
	info.RaftID = n.cfg.Raft.ID
	if n.cfg.RPCAddress != "" {
		info.RPCInterfaces = map[string]tables.Iface{tables.PrimaryRPCInterface: {PublishedAddress: n.cfg.RPCAddress}}
	}
	if n.cfg.PeerAddress != "" {
		info.NodeToNodeInterface = &tables.Iface{PublishedAddress: n.cfg.PeerAddress}
	}
	if n.cfg.Quote != nil {
		info.QuoteInfo = n.cfg.Quote
	}
	return info
}

// queueNodeCertIfChanged records this node's certificate, Raft id and
// addresses again when they changed since the ledger last recorded them (a
// re-issued certificate: new names, renewal; new addresses), so the ledger
// names the certificate its signatures carry and peers find the node. The
// key, and so the node id, never changes. The record's other fields (its
// status, what it sent when it joined, node data) are kept.
func (n *Node) queueNodeCertIfChanged() {
	id := n.cfg.Identities.Node
	raw, ok := n.state.Get(tables.NodesInfoMap, []byte(id.ID))
	if !ok {
		return
	}
	var cur tables.NodeInfo
	if err := json.Unmarshal(raw, &cur); err != nil {
		n.log.Error("couldn't decode this node's record", "node_id", id.ID, "err", err)
		return
	}
	want := n.ownInfo(cur)
	certRecorded, _ := n.state.Get(tables.NodeCertsMap, []byte(id.ID))
	if string(tables.Value(want)) == string(tables.Value(cur)) && string(certRecorded) == string(id.CertPEM) {
		return
	}
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(raw, &fields); err != nil {
		return
	}
	var wantFields map[string]json.RawMessage
	_ = json.Unmarshal(tables.Value(want), &wantFields)
	for k, v := range wantFields {
		fields[k] = v
	}
	p := &proposal{writes: []ledger.MapWrites{
		{Name: tables.NodesInfoMap, Writes: []ledger.KV{{Key: []byte(id.ID), Value: tables.Value(fields)}}},
		{Name: tables.NodeCertsMap, Writes: []ledger.KV{{Key: []byte(id.ID), Value: id.CertPEM}}},
	}, fut: newFuture()}
	n.qmu.Lock()
	n.queue = append([]*proposal{p}, n.queue...)
	n.qmu.Unlock()
	n.log.Info("recording this node's changed certificate or addresses", "node_id", id.ID)
}
