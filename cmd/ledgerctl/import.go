package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/ledgerd/ledgerd/client"
)

const importUsage = `
usage: ledgerctl import [flags] FILE
       ledgerctl import [flags] --state STATEFILE -

Appends one entry per line of FILE (- for standard input), or with --jsonl one per JSON line
{"contents":"...","collectionId":"..."} (collectionId optional; export's files import as they
are). Up to --concurrency appends are in flight at once, so an entry may land fewer than that
many places away from its line's position; --concurrency 1 keeps the input's order exactly.

The import is resumable: a state file (--state, default FILE.ledgerctl-import) records, synced
to disk, how many lines from the first are committed in the ledger, and their last
transactions. If the import stops (Ctrl-C, SIGTERM, a crash, a network error), rerun the same
command: it skips the lines already imported, reads back the collection after them to find the
lines that were in flight when it stopped, and appends each remaining line exactly once. A
rerun after the input grew imports the new lines. A first Ctrl-C lets the appends in flight
finish; a second one stops at once (the rerun sorts it out). While an interrupted import is
pending, do not let other writers append the same contents to the same collection: a line in
doubt counts as imported if an entry with its contents follows the last recorded one.`

// Bounds of the import's pipeline and its bookkeeping.
const (
	defaultImportConcurrency = 8
	maxImportConcurrency     = 256
	// recentKeep is how many transactions of the acknowledged prefix the
	// state keeps: enough to name every line of the prefix that may have
	// been written after a line in flight (2·Window, see settle).
	recentKeep = 2 * maxImportConcurrency
	// A checkpoint is tried every checkpointEvery; a run submits at most
	// checkpointSlack lines past its window beyond the saved prefix (the
	// state's Limit), which bounds what a rerun must check, and waits for
	// a checkpoint when it gets there.
	checkpointEvery = 200 * time.Millisecond
	checkpointSlack = 2048
	// drainTimeout bounds the wait for the appends in flight after a stop.
	drainTimeout = 30 * time.Second
	// settleGrace is how long a rerun waits for the writes of the
	// interrupted run to commit when the ledger has no committed
	// transaction it can wait on (see settle).
	settleGrace = 2 * time.Second
)

// importOptions are the flags of import.
type importOptions struct {
	input       string // path, or "-"
	statePath   string
	collection  string
	jsonl       bool
	concurrency int
	wait        bool
	json        bool
}

func runImport(args []string, stdout, stderr io.Writer) error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	go func() {
		<-ctx.Done()
		stop() // a second signal has its default effect: the process ends
	}()
	return importCommand(ctx, args, stdout, stderr)
}

// importCommand runs import until done or until stopCtx is done, which
// stops it gracefully: no new appends, those in flight finish.
func importCommand(stopCtx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("import", stderr)
	conn := addConnFlags(fs, 0)
	var o importOptions
	fs.StringVar(&o.collection, "collection", os.Getenv(envCollection), "collection to append to, for lines that name none (env "+envCollection+")")
	fs.BoolVar(&o.jsonl, "jsonl", false, `each line is a JSON object {"contents":...,"collectionId":...}`)
	fs.StringVar(&o.statePath, "state", "", "state file of the import (default FILE.ledgerctl-import; required with -)")
	fs.IntVar(&o.concurrency, "concurrency", defaultImportConcurrency, fmt.Sprintf("appends in flight at once, 1 to %d", maxImportConcurrency))
	fs.BoolVar(&o.wait, "wait", false, "at the end, wait until the last appended entry is committed (an import waits for its lines to commit before it records them anyway)")
	commandUsage(fs, stderr, importUsage)
	pos, err := parseCommand(fs, args, 1, 1, "import needs one input file, or -")
	if err != nil {
		return err
	}
	o.input, o.json = pos[0], conn.json
	switch {
	case o.concurrency < 1 || o.concurrency > maxImportConcurrency:
		return usagef("--concurrency must be 1 to %d", maxImportConcurrency)
	case o.input == "-" && o.statePath == "":
		return usagef("import from standard input needs --state FILE, to be resumable")
	case o.statePath == "":
		o.statePath = o.input + ".ledgerctl-import"
	}
	c, err := conn.newClient(true)
	if err != nil {
		return err
	}
	defer c.Close()
	if conn.timeout > 0 {
		var cancel context.CancelFunc
		stopCtx, cancel = context.WithTimeout(stopCtx, conn.timeout)
		defer cancel()
	}
	im := &importer{c: c, o: o, endpoint: conn.endpoint, stdout: stdout, stderr: stderr,
		bar: newProgress(stderr, true), now: time.Now}
	return explain(im.run(stopCtx))
}

