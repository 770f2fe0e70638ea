package node

import (
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"

	"github.com/ledgerd/ledgerd/internal/durable"
)

// checkpointFile is the state snapshot written every SnapshotInterval: the
// applied state and query index, and the sizes of the derived files that
// were fsynced before it was written. It bounds the ledger suffix that
// start-up replays. It is verified against the ledger on load (the applied
// seqno's view and Merkle leaf must match), and ignored if it does not.
type checkpointFile struct {
	Version     int                   `json:"version"`
	Applied     uint64                `json:"applied"`
	AppliedView uint64                `json:"appliedView"`
	AppliedLeaf string                `json:"appliedLeaf"`
	TreeSize    uint64                `json:"treeSize"`
	Maps        []checkpointMap       `json:"maps"`
	Collections map[string]Collection `json:"collections"`
}

type checkpointMap struct {
	Name    string         `json:"name"`
	Entries []checkpointKV `json:"entries"`
}

type checkpointKV struct {
	K []byte `json:"k"`
	V []byte `json:"v"`
}

func (n *Node) checkpointPath() string { return filepath.Join(n.cfg.Dir, "state.checkpoint") }

// checkpoint fsyncs the derived files, then atomically replaces the
// checkpoint file. Crash windows: before the rename the old checkpoint
// stays valid (the derived files only grew); after it, the new one is.
func (n *Node) checkpoint() error {
	if err := n.tree.Sync(); err != nil {
		return err
	}
	if err := n.sigs.Sync(); err != nil {
		return err
	}
	cp, err := n.snapshotState()
	if err != nil || cp == nil {
		return err
	}
	b, err := json.Marshal(cp)
	if err != nil {
		return err
	}
	if err := durable.WriteFile(n.checkpointPath(), b, 0o600); err != nil {
		return fmt.Errorf("couldn't write checkpoint: %w", err)
	}
	n.sinceSnap = 0
	return nil
}

// snapshotState saves the committed state (the base), never the latest
// executed one: a checkpoint must not hold what a rollback may undo.
func (n *Node) snapshotState() (*checkpointFile, error) {
	n.state.mu.RLock()
	defer n.state.mu.RUnlock()
	s := &n.state.base
	if s.seqno == 0 {
		return nil, nil
	}
	leaf, err := n.tree.Leaf(s.seqno)
	if err != nil {
		return nil, err
	}
	view, err := n.ledger.View(s.seqno)
	if err != nil {
		return nil, err
	}
	cp := &checkpointFile{
		Version: 1, Applied: s.seqno, AppliedView: view, AppliedLeaf: hex.EncodeToString(leaf[:]),
		TreeSize: n.tree.Size(), Collections: s.collections,
	}
	for name, m := range s.maps {
		cm := checkpointMap{Name: name}
		for k, v := range m {
			cm.Entries = append(cm.Entries, checkpointKV{K: []byte(k), V: v})
		}
		sort.Slice(cm.Entries, func(i, j int) bool { return string(cm.Entries[i].K) < string(cm.Entries[j].K) })
		cp.Maps = append(cp.Maps, cm)
	}
	sort.Slice(cp.Maps, func(i, j int) bool { return cp.Maps[i].Name < cp.Maps[j].Name })
	return cp, nil
}

func (n *Node) loadCheckpoint() *checkpointFile {
	b, err := os.ReadFile(n.checkpointPath())
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	var cp checkpointFile
	if err == nil {
		err = json.Unmarshal(b, &cp)
	}
	if err != nil || cp.Version != 1 {
		n.log.Warn("ignoring unreadable checkpoint; replaying the ledger", "err", err)
		return nil
	}
	return &cp
}

// restore makes cp the committed and the latest state.
func (s *State) restore(cp *checkpointFile) {
	v := newVersion()
	v.seqno = cp.Applied
	for _, m := range cp.Maps {
		mp := map[string][]byte{}
		for _, kv := range m.Entries {
			mp[string(kv.K)] = kv.V
		}
		v.maps[m.Name] = mp
	}
	if cp.Collections != nil {
		v.collections = cp.Collections
	}
	s.reset(v)
}
