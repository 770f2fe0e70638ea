package node_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"time"

	"go.etcd.io/raft/v3/raftpb"

	"github.com/ledgerd/ledgerd/internal/consensus"
	"github.com/ledgerd/ledgerd/internal/identity"
	"github.com/ledgerd/ledgerd/internal/ledger"
	"github.com/ledgerd/ledgerd/internal/node"
	"github.com/ledgerd/ledgerd/internal/tables"
)

// TestRandomFaults' membership steps: a node joins (a new member added by a
// Raft configuration change, itself a ledger transaction, which then
// catches up from the primary's log) or a member is removed (retired: the
// change that removes it from the configuration), one change at a time,
// proposed on the primary. Voters stay within [max(3, initial-1),
// initial+1]; the member removed may be the primary itself.
//
// After every step, besides faults_test.go's invariants: once a removed
// node has applied its own removal (its configuration, applied only once
// committed, no longer holds it), it sends no entry it had not sent before
// (it no longer leads: it stopped serving writes), is not primary, and no
// signature of it beyond what it had sent is ever committed on any node.
// A joined member's committed prefix is compared with everyone's as soon as
// it has one, and at the end it must have caught up and committed the
// final write like the founders.
//
// Catch-up is by the log (the Raft log is the ledger and is never
// compacted): from index 1, or, for half the joiners once a member holds a
// committed snapshot, from S+1 after the joiner installed that member's
// latest committed snapshot at S as its startup snapshot (InstallSnapshot,
// then Open: production's join from a snapshot). Such a node's ledger must
// begin at S+1, and its committed state equal a full-history node's at the
// same commit point (faults_test.go's checkStates).

// confChange is the configuration change in flight: proposed, neither seen
// committed nor Invalid yet.
type confChange struct {
	cc   raftpb.ConfChange
	id   node.TxID
	step int
}

// removal is a member removed by a committed configuration change.
type removal struct {
	seqno uint64 // of the change
	step  int    // seen committed
	// applied: the step at which the removed node was seen to have
	// applied its own removal (-1: not yet); wm: the highest log index it
	// had sent or persisted then. It must never send beyond wm, and no
	// signature of its beyond wm may ever be committed.
	applied int
	wm      uint64
	// seenWM is what it had sent or persisted when its removal was seen
	// committed: a later committed signature of its is counted (not an
	// invariant: one that has not heard of its removal may still be
	// elected, by voters that have not applied it either, and sign
	// before it applies it; etcd raft applies a configuration once
	// committed, CCF's at once).
	seenWM uint64
}

