package main

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/ledgerd/ledgerd/client"
)

// settle decides, for each line an interrupted run may have left in doubt
// (submitted, but its acknowledgement not saved), whether the ledger has
// it, and returns those it has with their transactions. The lines in doubt
// are at most [P, P+Limit), or only line 0 while P is 0 (pump's rules 2
// and 3; P is the state's prefix). It works in three steps:
//
//  1. Bounds. Every line in doubt was submitted after line P-Window was
//     acknowledged (rule 1; line 0, or the floor while P is 0), so its
//     transaction comes after that one's. The lines of the prefix that may
//     come after it too are among the state's Recent, and are left out.
//  2. Barrier. A write the interrupted run made may still be Pending, and
//     range reads return committed entries only: so settle finds the last
//     transaction the ledger has (probing statuses up from the latest
//     committed transaction it knows) and waits until it is committed.
//     Everything written before then is now committed or rolled back.
//  3. Read back. It reads each collection of the lines in doubt between the
//     two bounds and matches the lines, in input order, to entries with the
//     same contents, each entry at most once.
//
// An entry another writer appended with the same contents to the same
// collection in that span would be taken for the line's: see importUsage.
func (im *importer) settle(ctx context.Context) (map[int64]string, error) {
	st := im.st
	n := st.Limit
	if st.Lines == 0 {
		n = 1
	}
	cands, err := im.readAhead(n)
	if err != nil || len(cands) == 0 {
		return nil, err
	}
	lower := st.Floor
	if st.Lines > 0 {
		lower, _ = st.recentTx(max(0, st.Lines-int64(st.Window)))
	}
	var colls []string
	seenColl := make(map[string]bool)
	for _, rec := range cands {
		if !seenColl[rec.collection] {
			seenColl[rec.collection] = true
			colls = append(colls, rec.collection)
		}
	}
	upper, err := im.barrier(ctx, colls)
	if err != nil {
		return nil, err
	}
	byContents, defaultName, err := im.readBack(ctx, colls, lower, upper)
	if err != nil {
		return nil, err
	}
	matched := make(map[int64]string)
	for _, rec := range cands {
		coll := rec.collection
		if coll == "" {
			coll = defaultName
		}
		if q := byContents[coll][rec.contents]; len(q) > 0 {
			matched[rec.index] = q[0]
			byContents[coll][rec.contents] = q[1:]
		}
	}
	span := "the ledger's start"
	if lower != "" {
		span = "transaction " + lower
	}
	fmt.Fprintf(im.stderr, "the last run stopped with appends in doubt: lines %s to %s, looked for after %s: %s already in the ledger\n",
		commas(cands[0].index+1), commas(cands[len(cands)-1].index+1), span, commas(int64(len(matched))))
	return matched, nil
}

// barrier waits until every transaction the ledger had when it was called
// is committed (or rolled back), and returns the last of them; "" if the
// ledger has no committed transaction to start from, after waiting
// settleGrace instead.
func (im *importer) barrier(ctx context.Context, colls []string) (string, error) {
	st := im.st
	known := []string{st.Floor, st.LastTransactionID}
	latest, _, err := im.latestCommitted(ctx, colls)
	if err != nil {
		return "", err
	}
	anchor, ok := latestTx(append(known, latest))
	if !ok {
		fmt.Fprintf(im.stderr, "waiting %v for the interrupted run's appends to commit\n", settleGrace)
		select {
		case <-time.After(settleGrace):
			return "", nil
		case <-ctx.Done():
			return "", context.Cause(ctx)
		}
	}
	tip, err := im.probeTip(ctx, anchor)
	if err != nil {
		return "", err
	}
	if err := im.c.WaitUntilDurable(ctx, tip.String(), 0, -1); err != nil {
		return "", err
	}
	return tip.String(), nil
}

