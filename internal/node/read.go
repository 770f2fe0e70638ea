package node

import (
	"crypto/cipher"
	"fmt"
	"log/slog"
	"math"
	"sync"
	"sync/atomic"

	"github.com/ledgerd/ledgerd/internal/ledger"
	"github.com/ledgerd/ledgerd/internal/merkle"
	"github.com/ledgerd/ledgerd/internal/tables"
	"github.com/ledgerd/ledgerd/receipt"
)

// Reader is the read side of a Node: transaction status and the commit
// point, entries by id, by range and the latest of a collection, the state
// (collections, users, roles, members) and receipts. The api serves every
// read through it. Its methods are safe for concurrent use.
//
// A Node embeds its Reader. The Node's loop goroutine owns the files and
// the state a Reader holds and is their only writer; it publishes here the
// last seqno, the commit point, the last proposed id and its role. A
// Reader only reads, except that a receipt the derived files got wrong has
// them rebuilt from the ledger, on the loop (see Receipt).
type Reader struct {
	log *slog.Logger
	// keys finds the ledger secret of each seqno from the rekeys of the
	// latest executed state (see aeadAt).
	keys *tables.Keyring
	// evidence derives commit evidence (ccf-format §4.2).
	evidence *evidenceKey
	// prevEvidence derives the previous service's commit evidence (a
	// recovered service, once its secrets are recovered; disaster.go).
	prevEvidence atomic.Pointer[prevEvidence]

	ledger *ledger.Ledger
	tree   *merkle.Tree
	sigs   *sigIndex
	state  *State

	// Published by the loop.
	committed atomic.Uint64 // CCF commit: last committed signature's seqno
	lastSeqno atomic.Uint64
	// lastProposed is the id of the last transaction this node sequenced as
	// primary in its current view; nil when it is not primary. The ids from
	// lastSeqno+1 up to it are Pending: in the log, not yet persisted.
	lastProposed atomic.Pointer[TxID]
	isPrimary    atomic.Bool
	raftInfo     atomic.Pointer[RaftInfo] // see RaftInfo
	cmu          sync.Mutex
	commitCh     chan struct{}   // closed and replaced when committed advances
	stopped      <-chan struct{} // closed when the node's loop has stopped

	// base: the seqno and view history of the snapshot the node started
	// from or installed (nil: it holds the whole ledger). Set at open and
	// when the loop installs a snapshot from the primary.
	base atomic.Pointer[snapshotBase]

	sigCache sigCache
	repair   repairState // rebuilds of the derived files (receipt.go)
	// rebuild rebuilds the derived files on the loop unless a rebuild has
	// finished since repair.gen was gen (Node.repairDerived).
	rebuild func(gen uint64) error
}

// Entry is a user ledger entry.
type Entry struct {
	ID         TxID
	Collection string
	Contents   []byte
	// SecretKey is the entry's application claim key (EntryWrites); nil
	// for an entry written before ledgerd recorded claims, and for the
	// speculative latest entry (LatestEntry of a Pending write).
	SecretKey []byte
	// Tags are the entry's tags (API 2024-12-09-preview), nil if none.
	Tags []string
}

// HasTags reports whether the entry carries every one of tags.
func (e Entry) HasTags(tags []string) bool {
	for _, t := range tags {
		found := false
		for _, have := range e.Tags {
			if have == t {
				found = true
				break
			}
		}
		if !found {
			return false
		}
	}
	return true
}

// ApplicationClaims returns the entry's application claims, the ones its
// transaction's claims digest commits to: its LedgerEntryV1 claim, or nil if
// it has no secret key (an entry written before ledgerd recorded claims,
// whose claims digest is zeros).
func (e Entry) ApplicationClaims() []receipt.ApplicationClaim {
	if e.SecretKey == nil {
		return nil
	}
	return []receipt.ApplicationClaim{receipt.NewLedgerEntryClaim(e.Collection, string(e.Contents), e.SecretKey)}
}

// State returns the state (users, members, collections...). Its reads see
// the node's latest executed state, as CCF's endpoints do: every
// transaction this node has sequenced or appended, committed or not.
func (r *Reader) State() *State { return r.state }

