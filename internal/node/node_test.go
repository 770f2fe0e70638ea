package node_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/ledgerd/ledgerd/internal/identity"
	"github.com/ledgerd/ledgerd/internal/node"
)

func quietLogger() *slog.Logger {
	return slog.New(slog.NewTextHandler(discard{}, &slog.HandlerOptions{Level: slog.LevelError}))
}

type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }

func openNode(t testing.TB, dir string, mod func(*node.Config)) *node.Node {
	t.Helper()
	ids, err := identity.LoadOrCreate(dir, identity.Options{DNSNames: []string{"localhost"}, IPs: []net.IP{net.IPv4(127, 0, 0, 1)}})
	if err != nil {
		t.Fatal(err)
	}
	cfg := node.Config{Dir: dir, Identities: ids, Logger: quietLogger()}
	if mod != nil {
		mod(&cfg)
	}
	n, err := node.Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func appendEntry(t testing.TB, n *node.Node, coll, contents string) node.TxID {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	f, err := n.SubmitEntry(coll, []byte(contents))
	if err != nil {
		t.Fatal(err)
	}
	id, err := f.Wait(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

func waitCommitted(t testing.TB, n *node.Node, id node.TxID) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := n.WaitCommitted(ctx, id); err != nil {
		t.Fatalf("WaitCommitted(%s): %v", id, err)
	}
}

func verifyReceipt(t testing.TB, n *node.Node, ids *identity.Identities, id node.TxID) {
	t.Helper()
	r, err := n.Receipt(id)
	if err != nil {
		t.Fatalf("Receipt(%s): %v", id, err)
	}
	if err := r.Verify(ids.Service.Cert); err != nil {
		t.Fatalf("receipt of %s does not verify: %v", id, err)
	}
	if r.LeafComponents != nil {
		v, s, err := r.TransactionID()
		if err != nil || v != id.View || s != id.Seqno {
			t.Fatalf("receipt commit evidence names %d.%d, want %s (%v)", v, s, id, err)
		}
	}
}

func TestAppendCommitReadReceipt(t *testing.T) {
	dir := t.TempDir()
	n := openNode(t, dir, nil)
	defer n.Close()
	ids, _ := identity.LoadOrCreate(dir, identity.Options{})

	id := appendEntry(t, n, "subledger:0", "hello")
	if st := n.Status(id); st != node.StatusPending && st != node.StatusCommitted {
		t.Fatalf("status after append = %v, want Pending or Committed", st)
	}
	waitCommitted(t, n, id)
	if st := n.Status(id); st != node.StatusCommitted {
		t.Fatalf("status = %v, want Committed", st)
	}
	e, err := n.Entry(id)
	if err != nil || e.Collection != "subledger:0" || string(e.Contents) != "hello" || e.ID != id {
		t.Fatalf("Entry(%s) = %+v, %v", id, e, err)
	}
	verifyReceipt(t, n, ids, id)

	// Many concurrent writers into several collections.
	var wg sync.WaitGroup
	var mu sync.Mutex
	all := map[node.TxID]string{}
	for w := range 8 {
		wg.Go(func() {
			for i := range 50 {
				c := fmt.Sprintf("c%d", w%3)
				body := fmt.Sprintf("w%d-%d", w, i)
				id := appendEntry(t, n, c, body)
				mu.Lock()
				all[id] = c + "/" + body
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	var last node.TxID
	for id := range all {
		if id.Seqno > last.Seqno {
			last = id
		}
	}
	waitCommitted(t, n, last)
	for id, want := range all {
		e, err := n.Entry(id)
		if err != nil || e.Collection+"/"+string(e.Contents) != want {
			t.Fatalf("Entry(%s) = %+v, %v; want %s", id, e, err, want)
		}
		verifyReceipt(t, n, ids, id)
	}
	if got := n.State().Collections(); fmt.Sprint(got) != "[c0 c1 c2 subledger:0]" {
		t.Fatalf("collections = %v", got)
	}
	c, _ := n.State().Collection("c1")
	if c.Count == 0 {
		t.Fatal("c1 has no entries in the index")
	}
	latest, err := n.LatestEntry("c1")
	if err != nil || latest.ID != c.Latest {
		t.Fatalf("LatestEntry(c1) = %+v, %v; index says %v", latest, err, c.Latest)
	}
	count := 0
	if err := n.Entries("c1", 1, last.Seqno, func(e node.Entry) bool { count++; return true }); err != nil {
		t.Fatal(err)
	}
	if uint64(count) != c.Count {
		t.Fatalf("range over c1 found %d entries, index says %d", count, c.Count)
	}
}

func TestStatusAndErrors(t *testing.T) {
	dir := t.TempDir()
	n := openNode(t, dir, nil)
	defer n.Close()
	id := appendEntry(t, n, "c", "x")
	waitCommitted(t, n, id)
	future := node.TxID{View: id.View, Seqno: id.Seqno + 1_000_000}
	if st := n.Status(future); st != node.StatusUnknown {
		t.Fatalf("status of a future seqno = %v, want Unknown", st)
	}
	wrongView := node.TxID{View: id.View + 7, Seqno: id.Seqno}
	if st := n.Status(wrongView); st != node.StatusInvalid {
		t.Fatalf("status with a wrong view of a committed seqno = %v, want Invalid", st)
	}
	if _, err := n.Entry(future); !errors.Is(err, node.ErrNotFound) {
		t.Fatalf("Entry(future) error = %v", err)
	}
	if _, err := n.Receipt(future); !errors.Is(err, node.ErrNotFound) {
		t.Fatalf("Receipt(future) error = %v", err)
	}
	// Seqno 1 is the Raft bootstrap conf change: no user entry.
	first := node.TxID{View: 1, Seqno: 1}
	if _, err := n.Entry(first); !errors.Is(err, node.ErrNotEntry) {
		t.Fatalf("Entry(1.1) error = %v, want ErrNotEntry", err)
	}
	if _, err := n.LatestEntry("nope"); !errors.Is(err, node.ErrNotFound) {
		t.Fatalf("LatestEntry(nope) error = %v", err)
	}
}

func TestTxIDParse(t *testing.T) {
	for _, s := range []string{"2.35", "1.1", "18446744073.9"} {
		if id, err := node.ParseTxID(s); err != nil || id.String() != s {
			t.Errorf("ParseTxID(%q) = %v, %v", s, id, err)
		}
	}
	for _, s := range []string{"", "2", "2.", ".3", "a.b", "2.3.4", "0.5", "5.0", "-1.2", "02.3", "2.+3", " 2.3", "99999999999999999999.1"} {
		if _, err := node.ParseTxID(s); !errors.Is(err, node.ErrBadTxID) {
			t.Errorf("ParseTxID(%q) error = %v, want ErrBadTxID", s, err)
		}
	}
}

func FuzzParseTxID(f *testing.F) {
	for _, s := range []string{"2.35", "1.1", "0.0", "a.b", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		id, err := node.ParseTxID(s)
		if err == nil && id.String() != s {
			t.Fatalf("ParseTxID(%q) round-trips to %q", s, id.String())
		}
	})
}

func TestRestartKeepsEverything(t *testing.T) {
	dir := t.TempDir()
	ids, _ := identity.LoadOrCreate(dir, identity.Options{})
	n := openNode(t, dir, func(c *node.Config) { c.ChunkSize = 4096 })
	var written []node.TxID
	for i := range 200 {
		written = append(written, appendEntry(t, n, "c", fmt.Sprintf("e%d", i)))
	}
	waitCommitted(t, n, written[len(written)-1])
	if err := n.Close(); err != nil {
		t.Fatal(err)
	}
	n = openNode(t, dir, func(c *node.Config) { c.ChunkSize = 4096 })
	defer n.Close()
	for i, id := range written {
		if st := n.Status(id); st != node.StatusCommitted {
			t.Fatalf("after restart, status(%s) = %v", id, st)
		}
		e, err := n.Entry(id)
		if err != nil || string(e.Contents) != fmt.Sprintf("e%d", i) {
			t.Fatalf("after restart, Entry(%s) = %+v, %v", id, e, err)
		}
	}
	verifyReceipt(t, n, ids, written[0])
	verifyReceipt(t, n, ids, written[len(written)-1])
	id := appendEntry(t, n, "c", "after restart")
	waitCommitted(t, n, id)
	if id.View <= written[0].View {
		t.Fatalf("view after restart = %d, want > %d (a new election)", id.View, written[0].View)
	}
	verifyReceipt(t, n, ids, id)
	verifyReceipt(t, n, ids, written[100])
	if c, _ := n.State().Collection("c"); c.Count != 201 {
		t.Fatalf("collection count after restart = %d, want 201", c.Count)
	}
}

// TestAnsweredWhenSequenced: a submission is answered once it has its final
// id in the log, before the group commit persists it (here up to 50ms later):
// its status is Pending from the moment the id is handed out, never Unknown,
// and it then commits with its contents.
func TestAnsweredWhenSequenced(t *testing.T) {
	n := openNode(t, t.TempDir(), func(c *node.Config) { c.SyncInterval = 50 * time.Millisecond })
	defer n.Close()
	waitCommitted(t, n, appendEntry(t, n, "warm-up", "x"))

	var wg sync.WaitGroup
	var mu sync.Mutex
	ids := map[node.TxID]string{}
	early := 0
	for w := range 16 {
		wg.Go(func() {
			for i := range 20 {
				body := fmt.Sprintf("w%d-%d", w, i)
				id := appendEntry(t, n, "seq", body)
				last := n.LastSeqno() // persisted up to here
				if st := n.Status(id); st != node.StatusPending && st != node.StatusCommitted {
					t.Errorf("status of %s just after it was answered = %v, want Pending", id, st)
				}
				mu.Lock()
				ids[id] = body
				if id.Seqno > last {
					early++
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if early == 0 {
		t.Fatalf("none of %d submissions was answered before it was persisted", len(ids))
	}
	for id, body := range ids {
		waitCommitted(t, n, id)
		if e, err := n.Entry(id); err != nil || string(e.Contents) != body {
			t.Fatalf("Entry(%s) = %q, %v; want %q", id, e.Contents, err, body)
		}
	}
	t.Logf("%d of %d submissions answered before they were persisted", early, len(ids))
}

// TestAnsweredButUnpersistedIsBounded: while an fsync is pending (here held
// back 300ms by SyncInterval), the primary answers at most about 2·MaxBatch
// submissions beyond what is persisted; the rest wait in the queue. All of
// them commit.
func TestAnsweredButUnpersistedIsBounded(t *testing.T) {
	const maxBatch = 4
	n := openNode(t, t.TempDir(), func(c *node.Config) {
		c.SyncInterval = 300 * time.Millisecond
		c.MaxBatch = maxBatch
		c.MaxQueue = 256
	})
	defer n.Close()
	waitCommitted(t, n, appendEntry(t, n, "warm-up", "x"))

	var wg sync.WaitGroup
	var mu sync.Mutex
	var ids []node.TxID
	ahead := uint64(0)
	for i := range 48 {
		wg.Go(func() {
			id := appendEntry(t, n, "bounded", fmt.Sprint(i))
			d := id.Seqno - min(id.Seqno, n.LastSeqno())
			mu.Lock()
			ids = append(ids, id)
			ahead = max(ahead, d)
			mu.Unlock()
		})
	}
	wg.Wait()
	// Unpersisted proposals stay under 2·MaxBatch; LastSeqno also lags by
	// the Ready being persisted (as many again) and a signature or two.
	if ahead > 4*maxBatch+2 {
		t.Fatalf("a submission was answered %d transactions ahead of the persisted log, want at most %d", ahead, 4*maxBatch+2)
	}
	for _, id := range ids {
		waitCommitted(t, n, id)
	}
	t.Logf("answered at most %d transactions ahead of the persisted log", ahead)
}