// probeTip returns the last transaction the ledger has in anchor's view,
// anchor being one it has: transactions of a view are consecutive, so it
// gallops up from anchor by status queries and then bisects.
func (im *importer) probeTip(ctx context.Context, anchor ledgerTx) (ledgerTx, error) {
	has := func(seqno uint64) (bool, error) {
		st, err := im.c.GetTransactionStatus(ctx, ledgerTx{anchor.view, seqno}.String())
		switch {
		case errors.Is(err, client.ErrNotFound):
			return false, nil // ledgerd: unknown, or of another view
		case err != nil:
			return false, fmt.Errorf("couldn't find the ledger's last transaction: %w", err)
		}
		return st.State == client.StateCommitted || st.State == client.StatePending, nil
	}
	lo, hi := anchor.seqno, uint64(0) // lo is had, hi is not
	for step := uint64(1); hi == 0; step *= 2 {
		if step > 1<<40 {
			return ledgerTx{}, errors.New("couldn't find the ledger's last transaction: no end in sight")
		}
		ok, err := has(lo + step)
		if err != nil {
			return ledgerTx{}, err
		}
		if ok {
			lo += step
		} else {
			hi = lo + step
		}
	}
	for hi-lo > 1 {
		mid := lo + (hi-lo)/2
		ok, err := has(mid)
		if err != nil {
			return ledgerTx{}, err
		}
		if ok {
			lo = mid
		} else {
			hi = mid
		}
	}
	return ledgerTx{anchor.view, lo}, nil
}

// readBack reads the committed entries of colls after lower up to upper
// ("": open), leaving out the prefix's Recent transactions, and indexes
// them by collection and contents, in order. It also returns the name of
// the default collection, if colls has it ("") and it has entries there.
func (im *importer) readBack(ctx context.Context, colls []string, lower, upper string) (map[string]map[string][]string, string, error) {
	exclude := make(map[string]bool)
	for _, id := range im.st.Recent {
		exclude[id] = true
	}
	from, lowerSeqno := "", uint64(0)
	if t, ok := parseLedgerTx(lower); ok {
		from, lowerSeqno = ledgerTx{t.view, t.seqno + 1}.String(), t.seqno
	}
	byContents := make(map[string]map[string][]string)
	seen := make(map[string]bool)
	defaultName := ""
	for _, c := range colls {
		for e, err := range im.c.GetLedgerEntries(ctx, from, upper, c) {
			if err != nil {
				return nil, "", fmt.Errorf("couldn't read back %s: %w", collectionName(c), err)
			}
			if c == "" {
				defaultName = e.CollectionID
			}
			t, ok := parseLedgerTx(e.TransactionID)
			if !ok || t.seqno <= lowerSeqno || exclude[e.TransactionID] || seen[e.TransactionID] {
				continue
			}
			seen[e.TransactionID] = true
			if byContents[e.CollectionID] == nil {
				byContents[e.CollectionID] = make(map[string][]string)
			}
			byContents[e.CollectionID][e.Contents] = append(byContents[e.CollectionID][e.Contents], e.TransactionID)
		}
	}
	return byContents, defaultName, nil
}

// latestCommitted returns the latest committed entry's transaction over the
// collections ("" if none has one), and whether any was found.
func (im *importer) latestCommitted(ctx context.Context, colls []string) (string, bool, error) {
	var ids []string
	for _, c := range colls {
		e, err := im.c.GetLedgerEntry(ctx, "", c)
		switch {
		case errors.Is(err, client.ErrNotFound):
			continue
		case err != nil:
			return "", false, fmt.Errorf("couldn't read the latest entry of %s: %w", collectionName(c), err)
		}
		ids = append(ids, e.TransactionID)
	}
	t, ok := latestTx(ids)
	if !ok {
		return "", false, nil
	}
	return t.String(), true, nil
}

// latestTx returns the latest of transaction ids, ignoring "" and ids that
// do not parse.
func latestTx(ids []string) (ledgerTx, bool) {
	var best ledgerTx
	found := false
	for _, id := range ids {
		t, ok := parseLedgerTx(id)
		if !ok {
			continue
		}
		if !found || t.after(best) {
			best, found = t, true
		}
	}
	return best, found
}
