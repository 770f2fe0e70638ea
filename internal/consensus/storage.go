package consensus

import (
	"errors"
	"fmt"
	"sync"

	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"

	"github.com/ledgerd/ledgerd/internal/ledger"
	"github.com/ledgerd/ledgerd/internal/tables"
)

// ConfChangeMap is tables.ConfChangeMap, the map in which a Raft
// configuration change is recorded in the ledger. Its single key is
// tables.SingletonKey; the value is one byte of raftpb.EntryType followed by
// the Raft entry data.
const ConfChangeMap = tables.ConfChangeMap

// Log is what Storage needs of the ledger. *ledger.Ledger implements it.
type Log interface {
	LastSeqno() uint64
	Read(seqno uint64) ([]byte, error)
	View(seqno uint64) (uint64, error)
}

// Storage is a raft.Storage whose log is the CCF ledger.
//
// Contract: the caller (the Ready loop) appends entries to the ledger and
// syncs it before calling raft's Advance, and saves hard state through
// SetHardState; Storage itself never writes the ledger. Entries are never
// compacted: FirstIndex is 1 and Snapshot is empty, unless the node started
// from (or installed) a CCF snapshot at S (SetSnapshot): its log then starts
// at S+1 and Term(S) is the snapshot's view. Snapshot answers what the
// source given to SetSnapshotSource answers: the node's latest committed
// CCF snapshot, as a small descriptor (see node.ReportSnapshot).
type Storage struct {
	log Log
	hs  *HardStateFile

	mu sync.RWMutex
	st State

	// snapIndex and snapTerm: the CCF snapshot the log starts after (0: none).
	snapIndex, snapTerm uint64
	// source makes the raftpb.Snapshot a follower is sent (nil: none).
	source func() (raftpb.Snapshot, error)
	// verbatim: entries up to it are sent as their ledger bytes
	// (SetVerbatimUpTo).
	verbatim uint64

	// recent caches the Raft entries of the last appends, so that Raft's
	// reads of freshly committed entries (and of entries to replicate) do
	// not go back to disk. recent[i] has index recentBase+i.
	cmu        sync.RWMutex
	recent     []raftpb.Entry
	recentBase uint64
}

// recentLimit bounds the entries cached by Storage.
const recentLimit = 1 << 14

var _ raft.Storage = (*Storage)(nil)

// NewStorage returns a Storage over log with the hard state kept in hs.
func NewStorage(log Log, hs *HardStateFile) *Storage {
	return &Storage{log: log, hs: hs, st: hs.State()}
}

// SetSnapshot makes the log start after the snapshot at index (term):
// FirstIndex is index+1, Term(index) is term, Entries below index+1 are
// compacted. Call it before the Raft node is built, or, installing a
// snapshot Raft received, before Raft's Advance (the ledger then starts at
// index+1; cached entries are dropped).
func (s *Storage) SetSnapshot(index, term uint64) {
	s.mu.Lock()
	s.snapIndex, s.snapTerm = index, term
	s.mu.Unlock()
	s.Forget(0)
}

// SetSnapshotSource sets what Snapshot answers once the log starts after a
// snapshot: f returns the snapshot to send a follower that needs entries
// before FirstIndex (its Metadata.Index must be at least FirstIndex-1).
func (s *Storage) SetSnapshotSource(f func() (raftpb.Snapshot, error)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.source = f
}

func (s *Storage) snapshot() (uint64, uint64) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.snapIndex, s.snapTerm
}

// InitialState implements raft.Storage.
func (s *Storage) InitialState() (raftpb.HardState, raftpb.ConfState, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.st.Hard, s.st.Conf, nil
}

// SetHardState records hs; it is made durable when sync is true (a change of
// term or vote must be durable before any message is sent; a commit index
// need not be, since it is recoverable from a quorum).
func (s *Storage) SetHardState(hs raftpb.HardState, sync bool) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.st.Hard = hs
	return s.hs.Save(s.st, sync)
}

