package node_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/ledgerd/ledgerd/internal/durable"

	"github.com/ledgerd/ledgerd/internal/identity"
	"github.com/ledgerd/ledgerd/internal/node"
	"github.com/ledgerd/ledgerd/internal/testfs"
)

// TestDiskFullStallsAndResumes fills the disk under a running node: the
// writes it had sequenced wait, new ones are refused with ErrNoSpace, reads,
// statuses and receipts of committed transactions go on, and once space
// returns the node resumes by itself: the waiting writes commit, new ones
// are accepted, and everything committed survives a restart.
func TestDiskFullStallsAndResumes(t *testing.T) {
	dir := testfs.Tmpfs(t, 8<<20)
	ids, err := identity.LoadOrCreate(dir, identity.Options{})
	if err != nil {
		t.Fatal(err)
	}
	small := func(c *node.Config) { c.ChunkSize = 16 << 10 }
	n := openNode(t, dir, small)
	defer func() { n.Close() }()
	var committed []node.TxID
	for i := range 20 {
		committed = append(committed, appendEntry(t, n, "c", fmt.Sprintf("before %d", i)))
	}
	waitCommitted(t, n, committed[len(committed)-1])

	free := testfs.Fill(t, dir)
	big := strings.Repeat("x", 4000)
	var pending []node.TxID
	deadline := time.Now().Add(20 * time.Second)
	for {
		f, err := n.SubmitEntry("c", []byte(big))
		if errors.Is(err, node.ErrNoSpace) {
			break
		}
		if err != nil {
			t.Fatalf("Submit on a full disk: %v, want ErrNoSpace eventually", err)
		}
		ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
		id, err := f.Wait(ctx)
		cancel()
		if err != nil {
			t.Fatalf("a write on a full disk: %v (node error: %v)", err, n.Err())
		}
		pending = append(pending, id)
		if time.Now().After(deadline) {
			t.Fatalf("%d writes accepted on a full disk, and no ErrNoSpace", len(pending))
		}
	}
	st := n.Stalled()
	if st == nil || !errors.Is(st.Err, node.ErrNoSpace) || n.Stats().Stalls.Load() != 1 {
		t.Fatalf("Stalled() = %+v, stalls %d; want a disk-full stall", st, n.Stats().Stalls.Load())
	}
	if n.Err() != nil {
		t.Fatalf("the node failed on a full disk: %v", n.Err())
	}
	for i, id := range committed {
		e, err := n.Entry(id)
		if err != nil || string(e.Contents) != fmt.Sprintf("before %d", i) {
			t.Fatalf("reading %s on a full disk: %+v, %v", id, e, err)
		}
	}
	verifyReceipt(t, n, ids, committed[3])
	for _, id := range pending {
		if s := n.Status(id); s != node.StatusPending {
			t.Fatalf("status of %s sequenced before the disk filled: %v, want Pending", id, s)
		}
	}

	free()
	for n.Stalled() != nil {
		if time.Now().After(deadline) {
			t.Fatal("the node did not resume once space returned")
		}
		time.Sleep(5 * time.Millisecond)
	}
	for _, id := range pending {
		waitCommitted(t, n, id)
	}
	after := appendEntry(t, n, "c", "after")
	waitCommitted(t, n, after)
	committed = append(append(committed, pending...), after)
	if err := n.Close(); err != nil {
		t.Fatal(err)
	}
	n = openNode(t, dir, small)
	for _, id := range committed {
		if s := n.Status(id); s != node.StatusCommitted {
			t.Fatalf("after restart, status(%s) = %v", id, s)
		}
		if _, err := n.Entry(id); err != nil {
			t.Fatalf("after restart, Entry(%s): %v", id, err)
		}
	}
	verifyReceipt(t, n, ids, after)
}

