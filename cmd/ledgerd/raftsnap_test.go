package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/ledgerd/ledgerd/internal/node"
	"github.com/ledgerd/ledgerd/internal/testbin"
)

// TestRaftSnapshotProcess: three ledgerd processes. A backup (L) is
// stopped; the others commit past a snapshot at S; the other backup (R)
// is rebuilt from its latest snapshot (its directory holds no entry up to
// S, as a node that joined from it); the primary stops once R caught up,
// and L restarts: R, the only possible primary, holds no entry L lacks, so
// it sends a Raft snapshot, which L fetches over the node-to-node
// interface, verifies and installs, then catches up from S+1. L then
// serves the later writes, refuses reads up to S with a 404 naming the
// snapshot, holds committed chunk files byte-identical to R's from S+1,
// and `ledgerctl audit` passes on its directory.
func TestRaftSnapshotProcess(t *testing.T) {
	if testing.Short() {
		t.Skip("starts three ledgerd processes")
	}
	ctl := testbin.Command(t, "LEDGERCTL_BIN", "github.com/ledgerd/ledgerd/cmd/ledgerctl")
	w := startNetwork(t, "--snapshot-tx-interval", "20")
	all := func(int) bool { return true }
	early, p := w.appendOnPrimary(t, "early", all)
	for i := range w.procs {
		w.waitReadable(t, i, early, "early")
	}
	l, r := (p+1)%3, (p+2)%3
	restart := func(i int) {
		w.procs[i] = startLedgerd(t, w.bin, "--data", w.dirs[i], "--election-timeout", "500ms", "--snapshot-tx-interval", "20",
			"--listen", w.procs[i].addr, "--peer-listen", w.peers[i])
	}
	w.procs[l].stop(t)
	_, earlySeqno, _ := strings.Cut(early, ".")
	behind, _ := strconv.ParseUint(earlySeqno, 10, 64)
	var last string
	for i := 0; ; i++ {
		last, _ = w.appendOnPrimary(t, "later "+strconv.Itoa(i), func(i int) bool { return i != l })
		if i >= 40 && snapshotSeqno(t, w.dirs[r]) > behind+20 {
			break
		}
		if i > 2000 {
			t.Fatalf("no committed snapshot beyond %d on node %d", behind+20, r)
		}
	}
	w.waitReadable(t, r, last, "later")
	// R starts again from its latest snapshot, without its ledger.
	w.procs[p].stop(t)
	w.procs[r].stop(t)
	s := snapshotSeqno(t, w.dirs[r])
	var snap []byte
	ents, _ := os.ReadDir(filepath.Join(w.dirs[r], "snapshots"))
	for _, e := range ents {
		if at, _, ok := node.ParseSnapshotName(e.Name()); ok && at == s {
			snap, _ = os.ReadFile(filepath.Join(w.dirs[r], "snapshots", e.Name()))
		}
	}
	for _, f := range []string{"ledger", "merkle.tree", "merkle.tree.base", "signatures.idx", "raft.state", "state.checkpoint", "startup.snapshot"} {
		os.RemoveAll(filepath.Join(w.dirs[r], f))
	}
	if _, err := node.InstallSnapshot(nil, w.dirs[r], mustCert(t, filepath.Join(w.dirs[0], "service.pem")), snap); err != nil {
		t.Fatal(err)
	}
	restart(p)
	restart(r)
	back, _ := w.appendOnPrimary(t, "both back", func(i int) bool { return i != l })
	w.waitReadable(t, r, back, "both back")
	w.procs[p].stop(t)
	restart(l)
	after, primary := w.appendOnPrimary(t, "after the install", func(i int) bool { return i != p })
	if primary != r {
		t.Fatalf("node %d took the write, want %d (node %d is behind)", primary, r, l)
	}
	w.waitReadable(t, l, after, "after the install")
	// "both back" was written while L was down: L reads it unless the
	// snapshot R sent it is at or after it (R may have taken a later one
	// by then); which one is checked once L's startup snapshot is known.
	backStatus, _, backBody := call(t, w.admin[l], "GET", "https://"+w.procs[l].addr+"/app/transactions/"+back+"?api-version=2022-05-13", "")
	status, _, body := call(t, w.admin[l], "GET", "https://"+w.procs[l].addr+"/app/transactions/"+early+"?api-version=2022-05-13", "")
	if msg, _ := body["error"].(map[string]any)["message"].(string); status != 404 || !strings.Contains(msg, "snapshot") {
		t.Fatalf("GET %s (before the snapshot) on node %d: %d %v", early, l, status, body)
	}
	w.procs[l].stop(t)
	w.procs[r].stop(t)
	if !strings.Contains(w.procs[l].stderr.String(), "installed the primary's snapshot") {
		t.Fatalf("node %d logged no snapshot install:\n%s", l, w.procs[l].stderr.String())
	}
	// Its ledger starts after the snapshot it installed, and its committed
	// chunks are R's.
	startup, err := node.StartupSnapshot(w.dirs[l], mustCert(t, filepath.Join(w.dirs[0], "service.pem")))
	if err != nil || startup == nil || startup.Seqno < s {
		t.Fatalf("node %d's startup snapshot: %v %v, want one at %d or later", l, startup, err, s)
	}
	_, backSeqno, _ := strings.Cut(back, ".")
	if n, _ := strconv.ParseUint(backSeqno, 10, 64); n <= startup.Seqno {
		if msg, _ := backBody["error"].(map[string]any)["message"].(string); backStatus != 404 || !strings.Contains(msg, "snapshot") {
			t.Fatalf("GET %s (at or before the installed snapshot %d) on node %d: %d %v", back, startup.Seqno, l, backStatus, backBody)
		}
	} else if entry, _ := backBody["entry"].(map[string]any); backStatus != 200 || entry["contents"] != "both back" {
		t.Fatalf("GET %s (after the installed snapshot %d) on node %d: %d %v", back, startup.Seqno, l, backStatus, backBody)
	}
	chunks, _ := os.ReadDir(filepath.Join(w.dirs[l], "ledger"))
	var first uint64
	for _, e := range chunks {
		rest, ok := strings.CutPrefix(e.Name(), "ledger_")
		if !ok {
			continue
		}
		start, _, _ := strings.Cut(strings.TrimSuffix(rest, ".committed"), "-")
		if v, err := strconv.ParseUint(start, 10, 64); err == nil && (first == 0 || v < first) {
			first = v
		}
		if !strings.HasSuffix(e.Name(), ".committed") {
			continue
		}
		a, _ := os.ReadFile(filepath.Join(w.dirs[l], "ledger", e.Name()))
		b, err := os.ReadFile(filepath.Join(w.dirs[r], "ledger", e.Name()))
		if err != nil || !bytes.Equal(a, b) {
			t.Fatalf("committed chunk %s of node %d differs from node %d's (%v)", e.Name(), l, r, err)
		}
	}
	if first != startup.Seqno+1 {
		t.Fatalf("node %d's ledger starts at %d, want %d", l, first, startup.Seqno+1)
	}
	if b, err := exec.Command(ctl, "audit", "-q", w.dirs[l]).CombinedOutput(); err != nil || !strings.Contains(string(b), "started from a snapshot") {
		t.Fatalf("audit of node %d's directory: %v\n%s", l, err, b)
	}
}
