package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/ledgerd/ledgerd/internal/durable"

	"github.com/ledgerd/ledgerd/client"
)

const exportUsage = `
usage: ledgerctl export [flags] [--from TX] [--to TX] [--out FILE]

Writes the committed entries of a collection from --from to --to (both inclusive) as JSON lines,
{"transactionId":"2.15","collectionId":"subledger:0","contents":"..."}, in ledger order, to
--out (default standard output). Without --to, the range ends at the collection's latest
committed entry when the export starts. A file is written whole or not at all (through a
temporary file, renamed at the end); 'ledgerctl import --jsonl' reads it back.`

func runExport(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("export", stderr)
	conn := addConnFlags(fs, 0)
	coll := addCollectionFlag(fs)
	from := fs.String("from", "", "first transaction id of the range (default: the ledger's start)")
	to := fs.String("to", "", "last transaction id of the range (default: the latest committed entry)")
	out := fs.String("out", "-", "output file, - for standard output")
	commandUsage(fs, stderr, exportUsage)
	if _, err := parseCommand(fs, args, 0, 0, "export takes no arguments: use --from, --to and --out"); err != nil {
		return err
	}
	if _, ok := parseLedgerTx(*from); *from != "" && !ok {
		return usagef("--from %q is not a transaction id <view>.<seqno>", *from)
	}
	if _, ok := parseLedgerTx(*to); *to != "" && !ok {
		return usagef("--to %q is not a transaction id <view>.<seqno>", *to)
	}
	return withClient(conn, true, func(ctx context.Context, c *client.Client) error {
		ex := &exporter{c: c, collection: *coll, from: *from, to: *to, bar: newProgress(stderr, true)}
		if *out == "-" {
			w := bufio.NewWriterSize(stdout, 64<<10)
			if err := ex.run(ctx, w); err != nil {
				return err
			}
			if err := w.Flush(); err != nil {
				return err
			}
			fmt.Fprintln(stderr, ex.summary("standard output"))
			return nil
		}
		if err := ex.toFile(ctx, *out); err != nil {
			return err
		}
		if conn.json {
			return writeJSON(stdout, exportOut{Out: *out, Collection: *coll, Entries: ex.n, From: ex.from, To: ex.to})
		}
		_, err := fmt.Fprintln(stdout, ex.summary(*out))
		return err
	})
}

// exportOut is the summary of export --json --out FILE.
type exportOut struct {
	Out        string `json:"out"`
	Collection string `json:"collection"`
	Entries    int64  `json:"entries"`
	From       string `json:"from,omitempty"`
	To         string `json:"to,omitempty"`
}

// exporter writes a range of a collection as JSON lines.
type exporter struct {
	c          *client.Client
	collection string
	from, to   string // the range; to is set by run when empty
	bar        *progress
	n          int64 // entries written
}

// run writes the range to w.
func (ex *exporter) run(ctx context.Context, w io.Writer) error {
	if ex.to == "" {
		latest, err := ex.c.GetLedgerEntry(ctx, "", ex.collection)
		if errors.Is(err, client.ErrNotFound) {
			return nil // no committed entry: nothing to export
		}
		if err != nil {
			return fmt.Errorf("couldn't find the latest entry of %s: %w", collectionName(ex.collection), err)
		}
		ex.to = latest.TransactionID
	}
	first := uint64(1)
	if t, ok := parseLedgerTx(ex.from); ok {
		first = t.seqno
	}
	last, _ := parseLedgerTx(ex.to)
	for e, err := range ex.c.GetLedgerEntries(ctx, ex.from, ex.to, ex.collection) {
		if err != nil {
			return err
		}
		if err := writeJSON(w, entryOutOf(e)); err != nil {
			return err
		}
		ex.n++
		if t, ok := parseLedgerTx(e.TransactionID); ok && last.seqno > first {
			ex.bar.fraction(float64(t.seqno-first)/float64(last.seqno-first), t.seqno >= last.seqno, commas(ex.n)+" entries")
		}
	}
	ex.bar.done()
	return nil
}

// toFile exports to path through a temporary file in its directory.
func (ex *exporter) toFile(ctx context.Context, path string) error {
	f, err := os.CreateTemp(filepath.Dir(path), ".ledgerctl-export-*.tmp")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name()) // no-op after the rename
	w := bufio.NewWriterSize(f, 256<<10)
	err = ex.run(ctx, w)
	if err == nil {
		err = w.Flush()
	}
	if err == nil {
		err = f.Chmod(0o644)
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	if err := os.Rename(f.Name(), path); err != nil {
		return err
	}
	return durable.SyncDir(filepath.Dir(path))
}

func (ex *exporter) summary(where string) string {
	span := ""
	if ex.to != "" {
		from := ex.from
		if from == "" {
			from = "the start"
		}
		span = fmt.Sprintf(" (%s to %s)", from, ex.to)
	}
	entries := "entries"
	if ex.n == 1 {
		entries = "entry"
	}
	return fmt.Sprintf("exported %s %s of %s%s to %s", commas(ex.n), entries, collectionName(ex.collection), span, where)
}