// TestNoDescriptorsStallsAndResumes runs out of file descriptors under a
// node (in a child process with a lowered RLIMIT_NOFILE): the chunk
// rollover that has its file open ahead goes through, the next one, with
// none left, stalls the node instead of stopping it (ErrNoDescriptors), and
// once descriptors are free it resumes and everything commits.
func TestNoDescriptorsStallsAndResumes(t *testing.T) {
	dir := os.Getenv("NODE_EMFILE_CHILD")
	if dir == "" {
		cmd := exec.Command(os.Args[0], "-test.run=^TestNoDescriptorsStallsAndResumes$", "-test.v")
		cmd.Env = append(os.Environ(), "NODE_EMFILE_CHILD="+t.TempDir())
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("child: %v\n%s", err, out)
		}
		return
	}
	small := func(c *node.Config) { c.ChunkSize = 2048 }
	n := openNode(t, dir, small)
	defer func() { n.Close() }()
	var ids []node.TxID
	for i := range 5 {
		ids = append(ids, appendEntry(t, n, "c", fmt.Sprintf("before %d", i)))
	}
	waitCommitted(t, n, ids[len(ids)-1])

	release := testfs.ExhaustDescriptors(t)
	deadline := time.Now().Add(20 * time.Second)
	for {
		f, err := n.SubmitEntry("c", []byte(strings.Repeat("z", 1000)))
		if errors.Is(err, node.ErrNoDescriptors) {
			break
		}
		if err != nil {
			t.Fatalf("Submit with no descriptor left: %v, want ErrNoDescriptors eventually", err)
		}
		ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
		id, err := f.Wait(ctx)
		cancel()
		if errors.Is(err, node.ErrNoDescriptors) {
			break // queued when the stall began: refused as Submit refuses
		}
		if err != nil {
			t.Fatalf("a write with no descriptor left: %v (node error: %v)", err, n.Err())
		}
		ids = append(ids, id)
		if time.Now().After(deadline) {
			t.Fatal("no stall with no descriptor left")
		}
	}
	if st := n.Stalled(); st == nil || !errors.Is(st.Err, node.ErrNoDescriptors) || n.Err() != nil {
		t.Fatalf("Stalled() = %+v, Err() = %v", st, n.Err())
	}
	if e, err := n.Entry(ids[0]); err != nil || string(e.Contents) != "before 0" {
		t.Fatalf("read with no descriptor left: %+v %v", e, err)
	}
	release()
	for n.Stalled() != nil {
		if time.Now().After(deadline) {
			t.Fatal("the node did not resume once descriptors were free")
		}
		time.Sleep(5 * time.Millisecond)
	}
	for _, id := range ids {
		waitCommitted(t, n, id)
	}
	waitCommitted(t, n, appendEntry(t, n, "c", "after"))
}

// renameFailer fails renames to ".committed" names with ENOSPC while fail is
// set, as a full file system can when the directory needs a new block.
type renameFailer struct {
	durable.FS
	fail atomic.Bool
}

func (r *renameFailer) Rename(from, to string) error {
	if r.fail.Load() && strings.HasSuffix(to, ".committed") {
		return &os.LinkError{Op: "rename", Old: from, New: to, Err: syscall.ENOSPC}
	}
	return r.FS.Rename(from, to)
}

// TestCommitRenameOnFullDisk: a full disk that refuses to rename committed
// chunk files to .committed does not stop the node; the renames are made at
// a later commit, and the ledger reopens whole.
func TestCommitRenameOnFullDisk(t *testing.T) {
	dir := t.TempDir()
	fsys := &renameFailer{FS: durable.OS}
	fsys.fail.Store(true)
	cfg := func(c *node.Config) { c.ChunkSize = 2048; c.SignatureTxs = 2; c.FS = fsys }
	n := openNode(t, dir, cfg)
	defer func() { n.Close() }()
	var ids []node.TxID
	for i := range 30 { // one signature each, so that chunks end every few entries
		ids = append(ids, appendEntry(t, n, "c", fmt.Sprintf("%d %s", i, strings.Repeat("r", 300))))
		waitCommitted(t, n, ids[i])
	}
	if names, _ := filepath.Glob(filepath.Join(dir, "ledger", "*.committed")); len(names) != 0 || n.Err() != nil {
		t.Fatalf("renames refused, yet %v; node error %v", names, n.Err())
	}
	complete, _ := filepath.Glob(filepath.Join(dir, "ledger", "ledger_*-*"))
	if len(complete) < 2 {
		t.Fatalf("only %d completed chunks: nothing to rename", len(complete))
	}
	fsys.fail.Store(false)
	last := appendEntry(t, n, "c", "after")
	waitCommitted(t, n, last)
	if names, _ := filepath.Glob(filepath.Join(dir, "ledger", "*.committed")); len(names) < len(complete) {
		t.Fatalf("after the disk freed up, committed chunk files %v, want at least %d", names, len(complete))
	}
	if err := n.Close(); err != nil {
		t.Fatal(err)
	}
	n = openNode(t, dir, cfg)
	for _, id := range append(ids, last) {
		if s := n.Status(id); s != node.StatusCommitted {
			t.Fatalf("after restart, status(%s) = %v", id, s)
		}
	}
}
