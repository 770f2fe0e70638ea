package node

import (
	"sort"
	"strings"
	"sync"

	"github.com/ledgerd/ledgerd/internal/consensus"
	"github.com/ledgerd/ledgerd/internal/ledger"
	"github.com/ledgerd/ledgerd/internal/tables"
)

// State is the service's key-value state, as CCF's KV store keeps it: the
// writes of every transaction to maps other than the user entries map
// (users, members, nodes, constitution...) and the query index of user
// entries (per collection: latest entry and count). Its size is bounded by
// the number of users and collections, not by the ledger's length.
//
// It has two versions. The head is the node's latest executed state: every
// transaction this node has sequenced (as primary) or appended (as
// follower), committed or not; reads see it, as CCF's endpoints run against
// the latest state. The base is the committed state, which the checkpoint
// saves. Between them, deltas holds the write set of each executed but
// uncommitted transaction, in seqno order: commit folds them into the base,
// and a Raft truncation drops those above the truncation point and rebuilds
// the head from the base and the deltas that remain (CCF's rollback).
type State struct {
	mu     sync.RWMutex
	base   stateVersion
	head   stateVersion
	deltas []delta
}

// stateVersion is one version of the state. Values are never changed in
// place, so both versions may share them.
type stateVersion struct {
	seqno       uint64
	maps        map[string]map[string][]byte
	collections map[string]Collection
	// rekeys are the rekey transactions up to seqno, in seqno order: which
	// ledger secret encrypts which seqno (see tables.Keyring). Never
	// changed in place: apply replaces the slice.
	rekeys []tables.Rekey
}

// delta is the write set of one executed, uncommitted transaction.
type delta struct {
	id     TxID
	writes []ledger.MapWrites
}

// Collection is the query index of one collection.
type Collection struct {
	Latest TxID   `json:"latest"`
	Count  uint64 `json:"count"`
}

func newVersion() stateVersion {
	return stateVersion{maps: map[string]map[string][]byte{}, collections: map[string]Collection{}}
}

func newState() *State { return &State{base: newVersion(), head: newVersion()} }

// Get returns the latest value of key in map name.
func (s *State) Get(name string, key []byte) ([]byte, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	v, ok := s.head.maps[name][string(key)]
	return v, ok
}

// GetCommitted returns the committed value of key in map name: what no
// rollback can undo (governance authenticates members against it).
func (s *State) GetCommitted(name string, key []byte) ([]byte, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	v, ok := s.base.maps[name][string(key)]
	return v, ok
}

// Range calls fn for each key of map name in key order, in the latest state.
func (s *State) Range(name string, fn func(key, value []byte) bool) {
	s.mu.RLock()
	m := s.head.maps[name]
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	vals := make([][]byte, len(keys))
	sort.Strings(keys)
	for i, k := range keys {
		vals[i] = m[k]
	}
	s.mu.RUnlock()
	for i, k := range keys {
		if !fn([]byte(k), vals[i]) {
			return
		}
	}
}

// Applied is the seqno of the last executed transaction: the latest state
// includes every transaction up to it.
func (s *State) Applied() uint64 {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.head.seqno
}

// Collections returns the ids of all collections with entries in the latest
// state, sorted.
func (s *State) Collections() []string {
	s.mu.RLock()
	defer s.mu.RUnlock()
	ids := make([]string, 0, len(s.head.collections))
	for id := range s.head.collections {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	return ids
}

// Collection returns the index of one collection in the latest state.
func (s *State) Collection(id string) (Collection, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	c, ok := s.head.collections[id]
	return c, ok
}

// NumCollections returns the number of collections in the latest state.
func (s *State) NumCollections() int {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return len(s.head.collections)
}

// latest returns the index of a collection in the latest state and, when
// its latest entry is not committed yet (so possibly not in the ledger),
// that entry's contents.
func (s *State) latest(id string) (c Collection, contents []byte, tags []string, speculative, ok bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if c, ok = s.head.collections[id]; !ok || c.Latest.Seqno <= s.base.seqno {
		return c, nil, nil, false, ok
	}
	i := sort.Search(len(s.deltas), func(i int) bool { return s.deltas[i].id.Seqno >= c.Latest.Seqno })
	if i == len(s.deltas) || s.deltas[i].id.Seqno != c.Latest.Seqno {
		return c, nil, nil, false, ok // cannot happen: every executed write has its delta
	}
	for _, m := range s.deltas[i].writes {
		if m.Name != tables.EntriesMap && m.Name != tables.EntryTagsMap {
			continue
		}
		for _, w := range m.Writes {
			if string(w.Key) != id {
				continue
			}
			if m.Name == tables.EntriesMap {
				contents = w.Value
			} else {
				tags = splitTags(w.Value)
			}
		}
	}
	return c, contents, tags, true, true
}

// splitTags splits an EntryTagsMap value into its tags.
func splitTags(v []byte) []string {
	if len(v) == 0 {
		return nil
	}
	return strings.Split(string(v), ",")
}

// tagIndexKey is the TagIndexMap key of a collection's tag.
func tagIndexKey(collection, tag string) []byte {
	return []byte(collection + "\x00" + tag)
}

// CollectionTags returns the tags the entries of a collection carry, in
// the latest state, sorted; nil if none.
func (s *State) CollectionTags(collection string) []string {
	s.mu.RLock()
	defer s.mu.RUnlock()
	prefix := collection + "\x00"
	var tags []string
	for k := range s.head.maps[tables.TagIndexMap] {
		if tag, ok := strings.CutPrefix(k, prefix); ok {
			tags = append(tags, tag)
		}
	}
	sort.Strings(tags)
	return tags
}

// HasCollectionTags reports whether each of tags is already carried by an
// entry of the collection, in the latest state.
func (s *State) HasCollectionTags(collection string, tags []string) bool {
	s.mu.RLock()
	defer s.mu.RUnlock()
	idx := s.head.maps[tables.TagIndexMap]
	for _, t := range tags {
		if _, ok := idx[string(tagIndexKey(collection, t))]; !ok {
			return false
		}
	}
	return true
}

// rekeys returns the rekeys of the latest executed state, in seqno order.
// The slice is never changed in place.
func (s *State) rekeys() []tables.Rekey {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.head.rekeys
}

// execute applies the write sets of transactions first, first+1, ... in
// view to the latest state (CCF: the transaction is executed locally). A
// transaction at or below the latest executed seqno is ignored: it was
// executed already (when it was sequenced on this node).
func (s *State) execute(view, first uint64, writes ...[]ledger.MapWrites) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i, w := range writes {
		id := TxID{View: view, Seqno: first + uint64(i)}
		if id.Seqno <= s.head.seqno {
			continue
		}
		s.head.apply(id, w)
		if len(w) > 0 {
			s.deltas = append(s.deltas, delta{id: id, writes: w})
		}
	}
}