// importer is one run of an import.
type importer struct {
	c        *client.Client
	o        importOptions
	endpoint string
	stdout   io.Writer
	stderr   io.Writer
	bar      *progress
	now      func() time.Time

	st    *importState   // as last saved (or to be saved first)
	src   *recordReader  // the input, after the records in ahead
	ahead []importRecord // records read but not yet handed to the pipeline
	total int64          // lines of the input; -1 if unknown
	hash  prefixHash     // of the saved prefix, lines [0, st.Lines)
	// pending are lines [st.Lines, D) of the acknowledged prefix, not yet
	// checkpointed.
	pending []ackedLine

	// What this run did, for the summary.
	resumedAt int64 // lines imported before this run
	appended  int64
	found     int64    // lines settle found already in the ledger
	maxTx     ledgerTx // latest transaction this run appended
}

// importAck is the answer to one append.
type importAck struct {
	index int64
	tx    string
	err   error
}

// run is the import: it resumes from the state file (settling the lines an
// interrupted run may have left in doubt), then appends the remaining lines
// through the pipeline, checkpointing the acknowledged prefix.
func (im *importer) run(stopCtx context.Context) error {
	unlock, err := lockImport(im.o.statePath)
	if err != nil {
		return err
	}
	defer unlock()
	if im.st, err = loadImportState(im.o.statePath); err != nil {
		return err
	}
	in, err := im.openInput()
	if err != nil {
		return err
	}
	defer in.Close()
	ledger := client.CertificateUserID(im.c.ServiceCertificate().Raw)
	if err := im.checkState(ledger); err != nil {
		return err
	}
	if err := im.skipPrefix(); err != nil {
		return err
	}
	// Resume: settle the lines in doubt before anything new is submitted.
	var matched map[int64]string
	if im.st != nil {
		im.resumedAt = im.st.Lines
		if !im.st.Clean {
			im.sayResuming()
			if matched, err = im.settle(stopCtx); err != nil {
				return fmt.Errorf("couldn't check which lines the interrupted import left in the ledger (nothing was appended; rerun to try again): %w", err)
			}
		}
	}
	if _, err := im.peek(); errors.Is(err, io.EOF) {
		im.total = 0
		if im.st != nil {
			im.total = im.st.Lines
		}
		return im.finish(nil, true)
	} else if err != nil {
		return err
	}
	if im.st != nil && im.st.Clean {
		im.sayResuming()
	}
	// Crash window: the state must be on disk, not Clean, before the first
	// submission, so that a rerun knows lines may be in doubt.
	if err := im.prepareState(stopCtx, ledger); err != nil {
		return err
	}
	if im.resumedAt == 0 {
		fmt.Fprintf(im.stderr, "importing %s into %s (state %s)\n", im.linesOf(im.total), collectionName(im.o.collection), im.o.statePath)
	}
	pumpErr := im.pump(stopCtx, matched)
	im.bar.done()
	return im.finish(pumpErr, false)
}

// openInput opens the input and counts its lines if it is a regular file.
func (im *importer) openInput() (io.ReadCloser, error) {
	im.total = -1
	if im.o.input == "-" {
		im.src = newRecordReader(os.Stdin, im.o.jsonl, im.o.collection)
		return io.NopCloser(nil), nil
	}
	f, err := os.Open(im.o.input)
	if err != nil {
		return nil, err
	}
	if fi, err := f.Stat(); err == nil && fi.Mode().IsRegular() {
		if im.total, err = countLines(f); err != nil {
			f.Close()
			return nil, err
		}
	}
	im.src = newRecordReader(f, im.o.jsonl, im.o.collection)
	return f, nil
}

