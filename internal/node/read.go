package node

import (
	"fmt"

	"github.com/ledgerd/ledgerd/internal/ledger"
	"github.com/ledgerd/ledgerd/internal/tables"
)

// Entry is a user ledger entry.
type Entry struct {
	ID         TxID
	Collection string
	Contents   []byte
}

// State returns the state (users, members, collections...). Its reads see
// the node's latest executed state, as CCF's endpoints do: every
// transaction this node has sequenced or appended, committed or not.
func (n *Node) State() *State { return n.state }

// Entry returns the ledger entry written by transaction id. Errors:
// ErrUncommitted while it is Pending (clients see "Loading"), ErrNotFound if
// Unknown, ErrInvalid if rolled back, ErrNotEntry if the transaction holds
// no user entry.
func (n *Node) Entry(id TxID) (Entry, error) {
	switch n.Status(id) {
	case StatusPending:
		return Entry{}, ErrUncommitted
	case StatusInvalid:
		return Entry{}, ErrInvalid
	case StatusUnknown:
		return Entry{}, ErrNotFound
	}
	ent, ok, err := n.readEntry(id.Seqno)
	if err != nil {
		return Entry{}, err
	}
	if !ok {
		return Entry{}, ErrNotEntry
	}
	return ent, nil
}

// LatestEntry returns the latest entry of a collection in the latest
// executed state: possibly one not committed yet (Pending), so that a
// client reads its own write. ErrNotFound if the collection has none.
func (n *Node) LatestEntry(collection string) (Entry, error) {
	c, contents, speculative, ok := n.state.latest(collection)
	if !ok {
		return Entry{}, ErrNotFound
	}
	if speculative {
		return Entry{ID: c.Latest, Collection: collection, Contents: contents}, nil
	}
	ent, ok, err := n.readEntry(c.Latest.Seqno)
	if err != nil {
		return Entry{}, err
	}
	if !ok || ent.Collection != collection || ent.ID != c.Latest {
		// The index is derived data: never serve what the ledger does not
		// say. (The checkpoint it comes from is authenticated, so this is
		// a bug or a corruption in memory, not an edited file.)
		n.log.Error("query index disagrees with the ledger; refusing to serve it", "collection", collection, "seqno", c.Latest.Seqno, "ledger_collection", ent.Collection)
		return Entry{}, fmt.Errorf("node: the index's latest entry of %q (%s) is not an entry of it in the ledger", collection, c.Latest)
	}
	return ent, nil
}

// Entries calls fn, in seqno order, for each committed entry of collection
// with from <= seqno <= to, until fn returns false.
func (n *Node) Entries(collection string, from, to uint64, fn func(Entry) bool) error {
	to = min(to, n.committed.Load())
	for s := max(from, 1); s <= to; s++ {
		ent, ok, err := n.readEntry(s)
		if err != nil {
			return err
		}
		if ok && ent.Collection == collection && !fn(ent) {
			return nil
		}
	}
	return nil
}

// readEntry decrypts the transaction at seqno and returns its user entry, if
// it has one.
func (n *Node) readEntry(seqno uint64) (Entry, bool, error) {
	raw, err := n.ledger.Read(seqno)
	if err != nil {
		return Entry{}, false, fmt.Errorf("node: couldn't read %d: %w", seqno, err)
	}
	e, err := ledger.ParseEntry(raw)
	if err != nil {
		return Entry{}, false, fmt.Errorf("node: entry %d: %w", seqno, err)
	}
	if len(e.Ciphertext) == 0 {
		return Entry{}, false, nil
	}
	maps, err := e.Decrypt(n.aead)
	if err != nil {
		return Entry{}, false, fmt.Errorf("node: couldn't decrypt %d: %w", seqno, err)
	}
	for _, m := range maps {
		if m.Name == tables.EntriesMap && len(m.Writes) > 0 {
			w := m.Writes[0]
			return Entry{ID: TxID{View: e.View, Seqno: seqno}, Collection: string(w.Key), Contents: w.Value}, true, nil
		}
	}
	return Entry{}, false, nil
}
