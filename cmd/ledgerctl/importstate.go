package main

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io/fs"
	"os"
	"time"

	"github.com/ledgerd/ledgerd/internal/durable"
	"github.com/ledgerd/ledgerd/receipt"
)

// importStateVersion is the version of the state file's format.
const importStateVersion = 1

// importState is the state file of a resumable import (--state). It is
// rewritten atomically and synced (durable.WriteFile) at every checkpoint, so
// that after any interruption it tells the rerun where to resume, and how
// far back to look for lines an interrupted run may have written without
// hearing back (see settle in import.go).
//
// Its invariant: lines [0, Lines) of the input are each in the ledger
// exactly once, and no run ever had a line ≥ Lines+Limit submitted.
type importState struct {
	Version int `json:"version"`
	// Input and Endpoint are what the import was started with, for people.
	Input    string `json:"input"`
	Endpoint string `json:"endpoint"`
	// Ledger is the SHA-256 fingerprint of the ledger's service certificate:
	// a rerun must write to the same ledger, under whatever host name.
	Ledger string `json:"ledger"`
	// Collection and JSONL are the --collection and --jsonl of the import,
	// which a rerun must repeat.
	Collection string `json:"collection"`
	JSONL      bool   `json:"jsonl"`
	// Lines is the acknowledged prefix: the number of lines, from the
	// first, that the ledger acknowledged, in order of the input.
	Lines int64 `json:"lines"`
	// PrefixSHA256 hashes those lines (see prefixHash), so that a rerun
	// with another input is refused.
	PrefixSHA256 string `json:"prefixSha256"`
	// LastTransactionID is the transaction of line Lines-1.
	LastTransactionID string `json:"lastTransactionId,omitempty"`
	// Recent are the transactions of the last lines of the prefix, lines
	// [Lines-len(Recent), Lines): recentKeep of them (≥ 2·Window), or all.
	Recent []string `json:"recentTransactionIds,omitempty"`
	// Floor is a transaction the ledger had committed before line 0 was
	// first submitted ("" if it had none to find): line 0's lower bound.
	Floor string `json:"floorTransactionId,omitempty"`
	// Window is the most lines any run had in flight past its
	// acknowledged prefix (--concurrency); Limit is the most lines any run
	// submitted past the prefix persisted here. Both only grow.
	Window int `json:"window"`
	Limit  int `json:"limit"`
	// Clean says that the last run stopped with no append in doubt: no
	// line from Lines on can be in the ledger.
	Clean bool `json:"clean"`
	// Total is the number of lines of the input, when known.
	Total int64 `json:"total,omitempty"`
	// Updated is when the file was written.
	Updated time.Time `json:"updated"`
}

// loadImportState reads a state file; a missing one is (nil, nil).
func loadImportState(path string) (*importState, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("couldn't read the import state: %w", err)
	}
	var st importState
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&st); err != nil {
		return nil, fmt.Errorf("import state %s is corrupt (%v): remove it only if you know how far the import got", path, err)
	}
	if err := st.check(); err != nil {
		return nil, fmt.Errorf("import state %s: %w", path, err)
	}
	return &st, nil
}

// check validates a state read from disk.
func (st *importState) check() error {
	switch {
	case st.Version != importStateVersion:
		return fmt.Errorf("version %d, want %d: written by another ledgerctl", st.Version, importStateVersion)
	case st.Lines < 0 || st.Window < 1 || st.Limit < st.Window:
		return fmt.Errorf("bad counts (lines %d, window %d, limit %d)", st.Lines, st.Window, st.Limit)
	case int64(len(st.Recent)) > st.Lines:
		return fmt.Errorf("%d recent transactions for %d lines", len(st.Recent), st.Lines)
	case st.Window > maxImportConcurrency:
		return fmt.Errorf("window %d, at most %d", st.Window, maxImportConcurrency)
	case int64(len(st.Recent)) != min(st.Lines, recentKeep):
		return fmt.Errorf("%d recent transactions, want %d", len(st.Recent), min(st.Lines, recentKeep))
	case st.Lines > 0 && st.LastTransactionID != st.Recent[len(st.Recent)-1]:
		return errors.New("the last transaction is not the last recent one")
	}
	for _, id := range append(append([]string(nil), st.Recent...), st.Floor) {
		if _, ok := parseLedgerTx(id); id != "" && !ok {
			return fmt.Errorf("bad transaction id %q", id)
		}
	}
	return nil
}

// save writes the state durably.
func (st *importState) save(path string, now time.Time) error {
	st.Updated = now.UTC()
	data, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return err
	}
	if err := durable.WriteFile(path, append(data, '\n'), 0o644); err != nil {
		return fmt.Errorf("couldn't save the import state: %w", err)
	}
	return nil
}

// recentTx returns the transaction of line i of the prefix, which must be
// among Recent.
func (st *importState) recentTx(i int64) (string, bool) {
	first := st.Lines - int64(len(st.Recent))
	if i < first || i >= st.Lines {
		return "", false
	}
	return st.Recent[i-first], true
}

// prefixHash hashes the lines of an input's prefix, each as its length
// (uvarint) and bytes, so that no two sequences of lines hash alike.
type prefixHash struct{ h hash.Hash }

func newPrefixHash() prefixHash { return prefixHash{sha256.New()} }

func (p prefixHash) add(line []byte) {
	p.h.Write(binary.AppendUvarint(nil, uint64(len(line))))
	p.h.Write(line)
}

func (p prefixHash) sum() string { return hex.EncodeToString(p.h.Sum(nil)) }

// ledgerTx is a parsed transaction id "<view>.<seqno>".
type ledgerTx struct{ view, seqno uint64 }

func (t ledgerTx) String() string { return receipt.TxID{View: t.view, Seqno: t.seqno}.String() }

// after reports whether t is a later transaction than u.
func (t ledgerTx) after(u ledgerTx) bool {
	return t.view > u.view || t.view == u.view && t.seqno > u.seqno
}

// parseLedgerTx parses a transaction id (receipt.ParseTxID).
func parseLedgerTx(s string) (ledgerTx, bool) {
	id, err := receipt.ParseTxID(s)
	return ledgerTx{id.View, id.Seqno}, err == nil
}