// Entry returns the ledger entry written by transaction id. Errors:
// ErrUncommitted while it is Pending (clients see "Loading"), ErrNotFound if
// Unknown, ErrInvalid if rolled back, ErrNotEntry if the transaction holds
// no user entry.
func (r *Reader) Entry(id TxID) (Entry, error) {
	switch r.Status(id) {
	case StatusPending:
		return Entry{}, ErrUncommitted
	case StatusInvalid:
		return Entry{}, ErrInvalid
	case StatusUnknown:
		return Entry{}, ErrNotFound
	}
	ent, ok, err := r.readEntry(id.Seqno)
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
func (r *Reader) LatestEntry(collection string) (Entry, error) {
	c, contents, tags, speculative, ok := r.state.latest(collection)
	if !ok {
		return Entry{}, ErrNotFound
	}
	if speculative {
		return Entry{ID: c.Latest, Collection: collection, Contents: contents, Tags: tags}, nil
	}
	ent, ok, err := r.readEntry(c.Latest.Seqno)
	if err != nil {
		return Entry{}, err
	}
	if !ok || ent.Collection != collection || ent.ID != c.Latest {
		// The index is derived data: never serve what the ledger does not
		// say. (The checkpoint it comes from is authenticated, so this is
		// a bug or a corruption in memory, not an edited file.)
		r.log.Error("query index disagrees with the ledger; refusing to serve it", "collection", collection, "seqno", c.Latest.Seqno, "ledger_collection", ent.Collection)
		return Entry{}, fmt.Errorf("node: the index's latest entry of %q (%s) is not an entry of it in the ledger", collection, c.Latest)
	}
	return ent, nil
}

// Entries calls fn, in seqno order, for each committed entry of collection
// with from <= seqno <= to, until fn returns false.
func (r *Reader) Entries(collection string, from, to uint64, fn func(Entry) bool) error {
	to = min(to, r.committed.Load())
	for s := max(from, 1); s <= to; s++ {
		ent, ok, err := r.readEntry(s)
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
func (r *Reader) readEntry(seqno uint64) (Entry, bool, error) {
	if err := r.held(seqno); err != nil {
		return Entry{}, false, err
	}
	raw, err := r.ledger.Read(seqno)
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
	aead, err := r.aeadAt(seqno)
	if err != nil {
		return Entry{}, false, fmt.Errorf("node: couldn't decrypt %d: %w", seqno, err)
	}
	maps, err := e.Decrypt(aead)
	if err != nil {
		return Entry{}, false, fmt.Errorf("node: couldn't decrypt %d: %w", seqno, err)
	}
	var ent Entry
	var key []byte
	var tags []string
	found := false
	for _, m := range maps {
		switch {
		case m.Name == tables.EntriesMap && len(m.Writes) > 0:
			w := m.Writes[0]
			ent, found = Entry{ID: TxID{View: e.View, Seqno: seqno}, Collection: string(w.Key), Contents: w.Value}, true
		case m.Name == tables.EntryClaimsMap && len(m.Writes) > 0:
			key = m.Writes[0].Value
		case m.Name == tables.EntryTagsMap && len(m.Writes) > 0:
			tags = splitTags(m.Writes[0].Value)
		}
	}
	if !found {
		return Entry{}, false, nil
	}
	ent.SecretKey, ent.Tags = key, tags
	return ent, true, nil
}

// aeadAt returns the AES-256-GCM of the ledger secret that encrypts seqno:
// the service's first secret up to the first rekey, then each rekey's
// secret from the seqno after it (tables.Keyring), as the latest executed
// state knows the rekeys.
func (r *Reader) aeadAt(seqno uint64) (cipher.AEAD, error) {
	return r.keys.AEAD(r.state.rekeys(), seqno)
}

// LatestLedgerSecret returns a copy of the latest ledger secret: the one the
// transactions after the last executed rekey are encrypted with (the
// service's first secret if there was none). Nil if it cannot be unwrapped.
func (r *Reader) LatestLedgerSecret() []byte {
	s, err := r.keys.Secret(r.state.rekeys(), math.MaxUint64)
	if err != nil {
		r.log.Error("couldn't unwrap the latest ledger secret", "err", err)
		return nil
	}
	return s
}

// StateRoot returns the Merkle root of every transaction in this node's
// tree: the digest a governance request is bound to (CCF's root at the
// read version: proposal ids and state digests derive from it).
func (r *Reader) StateRoot() ([32]byte, error) {
	n := r.tree.Size()
	if n == 0 {
		return [32]byte{}, nil
	}
	return r.tree.Root(n)
}

// LatestLedgerSecretSeqno returns the seqno from which the latest ledger
// secret applies, in the latest executed state: 1 for the service's first
// secret, R+1 after a rekey at seqno R (CCF's getLatestLedgerSecretSeqno).
func (r *Reader) LatestLedgerSecretSeqno() int64 {
	rekeys := r.state.rekeys()
	if len(rekeys) == 0 {
		return 1
	}
	return int64(rekeys[len(rekeys)-1].Seqno) + 1
}