// checkState refuses to resume an import of other flags or another ledger.
func (im *importer) checkState(ledger string) error {
	st := im.st
	switch {
	case st == nil:
		return nil
	case st.Ledger != ledger:
		return fmt.Errorf("the import state %s is of another ledger (service certificate %s, not %s): use another --state",
			im.o.statePath, st.Ledger, ledger)
	case st.Collection != im.o.collection || st.JSONL != im.o.jsonl:
		return usagef("the import state %s was made with --collection %q --jsonl=%v: rerun with those, or use another --state",
			im.o.statePath, st.Collection, st.JSONL)
	case im.total >= 0 && im.total < st.Lines:
		return fmt.Errorf("%s has %s lines, but the import state %s says %s were imported: is it the same input?",
			im.o.input, commas(im.total), im.o.statePath, commas(st.Lines))
	}
	return nil
}

// skipPrefix reads the lines already imported, checking they hash as the
// state says.
func (im *importer) skipPrefix() error {
	im.hash = newPrefixHash()
	if im.st == nil {
		return nil
	}
	for i := int64(0); i < im.st.Lines; i++ {
		rec, err := im.src.read()
		if errors.Is(err, io.EOF) {
			return fmt.Errorf("%s has %s lines, but the import state %s says %s were imported: is it the same input?",
				im.o.input, commas(i), im.o.statePath, commas(im.st.Lines))
		}
		if err != nil {
			return err
		}
		im.hash.add(rec.raw)
	}
	if got := im.hash.sum(); got != im.st.PrefixSHA256 {
		return fmt.Errorf("the first %s lines of %s are not the ones the import state %s records as imported: "+
			"the input changed, or the state is another input's", commas(im.st.Lines), im.o.input, im.o.statePath)
	}
	return nil
}

// nextRecord returns the next record for the pipeline.
func (im *importer) nextRecord() (importRecord, error) {
	if len(im.ahead) > 0 {
		rec := im.ahead[0]
		im.ahead = im.ahead[1:]
		return rec, nil
	}
	return im.src.read()
}

// readAhead reads up to n records past those in ahead, and returns all the
// records in ahead.
func (im *importer) readAhead(n int) ([]importRecord, error) {
	for len(im.ahead) < n {
		rec, err := im.src.read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, err
		}
		im.ahead = append(im.ahead, rec)
	}
	return im.ahead, nil
}

// peek returns the next record without consuming it, or io.EOF.
func (im *importer) peek() (importRecord, error) {
	recs, err := im.readAhead(1)
	if err != nil {
		return importRecord{}, err
	}
	if len(recs) == 0 {
		return importRecord{}, io.EOF
	}
	return recs[0], nil
}

// prepareState makes the state of this run and saves it before anything is
// submitted: a new state with the floor (a transaction committed before
// line 0 is submitted), or the loaded one with this run's window.
func (im *importer) prepareState(ctx context.Context, ledger string) error {
	w := im.o.concurrency
	if im.st == nil {
		first, _ := im.peek()
		floor, _, err := im.latestCommitted(ctx, []string{first.collection, ""})
		if err != nil {
			return err
		}
		im.st = &importState{Version: importStateVersion, Input: im.o.input, Endpoint: im.endpoint, Ledger: ledger,
			Collection: im.o.collection, JSONL: im.o.jsonl, PrefixSHA256: im.hash.sum(), Floor: floor}
	}
	st := im.st
	st.Window = max(st.Window, w)
	st.Limit = max(st.Limit, w+checkpointSlack)
	st.Clean = false
	if im.total >= 0 {
		st.Total = im.total
	}
	return st.save(im.o.statePath, im.now())
}

// slot is a line handed to the pipeline and not yet in the acknowledged
// prefix.
type slot struct {
	rec   importRecord
	tx    string
	at    time.Time // when acknowledged (zero: found by settle, committed)
	acked bool      // the ledger has it: appended and acknowledged, or found by settle
	found bool      // found by settle, not appended by this run
}

// ackedLine is a line of the acknowledged prefix not yet checkpointed.
type ackedLine struct {
	raw []byte
	tx  string
	at  time.Time
}

