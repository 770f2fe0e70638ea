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
