package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ledgerd/ledgerd/internal/testbin"
)

// importLines returns n lines of input: unique, but for a repeated line every
// 97 lines and an empty one, which the read-back must count right too.
func importLines(n int) []string {
	lines := make([]string, n)
	for i := range lines {
		switch {
		case i%97 == 50:
			lines[i] = "the same line again"
		case i == n/2:
			lines[i] = ""
		default:
			lines[i] = fmt.Sprintf("entry %05d: %s", i, strings.Repeat("x", i%40))
		}
	}
	return lines
}

func writeLines(t *testing.T, path string, lines []string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(strings.Join(lines, "\n")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
}

// exportCollection exports a collection with the export command and
// returns its entries.
func exportCollection(t *testing.T, l *testLedger, collection string) []entryOut {
	t.Helper()
	out := filepath.Join(t.TempDir(), collection+".jsonl")
	r := ctl(append([]string{"export", "--collection", collection, "--out", out}, l.flags()...)...)
	if !strings.HasPrefix(r.ok(t), "exported ") {
		t.Errorf("export: %q", r.stdout)
	}
	data, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	var entries []entryOut
	for line := range strings.Lines(string(data)) {
		var e entryOut
		if err := json.Unmarshal([]byte(line), &e); err != nil {
			t.Fatalf("export line %q: %v", line, err)
		}
		entries = append(entries, e)
	}
	return entries
}

// checkExactlyOnce checks that the entries are the lines, each exactly once,
// and that no entry is window or more places from its line's: pump's
// rule 1 (window 1 is the input's order).
func checkExactlyOnce(t *testing.T, entries []entryOut, lines []string, window int) {
	t.Helper()
	if len(entries) != len(lines) {
		t.Errorf("%d entries for %d lines", len(entries), len(lines))
	}
	got := make(map[string][]int) // contents → positions
	for i, e := range entries {
		got[e.Contents] = append(got[e.Contents], i)
	}
	want := make(map[string][]int)
	for i, line := range lines {
		want[line] = append(want[line], i)
	}
	bad := 0
	for line, ps := range want {
		qs := got[line]
		if len(qs) != len(ps) {
			if bad++; bad <= 5 {
				t.Errorf("line %q: %d times in the input, %d in the ledger", line, len(ps), len(qs))
			}
			continue
		}
		if len(ps) > 1 {
			continue // repeated lines are interchangeable
		}
		if d := qs[0] - ps[0]; d >= window || d <= -window {
			if bad++; bad <= 5 {
				t.Errorf("line %d is entry %d: more than %d places away", ps[0], qs[0], window-1)
			}
		}
	}
	for line := range got {
		if _, ok := want[line]; !ok {
			t.Errorf("entry %q is no line of the input", line)
		}
	}
}

// readState reads an import state file, or nil while there is none.
func readState(t *testing.T, path string) *importState {
	t.Helper()
	st, err := loadImportState(path)
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// TestImportResume imports 10,000 lines, killed with SIGKILL midway and
// stopped with a cancelled context later, and checks that the reruns end
// with each line in the ledger exactly once, in order within the window.
func TestImportResume(t *testing.T) {
	isolateEnv(t)
	l := startLedger(t, testbin.Command(t, "LEDGERD_BIN", "github.com/ledgerd/ledgerd/cmd/ledgerd"))
	ctlBin := testbin.Command(t, "LEDGERCTL_BIN", "github.com/ledgerd/ledgerd/cmd/ledgerctl")
	dir := t.TempDir()
	input := filepath.Join(dir, "lines.txt")
	statePath := input + ".ledgerctl-import"
	lines := importLines(10000)
	writeLines(t, input, lines)
	args := append([]string{"import", "--collection", "bulk", input}, l.flags()...)

	// 1. A crash: SIGKILL once some thousands of lines are in.
	cmd := exec.Command(ctlBin, args...)
	var crashOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &crashOut, &crashOut
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	waitForLines(t, statePath, 2000, func() bool { return len(exited) > 0 })
	cmd.Process.Signal(syscall.SIGKILL)
	<-exited
	st := readState(t, statePath)
	t.Logf("killed at %d lines acknowledged, clean %v", st.Lines, st.Clean)
	if st.Lines >= int64(len(lines)) || st.Clean {
		t.Fatalf("the kill came too late (%d lines, clean %v):\n%s", st.Lines, st.Clean, &crashOut)
	}

	// 2. A stop: the rerun settles the lines in doubt, resumes, and stops
	// gracefully when its context is cancelled.
	ctx, cancel := context.WithCancel(context.Background())
	var stdout, stderr bytes.Buffer
	errc := make(chan error, 1)
	go func() { errc <- importCommand(ctx, args[1:], &stdout, &stderr) }()
	waitForLines(t, statePath, st.Lines+3000, func() bool { return len(errc) > 0 })
	cancel()
	err := <-errc
	st2 := readState(t, statePath)
	t.Logf("stopped at %d lines acknowledged, clean %v; the rerun said:\n%s", st2.Lines, st2.Clean, &stderr)
	resumed := fmt.Sprintf("resuming the import of %s at line %s: %s lines imported before", input, commas(st.Lines+1), commas(st.Lines))
	if !strings.Contains(stderr.String(), resumed) || !strings.Contains(stderr.String(), "the last run stopped with appends in doubt") {
		t.Errorf("the rerun does not say where it resumed (%q):\n%s", resumed, &stderr)
	}
	stopped := fmt.Sprintf("imported %s of 10,000 lines; last transaction %s; rerun the same command to resume", commas(st2.Lines), st2.LastTransactionID)
	if err == nil || !strings.Contains(err.Error(), stopped) || !strings.Contains(err.Error(), "interrupted") {
		t.Errorf("the stopped import says %v, want %q", err, stopped)
	}
	if st2.Lines >= int64(len(lines)) || !st2.Clean {
		t.Errorf("the stop left %d lines, clean %v; want fewer than all, clean", st2.Lines, st2.Clean)
	}

	// 3. The last rerun completes; the one after has nothing to do.
	var sum importOut
	ctl(append(slices.Clone(args), "--json")...).decode(t, &sum)
	if !sum.Complete || sum.Lines != 10000 || sum.ResumedAt != st2.Lines || sum.Appended != 10000-st2.Lines || sum.AlreadyInLedger != 0 {
		t.Errorf("final run: %+v", sum)
	}
	if out := ctl(args...).ok(t); !strings.HasPrefix(out, "nothing new to import: imported 10,000 of 10,000 lines") {
		t.Errorf("rerun after completion: %q", out)
	}
	entries := exportCollection(t, l, "bulk")
	checkExactlyOnce(t, entries, lines, defaultImportConcurrency)

	// list reads the collection across its many 1001-seqno pages.
	listed := strings.Split(strings.TrimSpace(ctl(append([]string{"list", "--collection", "bulk", "--json"}, l.flags()...)...).ok(t)), "\n")
	if len(listed) != len(entries) {
		t.Fatalf("list: %d entries, export %d", len(listed), len(entries))
	}
	last, _ := parseLedgerTx(entries[len(entries)-1].TransactionID)
	first, _ := parseLedgerTx(entries[0].TransactionID)
	if last.seqno-first.seqno < 5*1001 {
		t.Errorf("the collection spans only seqnos %v to %v", first, last)
	}
	var e entryOut
	json.Unmarshal([]byte(listed[len(listed)-1]), &e)
	if e != entries[len(entries)-1] {
		t.Errorf("list ends with %+v, export with %+v", e, entries[len(entries)-1])
	}
	mid := entries[4000:6000]
	r := ctl(append([]string{"list", "--collection", "bulk", "--json", "--from", mid[0].TransactionID, "--to", mid[len(mid)-1].TransactionID}, l.flags()...)...)
	if n := strings.Count(r.ok(t), "\n"); n != len(mid) {
		t.Errorf("list --from --to: %d entries, want %d", n, len(mid))
	}

	// 4. The input grows: the rerun imports the new lines only.
	more := append(slices.Clone(lines), "appended later 1", "appended later 2")
	writeLines(t, input, more)
	if out := ctl(args...).ok(t); !strings.HasPrefix(out, "imported 10,002 of 10,002 lines into collection bulk") ||
		!strings.Contains(out, "this run appended 2") {
		t.Errorf("import of a grown input: %q", out)
	}
	checkExactlyOnce(t, exportCollection(t, l, "bulk"), more, defaultImportConcurrency)

	// 5. Another input, or other flags, with the same state are refused.
	changed := slices.Clone(more)
	changed[10] = "changed"
	writeLines(t, input, changed)
	ctl(args...).fails(t, 1, "the input changed")
	ctl(append([]string{"import", "--collection", "other", input}, l.flags()...)...).fails(t, 2, "--collection \"bulk\"")
}

// waitForLines waits until the import state at path records at least n
// lines, failing if exited says the import ended first.
func waitForLines(t *testing.T, path string, n int64, exited func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if st, err := loadImportState(path); err == nil && st != nil && st.Lines >= n {
			return
		}
		if exited() {
			t.Fatalf("the import ended before %d lines", n)
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatalf("the import did not reach %d lines", n)
}

// TestImportSettle replays the crash windows deterministically: it imports,
// then rolls the state file back to what a run killed at an earlier
// checkpoint would have left (lines acknowledged, or in flight, past the
// saved prefix), and checks that the rerun finds those lines in the ledger
// instead of appending them again.
func TestImportSettle(t *testing.T) {
	isolateEnv(t)
	l := startLedger(t, testbin.Command(t, "LEDGERD_BIN", "github.com/ledgerd/ledgerd/cmd/ledgerd"))
	dir := t.TempDir()
	lines := importLines(3000)
	input := filepath.Join(dir, "in.txt")
	statePath := input + ".ledgerctl-import"
	args := func(coll string) []string {
		return append([]string{"import", "--collection", coll, "--json", input}, l.flags()...)
	}

	// The killed run had written lines [0, 2000); its state says 1,500.
	writeLines(t, input, lines[:2000])
	ctl(args("settle")...).ok(t)
	rollBack(t, l, statePath, "settle", lines, 1500)
	writeLines(t, input, lines)
	var sum importOut
	ctl(args("settle")...).decode(t, &sum)
	if !sum.Complete || sum.AlreadyInLedger != 500 || sum.Appended != 1000 || sum.ResumedAt != 1500 {
		t.Errorf("rerun: %+v, want 500 found and 1,000 appended", sum)
	}
	checkExactlyOnce(t, exportCollection(t, l, "settle"), lines, defaultImportConcurrency)

	// The killed run had written line 0 only, and saved nothing after the
	// state it made before submitting it.
	if err := os.Remove(statePath); err != nil {
		t.Fatal(err)
	}
	writeLines(t, input, lines[:1])
	ctl(args("first")...).ok(t)
	rollBack(t, l, statePath, "first", lines, 0)
	writeLines(t, input, lines[:100])
	ctl(args("first")...).decode(t, &sum)
	if !sum.Complete || sum.AlreadyInLedger != 1 || sum.Appended != 99 {
		t.Errorf("rerun after line 0: %+v, want 1 found and 99 appended", sum)
	}
	checkExactlyOnce(t, exportCollection(t, l, "first"), lines[:100], defaultImportConcurrency)
}

// rollBack rewrites the import state as it was when the prefix was lines
// [0, n), with the appends after it in doubt.
func rollBack(t *testing.T, l *testLedger, statePath, collection string, lines []string, n int) {
	t.Helper()
	st := readState(t, statePath)
	entries := exportCollection(t, l, collection)
	txOf := make(map[string][]string)
	for _, e := range entries {
		txOf[e.Contents] = append(txOf[e.Contents], e.TransactionID)
	}
	h := newPrefixHash()
	var recent []string
	for _, line := range lines[:n] {
		h.add([]byte(line))
		recent = append(recent, txOf[line][0]) // repeated lines: any of theirs will do
		txOf[line] = txOf[line][1:]
	}
	st.Lines, st.PrefixSHA256, st.Clean = int64(n), h.sum(), false
	st.Recent, st.LastTransactionID = recent[max(0, n-recentKeep):], ""
	if n > 0 {
		st.LastTransactionID = recent[n-1]
	}
	if n == 0 {
		st.Recent = nil
		// The floor was taken before line 0 was submitted: it is still right.
	}
	if err := st.save(statePath, time.Now()); err != nil {
		t.Fatal(err)
	}
}

// TestImportInputs covers JSON lines, standard input, --concurrency 1 (the
// input's exact order), --wait, a refusal (403) and bad input.
func TestImportInputs(t *testing.T) {
	isolateEnv(t)
	l := startLedger(t, testbin.Command(t, "LEDGERD_BIN", "github.com/ledgerd/ledgerd/cmd/ledgerd"))
	dir := t.TempDir()

	// JSON lines, some naming their collection, in exact order.
	var jl []string
	var inA, inB []string
	for i := range 600 {
		contents := fmt.Sprintf("json entry %d \"quoted\"\n", i)
		if i%3 == 0 {
			jl = append(jl, fmt.Sprintf(`{"contents":%q,"collectionId":"b"}`, contents))
			inB = append(inB, contents)
		} else {
			jl = append(jl, fmt.Sprintf(`{"contents":%q}`, contents))
			inA = append(inA, contents)
		}
	}
	input := filepath.Join(dir, "in.jsonl")
	writeLines(t, input, jl)
	var sum importOut
	ctl(append([]string{"import", "--jsonl", "--collection", "a", "--concurrency", "1", "--wait", "--json", input}, l.flags()...)...).decode(t, &sum)
	if !sum.Complete || !sum.Committed || sum.Lines != 600 {
		t.Errorf("import --jsonl: %+v", sum)
	}
	for coll, want := range map[string][]string{"a": inA, "b": inB} {
		entries := exportCollection(t, l, coll)
		got := make([]string, len(entries))
		for i, e := range entries {
			got[i] = e.Contents
		}
		if !slices.Equal(got, want) {
			t.Errorf("collection %s: not the input's lines in order (%d entries, %d lines)", coll, len(got), len(want))
		}
		if entries[0].CollectionID != coll {
			t.Errorf("collection %s holds %+v", coll, entries[0])
		}
	}
	// An export imports back as it is.
	exported := filepath.Join(dir, "b.jsonl")
	ctl(append([]string{"export", "--collection", "b", "--out", exported}, l.flags()...)...).ok(t)
	ctl(append([]string{"import", "--jsonl", exported}, l.flags()...)...).ok(t)
	if n := len(exportCollection(t, l, "b")); n != 2*len(inB) {
		t.Errorf("collection b after importing its export: %d entries, want %d", n, 2*len(inB))
	}

	// Standard input, with --state.
	ctlBin := testbin.Command(t, "LEDGERCTL_BIN", "github.com/ledgerd/ledgerd/cmd/ledgerctl")
	stdinState := filepath.Join(dir, "stdin.state")
	cmd := exec.Command(ctlBin, append([]string{"import", "--collection", "piped", "--concurrency", "1", "--state", stdinState, "-"}, l.flags()...)...)
	cmd.Stdin = strings.NewReader("one\r\ntwo\nthree")
	if out, err := cmd.CombinedOutput(); err != nil || !strings.Contains(string(out), "imported 3 of 3 lines into collection piped") {
		t.Errorf("import -: %v\n%s", err, out)
	}
	if got := exportCollection(t, l, "piped"); len(got) != 3 || got[0].Contents != "one" || got[2].Contents != "three" {
		t.Errorf("import -: %+v", got)
	}

	// A Reader may not append: nothing is imported, and the state says so.
	readerPEM, readerID := newUserCert(t, "reader")
	ctl(append([]string{"users", "add", readerID, "Reader"}, l.flags()...)...).ok(t)
	small := filepath.Join(dir, "small.txt")
	writeLines(t, small, []string{"a", "b"})
	ctl("import", small, "--endpoint", l.endpoint, "--cert", readerPEM, "--service-cert", l.servicePEM).
		fails(t, 1, "line 1:", "403", "imported 0 of 2 lines", "rerun the same command to resume")
	if st := readState(t, small+".ledgerctl-import"); st.Lines != 0 || !st.Clean {
		t.Errorf("state after a refusal: %+v", st)
	}

	// Bad JSON lines stop the import at the line.
	bad := filepath.Join(dir, "bad.jsonl")
	writeLines(t, bad, []string{`{"contents":"fine"}`, `{"content":"typo"}`})
	ctl(append([]string{"import", "--jsonl", "--collection", "badjson", bad}, l.flags()...)...).
		fails(t, 1, "line 2:", "unknown field", "imported 1 of 2 lines")
}

// TestImportServerCrash kills ledgerd in the middle of an import: the import
// stops on the network errors and says where, and the rerun, against the
// restarted ledgerd on another port, settles the lines in doubt and ends
// with each line in the ledger exactly once.
func TestImportServerCrash(t *testing.T) {
	isolateEnv(t)
	bin := testbin.Command(t, "LEDGERD_BIN", "github.com/ledgerd/ledgerd/cmd/ledgerd")
	l := startLedger(t, bin)
	input := filepath.Join(t.TempDir(), "lines.txt")
	statePath := input + ".ledgerctl-import"
	lines := importLines(5000)
	writeLines(t, input, lines)
	args := func(l *testLedger) []string {
		return append([]string{"--collection", "crash", input}, l.flags()...)
	}

	var stdout, stderr bytes.Buffer
	errc := make(chan error, 1)
	go func() { errc <- importCommand(context.Background(), args(l), &stdout, &stderr) }()
	waitForLines(t, statePath, 1500, func() bool {
		if len(errc) > 0 {
			t.Logf("import: %v\n%s%s", <-errc, &stdout, &stderr)
			return true
		}
		return false
	})
	l.kill()
	err := <-errc
	st := readState(t, statePath)
	t.Logf("ledgerd killed; the import stopped at %d lines: %v", st.Lines, err)
	want := fmt.Sprintf("of 5,000 lines; last transaction %s; rerun the same command to resume", st.LastTransactionID)
	if err == nil || !strings.Contains(err.Error(), want) || st.Lines >= 5000 {
		t.Fatalf("the import says %v, want %q", err, want)
	}

	l2 := startLedgerIn(t, bin, l.data)
	var sum importOut
	ctl(append([]string{"import", "--json"}, args(l2)...)...).decode(t, &sum)
	t.Logf("the rerun: %+v", sum)
	if !sum.Complete || sum.ResumedAt != st.Lines || sum.Appended+sum.AlreadyInLedger != 5000-st.Lines {
		t.Errorf("rerun: %+v", sum)
	}
	checkExactlyOnce(t, exportCollection(t, l2, "crash"), lines, defaultImportConcurrency)
}