// pump appends the remaining lines, up to W at once, advances the
// acknowledged prefix, and checkpoints it once committed. Its submission
// rules are what settle relies on (W is --concurrency, P the prefix saved
// in the state, D the acknowledged prefix in memory):
//
//  1. line i is submitted only when i < D+W: every line ≤ i-W has been
//     acknowledged, so its transaction precedes line i's;
//  2. line i is submitted only when i < P+Limit: a rerun need check no
//     further;
//  3. while P is 0, only line 0 is submitted: the other lines follow line
//     0's transaction.
//
// A checkpoint moves P up only over lines whose transactions are committed
// (checkpoint): an acknowledged write is only Pending, and could still be
// rolled back. matched are the lines settle found in the ledger, with their
// transactions. pump returns the error that stopped it.
func (im *importer) pump(stopCtx context.Context, matched map[int64]string) error {
	st := im.st
	w := int64(im.o.concurrency)
	reqCtx, cancelReq := context.WithCancel(context.WithoutCancel(stopCtx))
	defer cancelReq()
	acks := make(chan importAck, w)
	slots := make(map[int64]*slot)
	var (
		done     = st.Lines // acknowledged prefix in memory
		next     = st.Lines // next line to submit
		inflight int64
		eof      bool
		firstErr error
		doubt    bool // an append failed in a way that may have written it
		stopping bool // no more submissions
		stopped  = stopCtx.Done()
		drain    <-chan time.Time
		lastTry  = im.now()
	)
	stop := func(err error) {
		if firstErr == nil {
			firstErr = err
		}
		if !stopping {
			stopping, stopped, drain = true, nil, time.After(drainTimeout)
		}
	}
	bound := func() int64 { // rules 2 and 3
		if st.Lines == 0 {
			return 1
		}
		return st.Lines + int64(st.Limit)
	}
	ticker := time.NewTicker(checkpointEvery / 4)
	defer ticker.Stop()
	for {
		// Submit what the rules allow.
		done = im.advance(slots, done)
		for !eof && !stopping && next < done+w && next < bound() {
			rec, err := im.nextRecord()
			if errors.Is(err, io.EOF) {
				eof = true
				im.total = next
				break
			}
			if err != nil {
				stop(err)
				break
			}
			s := &slot{rec: rec}
			slots[rec.index] = s
			next++
			if tx, ok := matched[rec.index]; ok {
				s.tx, s.acked, s.found = tx, true, true
				continue
			}
			inflight++
			go func() {
				res, err := im.c.AppendToLedger(reqCtx, rec.contents, client.InCollection(rec.collection))
				acks <- importAck{rec.index, res.TransactionID, err}
			}()
		}
		done = im.advance(slots, done)
		finished := inflight == 0 && (eof || stopping)
		if blocked := inflight == 0 && !finished; blocked { // rule 2 or 3: wait for a commit
			if done == st.Lines { // cannot be: every line past P is acknowledged or failed
				doubt = true
				stop(fmt.Errorf("internal error: import stalled at line %s", commas(next+1)))
				continue
			}
			switch _, err := im.checkpoint(stopCtx, len(im.pending), true); {
			case err != nil && stopCtx.Err() != nil:
				stop(fmt.Errorf("interrupted (%v)", context.Cause(stopCtx)))
			case err != nil:
				doubt = true
				stop(err)
			}
			continue
		}
		if finished {
			break
		}
		if now := im.now(); now.Sub(lastTry) >= checkpointEvery {
			lastTry = now
			if saved, err := im.checkpoint(context.Background(), im.committedLikely(now), false); err != nil || saved {
				if err != nil {
					stop(err)
				}
				continue
			}
		}
		select {
		case a := <-acks:
			inflight--
			if a.err != nil {
				doubt = doubt || !definitelyNotWritten(a.err)
				stop(fmt.Errorf("line %s: %w", commas(a.index+1), a.err))
				continue
			}
			s := slots[a.index]
			s.tx, s.at, s.acked = a.tx, im.now(), true
			im.appended++
			if t, ok := parseLedgerTx(a.tx); ok && t.after(im.maxTx) {
				im.maxTx = t
			}
		case <-stopped:
			stop(fmt.Errorf("interrupted (%v)", context.Cause(stopCtx)))
		case <-drain:
			cancelReq() // the appends in flight end in doubt
		case <-ticker.C:
		}
	}
	// Crash window: until this save, a rerun settles the lines past the
	// prefix on disk. Clean says no line past it can be in the ledger:
	// nothing failed in doubt, and everything acknowledged is in the prefix.
	finalCtx, cancel := context.WithTimeout(context.WithoutCancel(stopCtx), drainTimeout)
	defer cancel()
	if _, err := im.checkpoint(finalCtx, len(im.pending), true); err != nil {
		doubt = true
		stop(fmt.Errorf("couldn't confirm that the last lines are committed: %w", err))
	}
	st.Clean = !doubt && len(im.pending) == 0
	for _, s := range slots {
		st.Clean = st.Clean && !s.acked
	}
	if eof {
		st.Total = im.total
	}
	return errors.Join(firstErr, st.save(im.o.statePath, im.now()))
}