// reconfigure proposes, on the primary, adding a node or removing a
// member, unless a change is in flight (etcd raft takes one at a time; a
// second one would be turned into an empty entry).
func (r *faultRun) reconfigure() {
	if r.change != nil {
		return
	}
	r.decommission(false)
	var primary *faultNode
	for _, m := range r.readable() {
		if m.n.IsPrimary() && r.voters[m.id] {
			primary = m
			break
		}
	}
	if primary == nil {
		return
	}
	nv := len(r.voters)
	lo, hi := max(3, r.initial-1), r.initial+1
	var cc raftpb.ConfChange
	if nv < hi && (nv <= lo || r.rng.IntN(2) == 0) {
		j := r.joiner()
		if j == nil {
			j = r.joinNode()
		}
		cc = raftpb.ConfChange{Type: raftpb.ConfChangeAddNode, NodeID: j.id}
	} else {
		ids := r.memberIDs()
		cc = raftpb.ConfChange{Type: raftpb.ConfChangeRemoveNode, NodeID: ids[r.rng.IntN(len(ids))]}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	id, err := primary.n.ProposeConfChange(ctx, cc)
	if err != nil {
		r.stats["conf change refused"]++
		return
	}
	r.stats[cc.Type.String()+" proposed"]++
	r.change = &confChange{cc: cc, id: id, step: r.step}
}

// joiner returns a node waiting to be added (its earlier addition was lost
// or emptied), if any.
func (r *faultRun) joiner() *faultNode {
	for _, m := range r.nodes {
		if !m.gone && !r.voters[m.id] && r.removed[m.id] == nil {
			return m
		}
	}
	return nil
}

// joinNode starts a new node with the service's identity and ledger secret
// and a node key of its own, as a joiner: it has no configuration and
// bootstraps nothing until the primary's log reaches it.
func (r *faultRun) joinNode() *faultNode {
	id := uint64(len(r.nodes) + 1)
	dir := filepath.Join(r.base, fmt.Sprint(id))
	if err := os.MkdirAll(dir, 0o700); err != nil {
		r.fatalf("%v", err)
	}
	for _, f := range []string{identity.ServiceCertFile, identity.ServiceKeyFile, identity.LedgerSecretFile} {
		b, err := os.ReadFile(filepath.Join(r.base, "1", f))
		if err != nil {
			r.fatalf("%v", err)
		}
		if err := os.WriteFile(filepath.Join(dir, f), b, 0o600); err != nil {
			r.fatalf("%v", err)
		}
	}
	ids, err := identity.LoadOrCreate(dir, identity.Options{})
	if err != nil {
		r.fatalf("%v", err)
	}
	r.stats["joiner started"]++
	var install []func(*faultNode)
	// Half the joiners (the 1st, 3rd, ... unless no member had a committed
	// snapshot yet: then the next one). The others start from seqno 1,
	// even once a node started from a snapshot: a primary that started
	// from one at S sends them a Raft snapshot (raftsnap.go), as it does a
	// member restarted behind it.
	if 2*r.stats["join from a snapshot"] < r.stats["joiner started"] {
		var data []byte
		var at uint64
		for _, m := range r.readable() { // the latest committed snapshot of any member
			if name, b, err := m.n.LatestSnapshot(); err == nil {
				if s, _, ok := node.ParseSnapshotName(name); ok && s > at {
					data, at = b, s
				}
			}
		}
		if data == nil {
			r.stats["join from seqno 1 (no snapshot yet)"]++
		} else {
			install = append(install, func(m *faultNode) {
				s, err := node.InstallSnapshot(m.disk, m.cfg.Dir, r.ids.Service.Cert, data)
				if err != nil {
					r.fatalf("installing a member's latest committed snapshot on joiner %d: %v", m.id, err)
				}
				m.snap = s.Seqno
				r.stats["join from a snapshot"]++
			})
		}
	}
	return r.addNode(id, ids, consensus.Config{ID: id, Joining: true}, true, install...)
}

// checkMembership learns the outcome of the change in flight and checks
// the removed nodes' invariants.
func (r *faultRun) checkMembership(live []*faultNode) {
	r.t.Helper()
	if c := r.change; c != nil {
		for _, m := range live {
			st := m.n.Status(c.id)
			if st == node.StatusInvalid {
				r.stats["conf change lost"]++
				r.change = nil
				break
			}
			if st != node.StatusCommitted {
				continue
			}
			raw, err := node.LedgerBytes(m.n, c.id.Seqno)
			if err != nil {
				r.fatalf("member %d: committed conf change %s: %v", m.id, c.id, err)
			}
			ent, err := consensus.DecodeEntry(raw)
			if err != nil {
				r.fatalf("member %d: committed conf change %s: %v", m.id, c.id, err)
			}
			r.change = nil
			if ent.Type == raftpb.EntryNormal { // Raft had another change pending: turned empty
				r.stats["conf change emptied"]++
				break
			}
			var got raftpb.ConfChange
			if ent.Type != raftpb.EntryConfChange || got.Unmarshal(ent.Data) != nil || got.Type != c.cc.Type || got.NodeID != c.cc.NodeID {
				r.fatalf("member %d: the entry at %s is not the conf change proposed (%v %d): %v", m.id, c.id, c.cc.Type, c.cc.NodeID, ent.Type)
			}
			r.stats[c.cc.Type.String()+" committed"]++
			if c.cc.Type == raftpb.ConfChangeAddNode {
				r.voters[c.cc.NodeID] = true
			} else {
				delete(r.voters, c.cc.NodeID)
				rm := &removal{seqno: c.id.Seqno, step: r.step, applied: -1}
				r.net.mu.Lock()
				rm.seenWM = r.net.sentMax[c.cc.NodeID]
				r.net.mu.Unlock()
				if x := r.nodes[c.cc.NodeID-1]; x.n != nil {
					rm.seenWM = max(rm.seenWM, x.n.LastSeqno())
				}
				r.removed[c.cc.NodeID] = rm
			}
			break
		}
	}
	for id, rm := range r.removed {
		m := r.nodes[id-1]
		if m.n == nil || m.gate.isHeld() {
			continue
		}
		r.net.mu.Lock()
		sent := r.net.sentMax[id]
		r.net.mu.Unlock()
		if rm.applied < 0 {
			ri := m.n.RaftInfo()
			if ri.ConfIndex < rm.seqno || slices.Contains(ri.Voters, id) {
				continue // it has not applied its removal (it may never learn of it)
			}
			rm.applied, rm.wm = r.step, max(sent, m.n.LastSeqno())
			r.stats["removal applied by the removed node"]++
			nodeID := m.cfg.Identities.Node.ID
			for s, signer := range r.sigBy {
				if signer == nodeID && s > rm.wm {
					r.fatalf("committed signature at %d by node %d, beyond what it had sent when it applied its removal (%d)", s, id, rm.wm)
				}
			}
			continue
		}
		if sent > rm.wm {
			r.fatalf("node %d applied its removal (committed at seqno %d) at step %d, having sent entries up to %d, and has now sent entries up to %d: it went on leading (%s)",
				id, rm.seqno, rm.applied, rm.wm, sent, r.describe(m))
		}
		if r.step >= rm.applied+10 && m.n.IsPrimary() {
			r.fatalf("node %d applied its removal (committed at seqno %d) at step %d and is primary at step %d", id, rm.seqno, rm.applied, r.step)
		}
	}
	if r.converging {
		r.decommission(true)
	}
}

// committedSignature records the signer of committed seqno s if it is a
// signature, and checks that it is not a removed node's beyond what that
// node had sent when it applied its removal.
func (r *faultRun) committedSignature(s uint64, raw []byte) {
	r.t.Helper()
	e, err := ledger.ParseEntry(raw)
	if err != nil {
		r.fatalf("committed seqno %d: %v", s, err)
	}
	if !consensus.HasPublicMaps(e) {
		return
	}
	d, err := e.PublicDomain()
	if err != nil {
		r.fatalf("committed seqno %d: %v", s, err)
	}
	ps, _, err := tables.ParseSignature(d)
	if err != nil || ps == nil {
		return
	}
	r.sigBy[s] = ps.Node
	if rm := r.removed[r.signers[ps.Node]]; rm != nil && s > rm.seenWM {
		r.stats["signature committed after its signer's removal was (unknown to it)"]++
	}
	if rm := r.removed[r.signers[ps.Node]]; rm != nil && rm.applied >= 0 && s > rm.wm {
		r.fatalf("committed signature at %d by node %d, which had applied its removal at step %d having sent up to %d", s, r.signers[ps.Node], rm.applied, rm.wm)
	}
}

// decommission shuts removed nodes down for good (an operator stops a
// retired node): all of them, or those whose removal has been known for a
// while (their invariants were checked meanwhile).
func (r *faultRun) decommission(all bool) {
	for id, rm := range r.removed {
		m := r.nodes[id-1]
		if m.gone || !all && !(rm.applied >= 0 && r.step-rm.applied > 100 || r.step-rm.step > 300) {
			continue
		}
		r.stats["decommissioned"]++
		m.gone = true
		r.net.mu.Lock()
		r.net.down[m.id] = true
		delete(r.net.live, m.id)
		r.net.mu.Unlock()
		if m.n != nil {
			m.gate.release()
			m.n.Close()
			m.n = nil
		}
	}
}

// members returns the live voters.
func (r *faultRun) members() []*faultNode {
	var l []*faultNode
	for _, m := range r.nodes {
		if r.voters[m.id] && m.n != nil {
			l = append(l, m)
		}
	}
	return l
}

// memberIDs returns the voters' ids, sorted.
func (r *faultRun) memberIDs() []uint64 {
	var ids []uint64
	for id := range r.voters {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return ids
}
