package api

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"io"
	"sync"
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
//
// Recording costs no allocation once the set is warm: the keys read are
// copied into one byte arena, the reads kept in a slice searched in order
// while it is short (index, a map, is built only for runs that read more
// than smallReads keys), and sets are reused through getReadSet and
// putReadSet. So a hook run that writes nothing, whose reads are never
// validated, pays for the recording with no garbage.
type readSet struct {
	st     stateView
	reads  []keyRead
	arena  []byte // the keys of reads
	index  map[tableKey]int
	tables []tableRead
	torn   bool
}

type keyRead struct {
	table string
	key   []byte // in arena
	value []byte
	ok    bool
}

type tableRead struct {
	table  string
	digest [32]byte
}

type tableKey struct{ table, key string }

// smallReads is how many keys a set searches in order before it indexes
// them.
const smallReads = 8

// maxPooledArena is the largest key arena kept for reuse.
const maxPooledArena = 64 << 10

func newReadSet(st stateView) *readSet { return &readSet{st: st} }

var readSets = sync.Pool{New: func() any { return new(readSet) }}

// getReadSet is a set over st, reused; putReadSet gives it back once
// nothing uses it (its validation done or never to be done).
func getReadSet(st stateView) *readSet {
	r := readSets.Get().(*readSet)
	r.st = st
	return r
}

func putReadSet(r *readSet) {
	r.reset()
	readSets.Put(r)
}

// reset empties the set, keeping its slices' room (not a large arena).
func (r *readSet) reset() {
	clear(r.reads) // drops the values read
	clear(r.tables)
	*r = readSet{reads: r.reads[:0], arena: r.arena[:0], tables: r.tables[:0]}
	if cap(r.arena) > maxPooledArena {
		r.arena = nil
	}
}

// find is the index of the read of key in table, or -1.
func (r *readSet) find(table string, key []byte) int {
	if r.index != nil {
		if i, ok := r.index[tableKey{table, string(key)}]; ok {
			return i
		}
		return -1
	}
	for i := range r.reads {
		if r.reads[i].table == table && bytes.Equal(r.reads[i].key, key) {
			return i
		}
	}
	return -1
}

// Get implements stateView, recording the read.
func (r *readSet) Get(table string, key []byte) ([]byte, bool) {
	v, ok := r.st.Get(table, key)
	if i := r.find(table, key); i >= 0 {
		if prev := r.reads[i]; prev.ok != ok || !bytes.Equal(prev.value, v) {
			r.torn = true
		}
		return v, ok
	}
	// The key is copied: the caller's bytes may change after the read. A
	// slice of the arena stays valid when the arena grows (it keeps the
	// old array).
	r.arena = append(r.arena, key...)
	k := r.arena[len(r.arena)-len(key) : len(r.arena) : len(r.arena)]
	r.reads = append(r.reads, keyRead{table: table, key: k, value: v, ok: ok})
	switch n := len(r.reads); {
	case n == smallReads+1:
		r.index = make(map[tableKey]int, 2*n)
		for i, rd := range r.reads {
			r.index[tableKey{rd.table, string(rd.key)}] = i
		}
	case n > smallReads+1:
		r.index[tableKey{table, string(key)}] = n - 1
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
	for _, t := range r.tables {
		if t.table == table {
			if t.digest != d {
				r.torn = true
			}
			return
		}
	}
	r.tables = append(r.tables, tableRead{table, d})
}

// unchanged reports whether st holds what the run read at every place it
// read.
func (r *readSet) unchanged(st stateView) bool {
	if r.torn {
		return false
	}
	for _, was := range r.reads {
		v, ok := st.Get(was.table, was.key)
		if ok != was.ok || !bytes.Equal(v, was.value) {
			return false
		}
	}
	for _, was := range r.tables {
		h := sha256.New()
		st.Range(was.table, func(k, v []byte) bool { tableDigestEntry(h, k, v); return true })
		var d [32]byte
		if h.Sum(d[:0]); d != was.digest {
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
