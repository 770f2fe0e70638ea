package jsrt

import (
	"sort"
)

// KV is the state a script reads and (through a Tx) writes:
// tables of byte keys and byte values, as CCF's ccf.kv[...] maps.
// Implementations need not be safe for concurrent use; a call uses its KV
// from one goroutine at a time.
type KV interface {
	// Get returns the value of key in table and whether it is present.
	Get(table string, key []byte) ([]byte, bool)
	// Set writes value at key in table.
	Set(table string, key, value []byte)
	// Delete removes key from table (no-op when absent).
	Delete(table string, key []byte)
	// ForEach calls fn for every entry of table until fn returns false.
	// The order is the implementation's; the sandbox sorts by key before
	// handing entries to JavaScript, so that forEach is deterministic.
	ForEach(table string, fn func(key, value []byte) bool)
}

// MemKV is a KV held in memory: table -> key -> value. The zero value is
// not usable; make one with NewMemKV.
type MemKV map[string]map[string][]byte

// NewMemKV returns an empty MemKV.
func NewMemKV() MemKV { return MemKV{} }

// Get implements KV.
func (m MemKV) Get(table string, key []byte) ([]byte, bool) {
	v, ok := m[table][string(key)]
	return v, ok
}

// Set implements KV.
func (m MemKV) Set(table string, key, value []byte) {
	t := m[table]
	if t == nil {
		t = map[string][]byte{}
		m[table] = t
	}
	t[string(key)] = append([]byte(nil), value...)
}

// Delete implements KV.
func (m MemKV) Delete(table string, key []byte) {
	delete(m[table], string(key))
	if len(m[table]) == 0 {
		delete(m, table)
	}
}

// ForEach implements KV, in ascending key order.
func (m MemKV) ForEach(table string, fn func(key, value []byte) bool) {
	t := m[table]
	keys := make([]string, 0, len(t))
	for k := range t {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if !fn([]byte(k), t[k]) {
			return
		}
	}
}

// Write is one buffered write of a Tx: a Set, or a Delete when Deleted.
type Write struct {
	Table   string
	Key     []byte
	Value   []byte
	Deleted bool
}

// Tx buffers writes over a base KV: reads see the base overlaid with the
// writes made so far; nothing reaches the base until Commit. A call runs
// in its own Tx, whose writes are kept only when the call succeeds, so
// that a failing call leaves its KV untouched.
type Tx struct {
	base   KV
	writes map[string]map[string]*[]byte // nil value: deleted
}

// NewTx returns a transaction over base.
func NewTx(base KV) *Tx {
	return &Tx{base: base, writes: map[string]map[string]*[]byte{}}
}

// Get implements KV.
func (t *Tx) Get(table string, key []byte) ([]byte, bool) {
	if w, ok := t.writes[table][string(key)]; ok {
		if w == nil {
			return nil, false
		}
		return *w, true
	}
	return t.base.Get(table, key)
}

// Set implements KV.
func (t *Tx) Set(table string, key, value []byte) {
	v := append([]byte(nil), value...)
	t.table(table)[string(key)] = &v
}

// Delete implements KV.
func (t *Tx) Delete(table string, key []byte) {
	t.table(table)[string(key)] = nil
}

func (t *Tx) table(name string) map[string]*[]byte {
	w := t.writes[name]
	if w == nil {
		w = map[string]*[]byte{}
		t.writes[name] = w
	}
	return w
}

// ForEach implements KV: the base's entries overlaid with the writes, in
// ascending key order, over a snapshot taken before the first call to fn
// (so fn may write to the table it iterates).
func (t *Tx) ForEach(table string, fn func(key, value []byte) bool) {
	merged := map[string][]byte{}
	t.base.ForEach(table, func(k, v []byte) bool {
		merged[string(k)] = v
		return true
	})
	for k, w := range t.writes[table] {
		if w == nil {
			delete(merged, k)
		} else {
			merged[k] = *w
		}
	}
	keys := make([]string, 0, len(merged))
	for k := range merged {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if !fn([]byte(k), merged[k]) {
			return
		}
	}
}

// Writes returns the buffered writes ordered by table, then key.
func (t *Tx) Writes() []Write {
	var out []Write
	tables := make([]string, 0, len(t.writes))
	for name := range t.writes {
		tables = append(tables, name)
	}
	sort.Strings(tables)
	for _, name := range tables {
		keys := make([]string, 0, len(t.writes[name]))
		for k := range t.writes[name] {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			w := Write{Table: name, Key: []byte(k)}
			if p := t.writes[name][k]; p == nil {
				w.Deleted = true
			} else {
				w.Value = *p
			}
			out = append(out, w)
		}
	}
	return out
}

// Commit applies the buffered writes to the base KV, in Writes order, and
// empties the buffer.
func (t *Tx) Commit() {
	for _, w := range t.Writes() {
		if w.Deleted {
			t.base.Delete(w.Table, w.Key)
		} else {
			t.base.Set(w.Table, w.Key, w.Value)
		}
	}
	t.writes = map[string]map[string]*[]byte{}
}
