package tables

import (
	"encoding/hex"
	"encoding/json"
	"fmt"

	"github.com/ledgerd/ledgerd/internal/ledger"
)

// SnapshotEvidenceMap is CCF's public:ccf.internal.snapshot_evidence: the
// digest of the latest snapshot and the seqno of the state it holds,
// written by the primary after it generated the snapshot. The transaction
// that writes it also carries the digest as its claims digest, so that
// its receipt proves the snapshot's bytes (CCF's snapshot evidence).
const SnapshotEvidenceMap = "public:ccf.internal.snapshot_evidence"

// SnapshotHash is the value of SnapshotEvidenceMap (CCF's SnapshotHash):
// the hex SHA-256 of the snapshot and the seqno it was taken at.
type SnapshotHash struct {
	Hash    string `json:"hash"`
	Version uint64 `json:"version"`
}

// SnapshotEvidenceWrites is the write set recording the evidence of the
// snapshot of digest hash taken at seqno version.
func SnapshotEvidenceWrites(hash [32]byte, version uint64) []ledger.MapWrites {
	v, _ := json.Marshal(SnapshotHash{Hash: hex.EncodeToString(hash[:]), Version: version})
	return []ledger.MapWrites{{Name: SnapshotEvidenceMap, Writes: []ledger.KV{{Key: SingletonKey, Value: v}}}}
}

// SnapshotEvidenceOf returns the snapshot evidence a transaction's public
// maps record, if any.
func SnapshotEvidenceOf(maps []ledger.MapWrites) (hash [32]byte, version uint64, ok bool, err error) {
	for _, m := range maps {
		if m.Name != SnapshotEvidenceMap || len(m.Writes) == 0 {
			continue
		}
		var sh SnapshotHash
		if err := json.Unmarshal(m.Writes[len(m.Writes)-1].Value, &sh); err != nil {
			return hash, 0, false, fmt.Errorf("malformed snapshot evidence: %w", err)
		}
		b, err := hex.DecodeString(sh.Hash)
		if err != nil || len(b) != len(hash) {
			return hash, 0, false, fmt.Errorf("malformed snapshot evidence hash %q", sh.Hash)
		}
		copy(hash[:], b)
		return hash, sh.Version, true, nil
	}
	return hash, 0, false, nil
}

// SnapshotTriggerMap (ledgerd's): a transaction that writes it (key
// SingletonKey, value {}) is trigger_snapshot's: every node takes a snapshot
// at the first signature after it, as at the interval's, from the ledger
// alone.
const SnapshotTriggerMap = "public:ledgerd.internal.snapshot_trigger"

// SnapshotTriggerWrites is the write set of trigger_snapshot.
func SnapshotTriggerWrites() []ledger.MapWrites {
	return []ledger.MapWrites{{Name: SnapshotTriggerMap, Writes: []ledger.KV{{Key: SingletonKey, Value: []byte("{}")}}}}
}

// TriggersSnapshot reports whether a write set is trigger_snapshot's.
func TriggersSnapshot(maps []ledger.MapWrites) bool {
	for _, m := range maps {
		if m.Name == SnapshotTriggerMap && len(m.Writes) > 0 {
			return true
		}
	}
	return false
}
