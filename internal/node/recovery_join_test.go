package node_test

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"go.etcd.io/raft/v3/raftpb"

	"github.com/ledgerd/ledgerd/internal/consensus"
	"github.com/ledgerd/ledgerd/internal/identity"
	"github.com/ledgerd/ledgerd/internal/node"
)

// TestJoinerOfRecoveredServiceGetsOldEntriesVerbatim: a node that joins a
// service while it is being recovered (before the members' shares are in)
// receives the previous service's part of the ledger from the recovering
// node as its ledger bytes (consensus.Storage.SetVerbatimUpTo, set up by
// setUpJoinedRecovery on every node of a recovered service): it stores
// them byte for byte as the previous service wrote them, a conf change of
// that service included, never applies that conf change (the joiner's
// configuration is the recovered service's), and the recovered service
// commits with it as a voter. Without the verbatim sending the recovering
// node decodes the previous entries back into Raft entries (conf changes
// included), which the joiner serialises again for its ledger and cannot
// without the previous service's ledger secret: it stops with 'the previous
// service's ledger secrets are not recovered yet (seqno 1)', and its
// addition never commits.
func TestJoinerOfRecoveredServiceGetsOldEntriesVerbatim(t *testing.T) {
	base := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	// The previous service: one node, private entries and a conf change
	// (a learner that never runs), all committed; then lost.
	oldDir := filepath.Join(base, "old")
	oldNet := &memNet{nodes: map[uint64]*node.Node{}, cut: map[uint64]bool{}}
	old := openNode(t, oldDir, func(c *node.Config) { c.Transport = memTransport{oldNet} })
	appendEntry(t, old, "c", "before 1")
	cc, err := old.ProposeConfChange(ctx, raftpb.ConfChange{Type: raftpb.ConfChangeAddLearnerNode, NodeID: 5})
	if err != nil {
		t.Fatal(err)
	}
	if err := old.WaitCommitted(ctx, cc); err != nil {
		t.Fatal(err)
	}
	waitCommitted(t, old, appendEntry(t, old, "c", "before 2"))
	oldLast := old.CommittedSeqno()
	oldBytes := map[uint64][]byte{}
	for s := uint64(1); s <= oldLast; s++ {
		if oldBytes[s], err = node.LedgerBytes(old, s); err != nil {
			t.Fatal(err)
		}
	}
	if err := old.Close(); err != nil {
		t.Fatal(err)
	}
	prevCert, err := os.ReadFile(filepath.Join(oldDir, identity.ServiceCertFile))
	if err != nil {
		t.Fatal(err)
	}

	// The recovering node: a copy of the ledger, new identities.
	net := &memNet{nodes: map[uint64]*node.Node{}, cut: map[uint64]bool{}}
	logs := map[uint64]*lockedBuffer{1: {}, 2: {}}
	t.Cleanup(func() {
		if t.Failed() {
			for id, l := range logs {
				t.Logf("node %d's log (end):\n%s", id, tail(l.String(), 4000))
			}
		}
	})
	raftCfg := func(id uint64) consensus.Config {
		return consensus.Config{ID: id, Joining: id != 1, TickInterval: 5 * time.Millisecond, ElectionTicks: 20, HeartbeatTicks: 2}
	}
	open := func(id uint64, dir string, mod func(*node.Config)) *node.Node {
		t.Helper()
		ids, err := identity.LoadOrCreate(dir, identity.Options{})
		if err != nil {
			t.Fatal(err)
		}
		cfg := node.Config{Dir: dir, Identities: ids, Raft: raftCfg(id), Transport: memTransport{net}, NoBootstrap: id != 1,
			Logger: slog.New(slog.NewTextHandler(logs[id], &slog.HandlerOptions{Level: slog.LevelInfo}))}
		if mod != nil {
			mod(&cfg)
		}
		n, err := node.Open(cfg)
		if err != nil {
			t.Fatalf("opening node %d: %v", id, err)
		}
		t.Cleanup(func() { n.Close() })
		net.mu.Lock()
		net.nodes[id] = n
		net.mu.Unlock()
		return n
	}
	recDir := filepath.Join(base, "rec")
	copyDir(t, filepath.Join(oldDir, "ledger"), filepath.Join(recDir, "ledger"))
	rec := open(1, recDir, func(c *node.Config) { c.Recover = &node.Recover{PreviousServiceCert: prevCert} })
	waitCond(t, "the recovering node to lead", rec.IsPrimary)
	record, ok := rec.JoinedRecovery()
	if !ok {
		t.Fatal("the recovering node gives no recovery record to a joiner")
	}
	var rf struct {
		PreviousEnd uint64 `json:"previous_end"`
	}
	if err := json.Unmarshal(record, &rf); err != nil {
		t.Fatal(err)
	}
	if rf.PreviousEnd < cc.Seqno || rf.PreviousEnd > oldLast {
		t.Fatalf("previous_end %d: want the previous service's last signature, after its conf change at %d and at most %d", rf.PreviousEnd, cc.Seqno, oldLast)
	}
	waitCond(t, "the recovery transaction to commit", func() bool { return rec.CommittedSeqno() > rf.PreviousEnd })

	// A node joins while the service is being recovered: the service's
	// identity and the recovery record from the welcome, then added as a
	// voter.
	joinDir := filepath.Join(base, "joiner")
	copyIdentity(t, recDir, joinDir, false)
	if err := node.WriteJoinedRecovery(joinDir, record); err != nil {
		t.Fatal(err)
	}
	joiner := open(2, joinDir, nil)
	add, err := rec.ProposeConfChange(ctx, raftpb.ConfChange{Type: raftpb.ConfChangeAddNode, NodeID: 2})
	if err != nil {
		t.Fatal(err)
	}
	if err := rec.WaitCommitted(ctx, add); err != nil {
		t.Fatalf("adding the joiner (a voter: it commits only once the joiner holds the whole ledger): %v", err)
	}
	waitCond(t, "the joiner to commit its addition", func() bool { return joiner.CommittedSeqno() >= add.Seqno })

	// The previous service's entries, byte for byte.
	for s := uint64(1); s <= rf.PreviousEnd; s++ {
		got, err := node.LedgerBytes(joiner, s)
		if err != nil {
			t.Fatalf("the joiner's entry %d: %v", s, err)
		}
		if !bytes.Equal(got, oldBytes[s]) {
			t.Fatalf("the joiner's entry %d (%d bytes) is not the previous service's (%d bytes)", s, len(got), len(oldBytes[s]))
		}
	}
	// The recovered service's own entries are the same on both nodes too.
	for s := rf.PreviousEnd + 1; s <= add.Seqno; s++ {
		want, err := node.LedgerBytes(rec, s)
		if err != nil {
			t.Fatal(err)
		}
		if got, err := node.LedgerBytes(joiner, s); err != nil || !bytes.Equal(got, want) {
			t.Fatalf("the joiner's entry %d differs from the recovering node's (%v)", s, err)
		}
	}
	// The previous conf change was stored, not applied: the joiner's
	// configuration is the recovered service's.
	info := joiner.RaftInfo()
	voters := slices.Sorted(slices.Values(info.Voters))
	if !slices.Equal(voters, []uint64{1, 2}) || len(info.Learners) != 0 {
		t.Fatalf("the joiner's configuration: voters %v, learners %v; want voters [1 2] and no learner (the previous service's learner 5 is no member)",
			info.Voters, info.Learners)
	}
}
