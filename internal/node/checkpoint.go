package node

import (
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"

	"github.com/ledgerd/ledgerd/internal/durable"
	"github.com/ledgerd/ledgerd/internal/tables"
)

// checkpointFile is the state snapshot written every SnapshotInterval: the
// applied state and query index, and the sizes of the derived files that
// were fsynced before it was written. It bounds the ledger suffix that
// start-up replays. It is authenticated on load (an HMAC keyed from the
// ledger secret, see checkpointEnvelope) and verified against the ledger
// (the applied seqno's view and Merkle leaf must match), and ignored if
// either fails.
type checkpointFile struct {
	Version     int                   `json:"version"`
	Applied     uint64                `json:"applied"`
	AppliedView uint64                `json:"appliedView"`
	AppliedLeaf string                `json:"appliedLeaf"`
	TreeSize    uint64                `json:"treeSize"`
	Maps        []checkpointMap       `json:"maps"`
	Collections map[string]Collection `json:"collections"`
	// Rekeys are the rekey transactions up to Applied (public data: each
	// holds its secret wrapped, see tables.Keyring).
	Rekeys []tables.Rekey `json:"rekeys,omitempty"`
	// PreviousPublicOnly: a recovered service's state before the previous
	// service's secrets were recovered (its private domain not executed).
	PreviousPublicOnly bool `json:"previousPublicOnly,omitempty"`
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
	b, err := sealCheckpoint(n.cfg.Identities.LedgerSecret, cp)
	if err != nil {
		return err
	}
	if err := durable.WriteFileFS(n.cfg.FS, n.checkpointPath(), b, 0o600); err != nil {
		return fmt.Errorf("couldn't write checkpoint: %w", err)
	}
	n.sinceSnap, n.bytesSinceSnap = 0, 0
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
	if n.startup != nil && s.seqno == n.startup.Seqno { // its state is the startup snapshot's
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
		TreeSize: n.tree.Size(), Collections: s.collections, Rekeys: s.rekeys,
	}
	if end, recovered := n.keys.Previous(); end > 0 && !recovered {
		cp.PreviousPublicOnly = true
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
	b, err := durable.ReadFile(n.cfg.FS, n.checkpointPath())
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	var cp *checkpointFile
	if err == nil {
		cp, err = openCheckpoint(n.cfg.Identities.LedgerSecret, b)
	}
	if err != nil {
		n.log.Warn("ignoring the checkpoint; replaying the ledger", "path", n.checkpointPath(), "err", err)
		return nil
	}
	return cp
}

// The checkpoint file is an envelope: the checkpoint's JSON and its
// HMAC-SHA256 under a key derived from the ledger secret (HKDF-SHA256,
// info "ledgerd checkpoint"). Only a holder of the ledger secret can write
// a checkpoint the node will load: an edited one (a role granted, an index
// pointed elsewhere) is ignored and the state replayed from the ledger.
type checkpointEnvelope struct {
	Version    int             `json:"version"`
	HMAC       string          `json:"hmac"`
	Checkpoint json.RawMessage `json:"checkpoint"`
}

const checkpointVersion = 2

// errCheckpointMAC reports a checkpoint whose MAC does not verify.
var errCheckpointMAC = errors.New("checkpoint fails its MAC (edited, corrupt, or written with another ledger secret)")

func checkpointMAC(secret, body []byte) []byte {
	key, err := hkdf.Key(sha256.New, secret, nil, "ledgerd checkpoint", sha256.Size)
	if err != nil {
		panic(err) // only for an output longer than HKDF allows
	}
	m := hmac.New(sha256.New, key)
	m.Write(body)
	return m.Sum(nil)
}

func sealCheckpoint(secret []byte, cp *checkpointFile) ([]byte, error) {
	body, err := json.Marshal(cp)
	if err != nil {
		return nil, err
	}
	return json.Marshal(checkpointEnvelope{Version: checkpointVersion, HMAC: hex.EncodeToString(checkpointMAC(secret, body)), Checkpoint: body})
}

// openCheckpoint authenticates and parses a checkpoint file.
func openCheckpoint(secret, b []byte) (*checkpointFile, error) {
	var env checkpointEnvelope
	if err := json.Unmarshal(b, &env); err != nil {
		return nil, fmt.Errorf("unreadable checkpoint: %w", err)
	}
	if env.Version != checkpointVersion {
		return nil, fmt.Errorf("checkpoint format version %d, want %d", env.Version, checkpointVersion)
	}
	mac, err := hex.DecodeString(env.HMAC)
	if err != nil || !hmac.Equal(mac, checkpointMAC(secret, env.Checkpoint)) {
		return nil, errCheckpointMAC
	}
	var cp checkpointFile
	if err := json.Unmarshal(env.Checkpoint, &cp); err != nil {
		return nil, fmt.Errorf("unreadable checkpoint: %w", err)
	}
	if cp.Version != 1 {
		return nil, fmt.Errorf("checkpoint contents version %d, want 1", cp.Version)
	}
	return &cp, nil
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
	v.rekeys = cp.Rekeys
	s.reset(v)
}