// commit folds the deltas up to seqno into the committed state and returns
// how many transactions that commits.
func (s *State) commit(seqno uint64) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if seqno <= s.base.seqno {
		return 0
	}
	k := 0
	for ; k < len(s.deltas) && s.deltas[k].id.Seqno <= seqno; k++ {
		s.base.apply(s.deltas[k].id, s.deltas[k].writes)
	}
	clear(s.deltas[:k])
	s.deltas = s.deltas[k:]
	n := int(seqno - s.base.seqno)
	s.base.seqno = seqno
	return n
}

// rollback drops the executed transactions after seqno (a Raft truncation):
// the latest state becomes the committed state with the deltas up to seqno.
// Rolling back to at or below the committed state is a no-op beyond that
// point: committed transactions are never rolled back.
func (s *State) rollback(seqno uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if seqno >= s.head.seqno {
		return
	}
	k := len(s.deltas)
	for k > 0 && s.deltas[k-1].id.Seqno > seqno {
		k--
	}
	clear(s.deltas[k:])
	s.deltas = s.deltas[:k]
	s.head = s.base.clone()
	for _, d := range s.deltas {
		s.head.apply(d.id, d.writes)
	}
	s.head.seqno = max(seqno, s.base.seqno)
}

// addPrevious adds the private writes of a previous service's committed
// transactions, executed public-only until their secrets were recovered
// (disaster.go), to the committed and the latest state.
func (s *State) addPrevious(txs []delta) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, v := range []*stateVersion{&s.base, &s.head} {
		seqno := v.seqno
		for _, d := range txs {
			v.apply(d.id, d.writes)
		}
		v.seqno = seqno
	}
}

// reset makes the committed state the given one, with nothing executed
// beyond it (recovery, from a checkpoint).
func (s *State) reset(base stateVersion) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.base, s.head, s.deltas = base, base.clone(), nil
}

func (v *stateVersion) clone() stateVersion {
	c := stateVersion{seqno: v.seqno, maps: make(map[string]map[string][]byte, len(v.maps)), collections: make(map[string]Collection, len(v.collections)), rekeys: v.rekeys}
	for name, m := range v.maps {
		cm := make(map[string][]byte, len(m))
		for k, val := range m {
			cm[k] = val
		}
		c.maps[name] = cm
	}
	for id, col := range v.collections {
		c.collections[id] = col
	}
	return c
}

// apply records a transaction's writes. Internal tables (signatures, Raft
// conf changes) are not kept: they are read from the ledger when needed.
func (v *stateVersion) apply(id TxID, writes []ledger.MapWrites) {
	for _, m := range writes {
		switch m.Name {
		case tables.SignaturesMap, consensus.ConfChangeMap, tables.EntryClaimsMap:
		case tables.EntryTagsMap:
			for _, w := range m.Writes {
				var idx ledger.MapWrites
				idx.Name = tables.TagIndexMap
				for _, tag := range splitTags(w.Value) {
					idx.Writes = append(idx.Writes, ledger.KV{Key: tagIndexKey(string(w.Key), tag)})
				}
				v.applyMap(idx)
			}
		case tables.EncryptedLedgerSecretsMap:
			if value, ok := tables.RekeyOf([]ledger.MapWrites{m}); ok {
				r := tables.Rekey{Seqno: id.Seqno, Value: append([]byte(nil), value...)}
				v.rekeys = append(v.rekeys[:len(v.rekeys):len(v.rekeys)], r)
			}
			v.applyMap(m)
		case tables.EntriesMap:
			for _, w := range m.Writes {
				c := v.collections[string(w.Key)]
				if id.Seqno > c.Latest.Seqno {
					c.Latest = id
				}
				c.Count++
				v.collections[string(w.Key)] = c
			}
		default:
			v.applyMap(m)
		}
	}
	v.seqno = id.Seqno
}

func (v *stateVersion) applyMap(m ledger.MapWrites) {
	mp := v.maps[m.Name]
	if mp == nil {
		mp = map[string][]byte{}
		v.maps[m.Name] = mp
	}
	for _, w := range m.Writes {
		mp[string(w.Key)] = append([]byte(nil), w.Value...)
	}
	for _, k := range m.Removes {
		delete(mp, string(k))
	}
}