// commitLag is how long after its acknowledgement a transaction is likely
// committed, on a healthy ledger (ledgerd signs every 5ms by default).
const commitLag = 100 * time.Millisecond

// committedLikely returns how many of the pending lines, from the first,
// were acknowledged commitLag ago or more: the next checkpoint's candidates.
func (im *importer) committedLikely(now time.Time) int {
	n := 0
	for n < len(im.pending) && now.Sub(im.pending[n].at) >= commitLag {
		n++
	}
	return n
}

// checkpoint saves the prefix extended by the first n pending lines, once
// their transactions are committed: for each view among them, its latest
// (a view's transactions commit in order). With wait, it waits for that
// until ctx is done, and a transaction that will never commit is an error;
// without, it asks once and does not save if they are not (yet). It reports
// whether it saved.
func (im *importer) checkpoint(ctx context.Context, n int, wait bool) (bool, error) {
	if n == 0 {
		return false, nil
	}
	latest := make(map[uint64]uint64)
	for _, l := range im.pending[:n] {
		t, _ := parseLedgerTx(l.tx)
		latest[t.view] = max(latest[t.view], t.seqno)
	}
	for view, seqno := range latest {
		id := ledgerTx{view, seqno}.String()
		if wait {
			if err := im.c.WaitUntilDurable(ctx, id, 0, -1); err != nil {
				return false, err
			}
			continue
		}
		qctx, cancel := context.WithTimeout(ctx, cliDefaultTimeout)
		status, err := im.c.GetTransactionStatus(qctx, id)
		cancel()
		if err != nil || status.State != client.StateCommitted {
			return false, nil // a later checkpoint looks again, or waits
		}
	}
	st := im.st
	recent := st.Recent
	for _, l := range im.pending[:n] {
		im.hash.add(l.raw)
		recent = append(recent, l.tx)
	}
	if len(recent) > recentKeep {
		recent = append([]string(nil), recent[len(recent)-recentKeep:]...)
	}
	st.Recent, st.LastTransactionID = recent, recent[len(recent)-1]
	st.Lines += int64(n)
	st.PrefixSHA256 = im.hash.sum()
	im.pending = append(im.pending[:0], im.pending[n:]...)
	return true, st.save(im.o.statePath, im.now())
}

// advance moves the acknowledged prefix over the acknowledged lines that
// follow it, and returns its new end.
func (im *importer) advance(slots map[int64]*slot, done int64) int64 {
	for {
		s, ok := slots[done]
		if !ok || !s.acked {
			break
		}
		im.pending = append(im.pending, ackedLine{raw: s.rec.raw, tx: s.tx, at: s.at})
		if s.found {
			im.found++
		}
		delete(slots, done)
		done++
	}
	if im.total > 0 {
		im.bar.count(done, im.total, "lines")
	}
	return done
}

// definitelyNotWritten reports whether an append's error means the ledger
// did not write the entry: it answered 4xx (ledgerd writes nothing of a
// request it refuses). A 5xx or a broken connection may have written it.
func definitelyNotWritten(err error) bool {
	var re *client.ResponseError
	return errors.As(err, &re) && re.StatusCode >= 400 && re.StatusCode < 500
}

