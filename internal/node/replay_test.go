package node_test

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ledgerd/ledgerd/internal/identity"
	"github.com/ledgerd/ledgerd/internal/node"
)

// lockedBuffer is a bytes.Buffer safe for the node's goroutines.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestReplayRebuildsAndLogs deletes the derived files of a closed node (the
// Merkle tree, the signature index and the checkpoint) and checks that
// opening it replays the ledger in chunk-sized reads, says so in its log
// (what it rebuilds, from where to where, and when it is done), and ends
// with the state and receipts it had.
func TestReplayRebuildsAndLogs(t *testing.T) {
	dir := t.TempDir()
	n := openNode(t, dir, func(c *node.Config) { c.ChunkSize = 4 << 10 })
	var ids []node.TxID
	for i := range 300 {
		ids = append(ids, appendEntry(t, n, "c"+string(rune('a'+i%3)), strings.Repeat("x", 100+i)))
	}
	waitCommitted(t, n, ids[len(ids)-1])
	want, err := n.LatestEntry("cb")
	if err != nil {
		t.Fatal(err)
	}
	if err := n.Close(); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"merkle.tree", "signatures.idx", "state.checkpoint"} {
		if err := os.Remove(filepath.Join(dir, f)); err != nil {
			t.Fatal(err)
		}
	}
	identities, err := identity.LoadOrCreate(dir, identity.Options{})
	if err != nil {
		t.Fatal(err)
	}
	var logs lockedBuffer
	n, err = node.Open(node.Config{Dir: dir, Identities: identities, ChunkSize: 4 << 10,
		Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	for _, line := range []string{
		`msg="replaying the ledger" rebuilding="Merkle tree and signature index" from=1 to=`,
		`msg="replayed the ledger" rebuilt="Merkle tree and signature index"`,
		`msg="replaying the ledger" rebuilding=state from=1 to=`,
		`msg="replayed the ledger" rebuilt=state`,
	} {
		if !strings.Contains(logs.String(), line) {
			t.Errorf("the log lacks %s:\n%s", line, logs.String())
		}
	}
	got, err := n.LatestEntry("cb")
	if err != nil || got.ID != want.ID || !bytes.Equal(got.Contents, want.Contents) {
		t.Fatalf("latest entry of cb after the replay: %+v, %v; want %+v", got, err, want)
	}
	for _, id := range []node.TxID{ids[0], ids[150], ids[len(ids)-1]} {
		verifyReceipt(t, n, identities, id)
	}
}

// TestCheckpointEveryBytes checks that a node checkpoints once SnapshotBytes
// of entries were appended, however few transactions that is, so that the
// replay after a crash stays bounded in bytes.
func TestCheckpointEveryBytes(t *testing.T) {
	dir := t.TempDir()
	n := openNode(t, dir, func(c *node.Config) {
		c.SnapshotBytes = 64 << 10
		c.SnapshotTxs = 1 << 30
		c.SnapshotInterval = time.Hour
	})
	defer n.Close()
	var last node.TxID
	for range 100 {
		last = appendEntry(t, n, "c", strings.Repeat("x", 1024))
	}
	waitCommitted(t, n, last)
	// The loop writes a due checkpoint before it commits anything later.
	waitCommitted(t, n, appendEntry(t, n, "c", "after"))
	b, err := os.ReadFile(filepath.Join(dir, "state.checkpoint"))
	if err != nil {
		t.Fatalf("no checkpoint after 100 KiB of entries with SnapshotBytes = 64 KiB: %v", err)
	}
	if applied := checkpointApplied(b); applied < 2 {
		t.Fatalf("checkpoint applied %d, want the genesis and some entries", applied)
	}
}

// checkpointApplied returns the applied seqno of a state.checkpoint file
// (in its authenticated envelope), 0 if it has none.
func checkpointApplied(b []byte) uint64 {
	var env struct {
		Checkpoint struct {
			Applied uint64 `json:"applied"`
		} `json:"checkpoint"`
	}
	json.Unmarshal(b, &env)
	return env.Checkpoint.Applied
}
