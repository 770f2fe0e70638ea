package api

import (
	"testing"

	"github.com/ledgerd/ledgerd/internal/jsrt"
)

// readSet.unchanged is what lets a writing function's first run stand: it
// must refuse every change to a place the run read (a key's value, a key
// appearing or going, any entry of a table it iterated) and a state that
// moved during the run, and accept changes elsewhere.
func TestReadSetValidation(t *testing.T) {
	base := func() memState {
		st := memState{jsrt.NewMemKV()}
		st.Set("a", []byte("k"), []byte("1"))
		st.Set("b", []byte("x"), []byte("1"))
		st.Set("b", []byte("y"), []byte("2"))
		st.Set("other", []byte("z"), []byte("1"))
		return st
	}
	read := func(st memState) *readSet {
		r := newReadSet(st)
		r.Get("a", []byte("k"))
		r.Get("a", []byte("absent"))
		r.Range("b", func(k, v []byte) bool { return false }) // stops at the first entry
		return r
	}
	cases := []struct {
		name   string
		change func(st memState)
		want   bool
	}{
		{"nothing", func(memState) {}, true},
		{"another table", func(st memState) { st.Set("other", []byte("z"), []byte("2")) }, true},
		{"another key", func(st memState) { st.Set("a", []byte("j"), []byte("1")) }, true},
		{"same value again", func(st memState) { st.Set("a", []byte("k"), []byte("1")) }, true},
		{"a value read", func(st memState) { st.Set("a", []byte("k"), []byte("2")) }, false},
		{"a key read goes", func(st memState) { st.Delete("a", []byte("k")) }, false},
		{"an absent key read appears", func(st memState) { st.Set("a", []byte("absent"), nil) }, false},
		{"an iterated table's later entry", func(st memState) { st.Set("b", []byte("y"), []byte("3")) }, false},
		{"an iterated table grows", func(st memState) { st.Set("b", []byte("w"), []byte("0")) }, false},
	}
	for _, c := range cases {
		st := base()
		r := read(st)
		c.change(st)
		if got := r.unchanged(st); got != c.want {
			t.Errorf("%s: unchanged = %v; want %v", c.name, got, c.want)
		}
	}

	// The state moves during the run: the second read differs, so the run
	// saw no single state and never stands.
	st := base()
	r := newReadSet(st)
	r.Get("a", []byte("k"))
	st.Set("a", []byte("k"), []byte("2"))
	r.Get("a", []byte("k"))
	if r.unchanged(st) {
		t.Error("a torn read set (one key read with two values) validated")
	}
	st = base()
	r = newReadSet(st)
	r.Range("b", func(k, v []byte) bool { return true })
	st.Set("b", []byte("x"), []byte("9"))
	r.Range("b", func(k, v []byte) bool { return true })
	if r.unchanged(st) {
		t.Error("a torn read set (one table iterated twice with different entries) validated")
	}
}

// A set that read more keys than it searches in order (smallReads) indexes
// them and validates the same way; a key's bytes changed by the caller
// after the read do not change what was read; a set given back and taken
// again starts empty.
func TestReadSetManyReadsAndReuse(t *testing.T) {
	st := memState{jsrt.NewMemKV()}
	for i := range 3 * smallReads {
		st.Set("t", []byte{byte(i)}, []byte{byte(i)})
	}
	r := getReadSet(st)
	key := make([]byte, 1)
	for i := range 3 * smallReads {
		key[0] = byte(i) // the same buffer for every read
		r.Get("t", key)
	}
	key[0] = 0
	r.Get("t", key) // again, same value: not torn
	if !r.unchanged(st) {
		t.Fatal("an unchanged state did not validate")
	}
	st.Set("t", []byte{byte(2 * smallReads)}, []byte("changed"))
	if r.unchanged(st) {
		t.Error("a change to the key read after the set was indexed validated")
	}
	r.Get("t", []byte{byte(2 * smallReads)})
	st.Set("t", []byte{byte(2 * smallReads)}, []byte{byte(2 * smallReads)})
	if r.unchanged(st) {
		t.Error("a torn indexed set (a key read with two values) validated")
	}
	putReadSet(r)

	r = getReadSet(st)
	defer putReadSet(r)
	if len(r.reads)+len(r.tables) != 0 || r.index != nil || r.torn {
		t.Fatalf("a reused set is not empty: %d reads, %d tables, index %v, torn %v", len(r.reads), len(r.tables), r.index != nil, r.torn)
	}
	st.Set("t", []byte{0}, []byte("other"))
	if !r.unchanged(st) {
		t.Error("a reused empty set did not validate")
	}
}

// Recording a run's reads allocates nothing once the set is warm (a hook
// that writes nothing pays no garbage for it): the reads of a trivial
// hook's run (its code, a key or two, one again) and their validation.
func TestReadSetRecordsWithoutAllocating(t *testing.T) {
	st := memState{jsrt.NewMemKV()}
	st.Set("code", []byte("check"), []byte("export function main() {}"))
	st.Set("t", []byte("k"), []byte("1"))
	r := newReadSet(st)
	code, k, absent := []byte("check"), []byte("k"), []byte("absent")
	read := func() {
		r.st = st
		r.Get("code", code)
		r.Get("t", k)
		r.Get("t", absent)
		r.Get("t", k)
		if !r.unchanged(st) {
			t.Fatal("an unchanged state did not validate")
		}
		r.reset()
	}
	read() // warm
	if n := testing.AllocsPerRun(100, read); n != 0 {
		t.Errorf("recording 4 reads allocated %v times a run; want 0", n)
	}
}