// finish waits for commit if asked and reports how far the import got.
func (im *importer) finish(runErr error, nothingNew bool) error {
	st := im.st
	lines, last := int64(0), ""
	if st != nil {
		lines, last = st.Lines, st.LastTransactionID
	}
	complete := runErr == nil && lines == im.total
	if runErr == nil && !complete && !nothingNew {
		runErr = errors.New("internal error: the import ended before the input did")
	}
	// The saved prefix is committed (see checkpoint), so a complete import
	// is; --wait checks the latest transaction this run appended again.
	committed := complete
	if complete && im.o.wait && im.maxTx.seqno > 0 {
		ctx, cancel := context.WithTimeout(context.Background(), cliDefaultTimeout)
		defer cancel()
		if err := im.c.WaitUntilDurable(ctx, im.maxTx.String(), 0, 0); err != nil {
			runErr, committed = fmt.Errorf("couldn't wait for transaction %s to commit: %w", im.maxTx, err), false
		}
	}
	if im.o.json {
		out := importOut{Input: im.o.input, State: im.o.statePath, Lines: lines, Complete: complete && runErr == nil,
			Appended: im.appended, AlreadyInLedger: im.found, ResumedAt: im.resumedAt, LastTransactionID: last, Committed: committed}
		if im.total >= 0 {
			out.Total = &im.total
		}
		if err := writeJSON(im.stdout, out); err != nil {
			return err
		}
	}
	progressText := fmt.Sprintf("imported %s of %s", commas(lines), im.linesOf(im.total))
	if im.total < 0 {
		progressText = "imported " + im.linesOf(lines)
	}
	if runErr == nil && !im.o.jsonl {
		progressText += " into " + collectionName(im.o.collection)
	}
	if last != "" {
		progressText += "; last transaction " + last
	}
	if runErr != nil {
		return fmt.Errorf("import stopped: %w\n%s; rerun the same command to resume", runErr, progressText)
	}
	if im.o.json {
		return nil
	}
	switch {
	case nothingNew:
		_, err := fmt.Fprintf(im.stdout, "nothing new to import: %s\n", progressText)
		return err
	case im.resumedAt > 0 || im.found > 0:
		progressText += fmt.Sprintf(" (this run appended %s", commas(im.appended))
		if im.found > 0 {
			progressText += fmt.Sprintf(" and found %s already in the ledger", commas(im.found))
		}
		progressText += ")"
	}
	if committed {
		progressText += "; all committed"
	}
	_, err := fmt.Fprintln(im.stdout, progressText)
	return err
}

// importOut is the summary of import --json.
type importOut struct {
	Input             string `json:"input"`
	State             string `json:"state"`
	Lines             int64  `json:"lines"`
	Total             *int64 `json:"total,omitempty"`
	Complete          bool   `json:"complete"`
	ResumedAt         int64  `json:"resumedAt"`
	Appended          int64  `json:"appended"`
	AlreadyInLedger   int64  `json:"alreadyInLedger"`
	LastTransactionID string `json:"lastTransactionId,omitempty"`
	Committed         bool   `json:"committed"`
}

// linesOf says n lines ("1 line", "10,000 lines", "lines" if unknown).
func (im *importer) linesOf(n int64) string {
	switch {
	case n < 0:
		return "lines"
	case n == 1:
		return "1 line"
	}
	return commas(n) + " lines"
}

// sayResuming says where a rerun resumes.
func (im *importer) sayResuming() {
	last := ""
	if im.st.LastTransactionID != "" {
		last = ", the last as transaction " + im.st.LastTransactionID
	}
	fmt.Fprintf(im.stderr, "resuming the import of %s at line %s: %s imported before%s (state %s)\n",
		im.o.input, commas(im.st.Lines+1), im.linesOf(im.st.Lines), last, im.o.statePath)
}

// collectionName names a --collection for people.
func collectionName(c string) string {
	if c == "" {
		return "the default collection"
	}
	return "collection " + printable(c)
}
