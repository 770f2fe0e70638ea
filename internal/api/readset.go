package api

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"io"
)

// readSet is a stateView that records what a run read of the state under
// it, so that the run's writes can later be applied to a newer state
// without running the code again, when that state holds the same values
// at every place the run read (optimistic concurrency: CCF's KV likewise
// commits a transaction whose read set nothing has changed since). A run
// depends on the state only through these reads, so its result and writes
// are those a run against the newer state would give.
//
// Reads are recorded by value (values are never changed in place, so
// recording shares them): Get the key's value or its absence, Range a
// digest of the whole table (every entry, even past the point where the
// run stopped iterating). A second read of the same place that sees
// something else (the state moved during the run) marks the set torn,
// and a torn set never validates. Not safe for concurrent use: a run reads
// from one goroutine at a time.
type readSet struct {
	st     stateView
	keys   map[tableKey]readValue
	tables map[string][32]byte
	torn   bool
}

type tableKey struct{ table, key string }

type readValue struct {
	value []byte
	ok    bool
}

func newReadSet(st stateView) *readSet {
	return &readSet{st: st, keys: map[tableKey]readValue{}, tables: map[string][32]byte{}}
}

// Get implements stateView, recording the read.
func (r *readSet) Get(table string, key []byte) ([]byte, bool) {
	v, ok := r.st.Get(table, key)
	k := tableKey{table, string(key)}
	if prev, seen := r.keys[k]; seen {
		if prev.ok != ok || !bytes.Equal(prev.value, v) {
			r.torn = true
		}
	} else {
		r.keys[k] = readValue{v, ok}
	}
	return v, ok
}

// Range implements stateView, recording the digest of the whole table.
func (r *readSet) Range(table string, fn func(k, v []byte) bool) {
	h := sha256.New()
	more := true
	r.st.Range(table, func(k, v []byte) bool {
		tableDigestEntry(h, k, v)
		if more {
			more = fn(k, v)
		}
		return true
	})
	var d [32]byte
	h.Sum(d[:0])
	if prev, seen := r.tables[table]; seen {
		if prev != d {
			r.torn = true
		}
	} else {
		r.tables[table] = d
	}
}

// unchanged reports whether st holds what the run read at every place it
// read.
func (r *readSet) unchanged(st stateView) bool {
	if r.torn {
		return false
	}
	for k, was := range r.keys {
		v, ok := st.Get(k.table, []byte(k.key))
		if ok != was.ok || !bytes.Equal(v, was.value) {
			return false
		}
	}
	for table, was := range r.tables {
		h := sha256.New()
		st.Range(table, func(k, v []byte) bool { tableDigestEntry(h, k, v); return true })
		var d [32]byte
		if h.Sum(d[:0]); d != was {
			return false
		}
	}
	return true
}

// tableDigestEntry adds one entry to a table's digest (lengths first, so
// that entries cannot run into each other).
func tableDigestEntry(h io.Writer, k, v []byte) {
	var n [16]byte
	binary.BigEndian.PutUint64(n[:8], uint64(len(k)))
	binary.BigEndian.PutUint64(n[8:], uint64(len(v)))
	h.Write(n[:])
	h.Write(k)
	h.Write(v)
}
