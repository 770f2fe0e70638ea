package main

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ledgerd/ledgerd/internal/dirlock"
	"github.com/ledgerd/ledgerd/internal/identity"
	"github.com/ledgerd/ledgerd/internal/node"
)

// Issue 8 item 4: `ledgerctl audit --live` run in a loop against a node
// under load never writes to what it audits: the node's merkle.tree stays
// intact and every receipt the node issues meanwhile verifies.
func TestAuditLiveNeverDisturbsTheNode(t *testing.T) {
	dir := t.TempDir()
	ids, err := identity.LoadOrCreate(dir, identity.Options{})
	if err != nil {
		t.Fatal(err)
	}
	n, err := node.Open(node.Config{Dir: dir, Identities: ids, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
		SnapshotTxs: 1 << 30, SnapshotInterval: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	closed := false
	defer func() {
		if !closed {
			n.Close()
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	stop := make(chan struct{})
	var wg sync.WaitGroup
	var mu sync.Mutex
	var ids2 []node.TxID
	wg.Go(func() { // the load: pipelined appends
		body := bytes.Repeat([]byte("y"), 100)
		for {
			select {
			case <-stop:
				return
			default:
			}
			var futs []*node.Future
			for range 512 {
				if f, err := n.SubmitEntry("load", body); err == nil {
					futs = append(futs, f)
				}
			}
			for _, f := range futs {
				if id, err := f.Wait(ctx); err == nil {
					mu.Lock()
					ids2 = append(ids2, id)
					mu.Unlock()
				}
			}
		}
	})
	wg.Go(func() { // what each audit does first, as often as possible
		for {
			select {
			case <-stop:
				return
			default:
			}
			if tree, err := openTreeReadOnly(filepath.Join(dir, "merkle.tree")); err == nil {
				tree.Close()
			}
		}
	})
	for i := 0; i < 5; i++ {
		var out, errb bytes.Buffer
		if code := run([]string{"audit", "--live", "-q", dir}, &out, &errb); code != 0 {
			t.Errorf("audit --live #%d: exit %d: %s%s", i, code, out.String(), errb.String())
		}
	}
	close(stop)
	wg.Wait()
	if len(ids2) == 0 {
		t.Fatal("no appends")
	}
	last := ids2[len(ids2)-1]
	if err := n.WaitCommitted(ctx, last); err != nil {
		t.Fatal(err)
	}
	bad := 0
	for i, id := range ids2 {
		if i%10 != 0 && i != len(ids2)-1 {
			continue // a sample: verifying is slow under -race
		}
		r, err := n.Receipt(id)
		if err == nil {
			err = r.Verify(ids.Service.Cert)
		}
		if err != nil {
			if bad++; bad <= 3 {
				t.Errorf("receipt of %s: %v", id, err)
			}
		}
	}
	if bad > 0 {
		t.Fatalf("%d sampled receipts (of %d appends) fail while audits ran", bad, len(ids2))
	}
	// The node's merkle.tree is intact: every leaf and record agrees with
	// the ledger once the node has stopped.
	closed = true
	if err := n.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := node.CheckDerived(dir, ids.LedgerSecret, false); err != nil {
		t.Fatalf("derived files after the audits: %v", err)
	}
}

// Without --live, audit refuses a directory a running node holds.
func TestAuditRefusesALockedDirectoryWithoutLive(t *testing.T) {
	dir := smallLedger(t)
	release, err := dirlock.Lock(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer release()
	var out, errb bytes.Buffer
	if code := run([]string{"audit", "-q", dir}, &out, &errb); code == 0 || !strings.Contains(errb.String(), "--live") {
		t.Fatalf("audit of a locked directory: exit %d, stderr %q; want a refusal naming --live", code, errb.String())
	}
	out.Reset()
	errb.Reset()
	if code := run([]string{"audit", "--live", "-q", dir}, &out, &errb); code != 0 {
		t.Fatalf("audit --live of a locked directory: exit %d: %s%s", code, out.String(), errb.String())
	}
}

// The deterministic form of the race above: the node is in the middle of
// writing merkle.tree (half a record at the end). audit --live must leave
// the file byte for byte as it found it; merkle.Open used to cut the tail,
// and the node's next write then left a hole of zero hashes.
func TestAuditLiveLeavesATornTreeTailAlone(t *testing.T) {
	dir := smallLedger(t)
	path := filepath.Join(dir, "merkle.tree")
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write(bytes.Repeat([]byte{9}, 40)); err != nil {
		t.Fatal(err)
	}
	f.Close()
	before, _ := os.ReadFile(path)
	var out, errb bytes.Buffer
	if code := run([]string{"audit", "--live", "-q", dir}, &out, &errb); code != 0 {
		t.Fatalf("audit --live: exit %d: %s%s", code, out.String(), errb.String())
	}
	after, _ := os.ReadFile(path)
	if !bytes.Equal(before, after) {
		t.Fatalf("audit --live changed merkle.tree: %d bytes before, %d after", len(before), len(after))
	}
}
