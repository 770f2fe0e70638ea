package node

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/ledgerd/ledgerd/internal/ledger"
	"github.com/ledgerd/ledgerd/internal/tables"
)

// TestStateMatchesReplay runs random executes, commits and rollbacks and
// checks after each that the latest state equals a fresh replay of the
// transactions that stand, and the committed state a replay of those
// committed; and that the latest entry of every collection carries the
// contents last written to it.
func TestStateMatchesReplay(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	s := newState()
	type tx struct {
		id     TxID
		writes []ledger.MapWrites
	}
	var log []tx // executed transactions that stand, in seqno order
	committed := 0
	replay := func(txs []tx) string {
		v := newVersion()
		for _, x := range txs {
			v.apply(x.id, x.writes)
		}
		return v.dump()
	}
	view := uint64(1)
	for step := range 600 {
		switch op := rng.IntN(10); {
		case op < 7: // execute a batch
			k := 1 + rng.IntN(4)
			first := s.Applied() + 1
			batch := make([][]ledger.MapWrites, k)
			for i := range batch {
				var w []ledger.MapWrites
				switch rng.IntN(4) {
				case 0: // a signature: nothing for the state
				case 1:
					w = []ledger.MapWrites{{Name: tables.UsersMap, Writes: []ledger.KV{{Key: []byte(fmt.Sprint("u", rng.IntN(5))), Value: []byte(fmt.Sprint(step))}}}}
				case 2:
					w = []ledger.MapWrites{{Name: tables.UsersMap, Removes: [][]byte{[]byte(fmt.Sprint("u", rng.IntN(5)))}}}
				default:
					w = []ledger.MapWrites{{Name: tables.EntriesMap, Writes: []ledger.KV{{Key: []byte(fmt.Sprint("c", rng.IntN(6))), Value: []byte(fmt.Sprint("v", step, i))}}}}
				}
				batch[i] = w
				log = append(log, tx{TxID{View: view, Seqno: first + uint64(i)}, w})
			}
			s.execute(view, first, batch...)
		case op < 9: // commit up to a random executed seqno
			if len(log) > committed {
				committed += rng.IntN(len(log) - committed + 1)
				if committed > 0 {
					s.commit(log[committed-1].id.Seqno)
				}
			}
		default: // roll back to a random point at or above the commit point
			keep := committed + rng.IntN(len(log)-committed+1)
			last := uint64(0)
			if keep > 0 {
				last = log[keep-1].id.Seqno
			}
			if committed > 0 && last < log[committed-1].id.Seqno {
				last = log[committed-1].id.Seqno
			}
			log = log[:keep]
			s.rollback(last)
			view++ // a new primary's view
		}
		if got, want := s.head.dump(), replay(log); got != want && len(log) > 0 {
			t.Fatalf("step %d: latest state\n%s\nwant replay\n%s", step, got, want)
		}
		base := s.base.dump()
		if want := replay(log[:committed]); committed > 0 && base != want {
			t.Fatalf("step %d: committed state\n%s\nwant replay\n%s", step, base, want)
		}
		for _, id := range s.Collections() {
			c, contents, _, speculative, ok := s.latest(id)
			if !ok || (speculative && contents == nil) {
				t.Fatalf("step %d: latest(%s) = %+v %q %v %v", step, id, c, contents, speculative, ok)
			}
			if speculative {
				want := ""
				for _, x := range log {
					for _, m := range x.writes {
						if m.Name == tables.EntriesMap && string(m.Writes[0].Key) == id {
							want = string(m.Writes[0].Value)
						}
					}
				}
				if string(contents) != want {
					t.Fatalf("step %d: latest contents of %s = %q, want %q", step, id, contents, want)
				}
			}
		}
	}
}

// TestTagIndex: the tag index follows the state: a tagged entry adds its
// collection's tags, a rollback removes those of the transactions it drops,
// commit keeps them, and collections do not share tags.
func TestTagIndex(t *testing.T) {
	s := newState()
	s.execute(2, 1, TaggedEntryWrites("c", []byte("x"), []string{"b", "a"}))
	s.execute(2, 2, TaggedEntryWrites("d", []byte("y"), []string{"z"}))
	s.commit(2)
	s.execute(2, 3, TaggedEntryWrites("c", []byte("x"), []string{"new"}), EntryWrites("c", []byte("untagged")))
	if got := fmt.Sprint(s.CollectionTags("c")); got != "[a b new]" {
		t.Fatalf("tags of c = %s", got)
	}
	if !s.HasCollectionTags("c", []string{"a", "new"}) || s.HasCollectionTags("c", []string{"z"}) {
		t.Fatal("HasCollectionTags disagrees with CollectionTags")
	}
	s.rollback(2)
	if got := fmt.Sprint(s.CollectionTags("c")); got != "[a b]" {
		t.Fatalf("tags of c after the rollback = %s", got)
	}
	if got := fmt.Sprint(s.CollectionTags("d")); got != "[z]" {
		t.Fatalf("tags of d = %s", got)
	}
	if s.CollectionTags("none") != nil {
		t.Fatal("a collection without tags has tags")
	}
}