// SetConfState records the configuration after a conf change was applied
// at index; it is always made durable.
func (s *Storage) SetConfState(cs raftpb.ConfState, index uint64) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.st.Conf = cs
	s.st.ConfIndex = index
	return s.hs.Save(s.st, true)
}

// SetVerbatimUpTo makes Entries answer the entries up to end as normal
// entries holding their ledger bytes, conf changes included: the previous
// service's part of a recovered ledger (node/disaster.go), which a follower
// stores as it is (it cannot serialise a conf change of that part again: its
// ledger secret is the previous service's) and never applies as a
// configuration (the recovered service's starts after end).
func (s *Storage) SetVerbatimUpTo(end uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.verbatim = end
}

// State returns the last saved state.
func (s *Storage) State() State {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.st
}

// Cache records entries just appended to the ledger (contiguous, following
// the cached ones unless they replace a suffix) so that Entries can serve
// them from memory. Their Data must not be modified afterwards.
func (s *Storage) Cache(ents []raftpb.Entry) {
	if len(ents) == 0 {
		return
	}
	s.cmu.Lock()
	defer s.cmu.Unlock()
	first := ents[0].Index
	switch {
	case len(s.recent) == 0 || first < s.recentBase || first > s.recentBase+uint64(len(s.recent)):
		s.recent, s.recentBase = s.recent[:0], first
	default:
		s.recent = s.recent[:first-s.recentBase]
	}
	s.recent = append(s.recent, ents...)
	if n := len(s.recent); n > recentLimit {
		drop := n - recentLimit/2
		s.recent = append(s.recent[:0], s.recent[drop:]...)
		s.recentBase += uint64(drop)
	}
}

// Forget drops cached entries after last (the ledger was truncated).
func (s *Storage) Forget(last uint64) {
	s.cmu.Lock()
	defer s.cmu.Unlock()
	switch {
	case last < s.recentBase:
		s.recent = s.recent[:0]
	case last-s.recentBase < uint64(len(s.recent)):
		s.recent = s.recent[:last-s.recentBase+1]
	}
}

// cached returns entries [lo, hi) from the cache, if it holds all of them.
func (s *Storage) cached(lo, hi, maxSize uint64) ([]raftpb.Entry, bool) {
	s.cmu.RLock()
	defer s.cmu.RUnlock()
	if lo < s.recentBase || hi > s.recentBase+uint64(len(s.recent)) {
		return nil, false
	}
	src := s.recent[lo-s.recentBase : hi-s.recentBase]
	var size uint64
	n := 0
	for n < len(src) {
		size += uint64(src[n].Size())
		if n > 0 && size > maxSize {
			break
		}
		n++
	}
	out := make([]raftpb.Entry, n)
	copy(out, src[:n])
	return out, true
}

// Entries implements raft.Storage by reading ledger entries [lo, hi).
func (s *Storage) Entries(lo, hi, maxSize uint64) ([]raftpb.Entry, error) {
	si, _ := s.snapshot()
	last := max(s.log.LastSeqno(), si)
	if lo < si+1 || lo < 1 {
		return nil, raft.ErrCompacted
	}
	if hi > last+1 {
		return nil, raft.ErrUnavailable
	}
	if ents, ok := s.cached(lo, hi, maxSize); ok {
		return ents, nil
	}
	ents := make([]raftpb.Entry, 0, min(hi-lo, 1024))
	var size uint64
	s.mu.RLock()
	verbatim := s.verbatim
	s.mu.RUnlock()
	for i := lo; i < hi; i++ {
		raw, err := s.log.Read(i)
		if err != nil {
			return nil, fmt.Errorf("consensus: couldn't read entry %d: %w", i, err)
		}
		var e raftpb.Entry
		if i <= verbatim {
			var v uint64
			if _, v, err = ledger.EntrySeqnoView(raw); err == nil {
				e = raftpb.Entry{Index: i, Term: v, Type: raftpb.EntryNormal, Data: raw}
			}
		} else {
			e, err = DecodeEntry(raw)
		}
		if err != nil {
			return nil, fmt.Errorf("consensus: couldn't decode entry %d: %w", i, err)
		}
		size += uint64(e.Size())
		if len(ents) > 0 && size > maxSize {
			break
		}
		ents = append(ents, e)
	}
	return ents, nil
}

