package node_test

import (
	"context"
	"crypto/rand"
	"errors"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/ledgerd/ledgerd/internal/identity"
	"github.com/ledgerd/ledgerd/internal/node"
)

// stoppedNode writes count entries in small chunks, waits for the last to
// commit, stops the node and returns the ids.
func stoppedNode(t testing.TB, dir string, count int) []node.TxID {
	t.Helper()
	n := openNode(t, dir, func(c *node.Config) { c.ChunkSize = 2000; c.SignatureTxs = 5 })
	var ids []node.TxID
	for i := range count {
		ids = append(ids, appendEntry(t, n, "c", strings.Repeat("x", 100+i%3)))
		if i%10 == 9 {
			waitCommitted(t, n, ids[i]) // a signature, and a chunk end once ChunkSize is reached
		}
	}
	waitCommitted(t, n, ids[len(ids)-1])
	if err := n.Close(); err != nil {
		t.Fatal(err)
	}
	return ids
}

func openErr(t *testing.T, dir string, mod func(*node.Config)) error {
	t.Helper()
	ids, err := identity.LoadOrCreate(dir, identity.Options{})
	if err != nil {
		t.Fatal(err)
	}
	cfg := node.Config{Dir: dir, Identities: ids, Logger: quietLogger()}
	if mod != nil {
		mod(&cfg)
	}
	n, err := node.Open(cfg)
	if err == nil {
		n.Close()
	}
	return err
}

func chunkFiles(t *testing.T, dir string) []string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(dir, "ledger", "ledger_*"))
	if err != nil || len(files) < 2 {
		t.Fatalf("chunk files %v, %v", files, err)
	}
	sort.Slice(files, func(i, j int) bool { return chunkStart(files[i]) < chunkStart(files[j]) })
	return files
}

func chunkStart(path string) int {
	var s int
	name := strings.TrimPrefix(filepath.Base(path), "ledger_")
	for _, c := range name {
		if c < '0' || c > '9' {
			break
		}
		s = s*10 + int(c-'0')
	}
	return s
}

// Issue 9 item 1: a lost ledger tail is refused, not clamped.
func TestLostTailIsRefused(t *testing.T) {
	for _, surgery := range []string{"delete the last chunk", "truncate the last chunk", "delete the last chunk and raft.state"} {
		t.Run(surgery, func(t *testing.T) {
			dir := t.TempDir()
			stoppedNode(t, dir, 60)
			files := chunkFiles(t, dir)
			lastFile := files[len(files)-1]
			if strings.HasPrefix(surgery, "delete the last chunk") {
				if err := os.Remove(lastFile); err != nil {
					t.Fatal(err)
				}
				if strings.HasSuffix(surgery, "raft.state") {
					// The checkpoint still says what was committed.
					os.Remove(filepath.Join(dir, "raft.state"))
				}
			} else {
				// As an open chunk whose tail was lost: drop the
				// positions table and half the entries.
				b, _ := os.ReadFile(lastFile)
				os.Remove(lastFile)
				open := filepath.Join(dir, "ledger", "ledger_"+itoa(chunkStart(lastFile)))
				if err := os.WriteFile(open, b[:len(b)/2], 0o600); err != nil {
					t.Fatal(err)
				}
			}
			err := openErr(t, dir, nil)
			if !errors.Is(err, node.ErrLostTail) || !strings.Contains(err.Error(), "are missing from the ledger") ||
				!strings.Contains(err.Error(), "restore the ledger files") {
				t.Fatalf("Open after %s: %v; want a refusal naming the missing transactions", surgery, err)
			}
			// The documented override starts, and says so.
			if err := openErr(t, dir, func(c *node.Config) { c.UnsafeAcceptLostTail = true }); err != nil {
				t.Fatalf("Open with UnsafeAcceptLostTail: %v", err)
			}
		})
	}
}

func itoa(i int) string {
	if i == 0 {
		return "0"
	}
	var b []byte
	for ; i > 0; i /= 10 {
		b = append([]byte{byte('0' + i%10)}, b...)
	}
	return string(b)
}

// Issue 9 item 2: with raft.state missing or unreadable, a single-node
// service rebuilds it from the ledger: Committed stays Committed, and the
// node leads and commits new writes at once.
func TestRaftStateRebuiltFromLedger(t *testing.T) {
	for _, surgery := range []string{"missing", "corrupt"} {
		t.Run(surgery, func(t *testing.T) {
			dir := t.TempDir()
			ids := stoppedNode(t, dir, 30)
			path := filepath.Join(dir, "raft.state")
			if surgery == "missing" {
				os.Remove(path)
			} else {
				junk := make([]byte, 8192)
				rand.Read(junk)
				os.WriteFile(path, junk, 0o600)
			}
			n := openNode(t, dir, nil)
			defer n.Close()
			for _, id := range ids {
				if st := n.Status(id); st != node.StatusCommitted {
					t.Fatalf("after raft.state was %s: %s is %v, want Committed", surgery, id, st)
				}
			}
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			f, err := n.SubmitEntry("c", []byte("after"))
			if err != nil {
				t.Fatal(err)
			}
			id, err := f.Wait(ctx)
			if err != nil {
				t.Fatalf("write after raft.state was %s: %v", surgery, err)
			}
			if err := n.WaitCommitted(ctx, id); err != nil {
				t.Fatalf("write after raft.state was %s does not commit: %v", surgery, err)
			}
		})
	}
}

// Issue 9 item 3: a wrong ledger.secret is refused at start.
func TestWrongLedgerSecretIsRefused(t *testing.T) {
	dir := t.TempDir()
	stoppedNode(t, dir, 10)
	wrong := make([]byte, 32)
	rand.Read(wrong)
	if err := os.WriteFile(filepath.Join(dir, "ledger.secret"), wrong, 0o600); err != nil {
		t.Fatal(err)
	}
	err := openErr(t, dir, nil)
	if !errors.Is(err, node.ErrWrongSecret) || !strings.Contains(err.Error(), "ledger.secret") {
		t.Fatalf("Open with a wrong ledger secret: %v; want a refusal naming ledger.secret", err)
	}
}
