package node

import (
	"sort"
	"sync"
)

// State is the applied state of the service: every committed write to maps
// other than the user entries map (users, members, nodes, constitution...)
// and the query index of user entries (per collection: latest entry and
// count). Its size is bounded by the number of users and collections, not
// by the ledger's length.
type State struct {
	mu          sync.RWMutex
	applied     uint64
	maps        map[string]map[string][]byte
	collections map[string]*Collection
}

// Collection is the query index of one collection.
type Collection struct {
	Latest TxID   `json:"latest"`
	Count  uint64 `json:"count"`
}

func newState() *State {
	return &State{maps: map[string]map[string][]byte{}, collections: map[string]*Collection{}}
}

// Get returns the committed value of key in map name.
func (s *State) Get(name string, key []byte) ([]byte, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	v, ok := s.maps[name][string(key)]
	return v, ok
}

// Range calls fn for each key of map name in key order.
func (s *State) Range(name string, fn func(key, value []byte) bool) {
	s.mu.RLock()
	m := s.maps[name]
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

// Applied is the seqno of the last applied transaction.
func (s *State) Applied() uint64 {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.applied
}

// Collections returns the ids of all collections with committed entries, sorted.
func (s *State) Collections() []string {
	s.mu.RLock()
	defer s.mu.RUnlock()
	ids := make([]string, 0, len(s.collections))
	for id := range s.collections {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	return ids
}

// Collection returns the index of one collection.
func (s *State) Collection(id string) (Collection, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	c, ok := s.collections[id]
	if !ok {
		return Collection{}, false
	}
	return *c, true
}

// NumCollections returns the number of collections.
func (s *State) NumCollections() int {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return len(s.collections)
}