// Term implements raft.Storage: the view of the ledger entry at i.
func (s *Storage) Term(i uint64) (uint64, error) {
	si, st := s.snapshot()
	switch {
	case i == si:
		return st, nil
	case i < si:
		return 0, raft.ErrCompacted
	}
	if i == 0 {
		return 0, nil
	}
	if i > s.log.LastSeqno() {
		return 0, raft.ErrUnavailable
	}
	return s.log.View(i)
}

// LastIndex implements raft.Storage.
func (s *Storage) LastIndex() (uint64, error) {
	si, _ := s.snapshot()
	return max(s.log.LastSeqno(), si), nil
}

// FirstIndex implements raft.Storage: 1, or the entry after the snapshot
// the node started from.
func (s *Storage) FirstIndex() (uint64, error) {
	si, _ := s.snapshot()
	return si + 1, nil
}

// Snapshot implements raft.Storage: empty while the log starts at 1; else
// the source's snapshot (SetSnapshotSource), which Raft sends to a follower
// that needs entries before FirstIndex. Without a source, or if it fails,
// ErrSnapshotTemporarilyUnavailable: Raft tries again later.
func (s *Storage) Snapshot() (raftpb.Snapshot, error) {
	s.mu.RLock()
	si, src := s.snapIndex, s.source
	s.mu.RUnlock()
	if si == 0 {
		return raftpb.Snapshot{}, nil
	}
	if src == nil {
		return raftpb.Snapshot{}, raft.ErrSnapshotTemporarilyUnavailable
	}
	snap, err := src()
	if err != nil || snap.Metadata.Index < si {
		return raftpb.Snapshot{}, raft.ErrSnapshotTemporarilyUnavailable
	}
	return snap, nil
}

// DecodeEntry turns a serialised CCF ledger entry back into the Raft entry it
// was written for: configuration changes get their type and data back; every
// other entry carries the CCF bytes as data.
func DecodeEntry(raw []byte) (raftpb.Entry, error) {
	e, err := ledger.ParseEntry(raw)
	if err != nil {
		return raftpb.Entry{}, err
	}
	ent := raftpb.Entry{Index: e.Seqno, Term: e.View, Type: raftpb.EntryNormal, Data: raw}
	if !HasPublicMaps(e) {
		return ent, nil
	}
	d, err := e.PublicDomain()
	if err != nil {
		return raftpb.Entry{}, err
	}
	for _, m := range d.Maps {
		if m.Name != ConfChangeMap {
			continue
		}
		if len(m.Writes) != 1 || len(m.Writes[0].Value) < 1 {
			return raftpb.Entry{}, errors.New("malformed conf change record")
		}
		v := m.Writes[0].Value
		ent.Type = raftpb.EntryType(v[0])
		ent.Data = v[1:]
	}
	return ent, nil
}

// ConfChangeWrites is the write set that records Raft entry ent (a conf
// change) in the ledger.
func ConfChangeWrites(ent raftpb.Entry) []ledger.MapWrites {
	v := make([]byte, 1+len(ent.Data))
	v[0] = byte(ent.Type)
	copy(v[1:], ent.Data)
	return []ledger.MapWrites{{Name: ConfChangeMap, Writes: []ledger.KV{{Key: tables.SingletonKey, Value: v}}}}
}

// HasPublicMaps is e.HasPublicMaps: whether the public domain of an entry
// of type 4 holds any map, without parsing it.
func HasPublicMaps(e *ledger.Entry) bool { return e.HasPublicMaps() }
