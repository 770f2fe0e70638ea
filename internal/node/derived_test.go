package node_test

import (
	"encoding/base64"
	"encoding/json"
	"math/bits"
	"os"
	"path/filepath"
	"testing"

	"github.com/ledgerd/ledgerd/internal/identity"
	"github.com/ledgerd/ledgerd/internal/node"
	"github.com/ledgerd/ledgerd/internal/tables"
)

// editCheckpoint applies edit to the checkpoint's JSON, inside its
// envelope if it has one, keeping everything else (the MAC included).
func editCheckpoint(t *testing.T, dir string, edit func(cp map[string]any)) {
	t.Helper()
	path := filepath.Join(dir, "state.checkpoint")
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var top map[string]any
	if err := json.Unmarshal(b, &top); err != nil {
		t.Fatal(err)
	}
	cp := top
	if inner, ok := top["checkpoint"].(map[string]any); ok {
		cp = inner
	}
	edit(cp)
	if b, err = json.Marshal(top); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

// Issue 9 item 4: an edited state.checkpoint must not be trusted: it must
// neither grant a role to a certificate the ledger never registered nor
// point a collection's latest entry at another collection's entry.
func TestEditedCheckpointIsNotTrusted(t *testing.T) {
	dir := t.TempDir()
	n := openNode(t, dir, nil)
	a := appendEntry(t, n, "t00", "zero")
	b := appendEntry(t, n, "t01", "one")
	waitCommitted(t, n, b)
	if err := n.Close(); err != nil {
		t.Fatal(err)
	}
	editCheckpoint(t, dir, func(cp map[string]any) {
		colls := cp["collections"].(map[string]any)
		colls["t00"] = colls["t01"]
		maps, _ := cp["maps"].([]any)
		maps = append(maps, map[string]any{"name": tables.UsersMap, "entries": []any{map[string]any{
			"k": base64.StdEncoding.EncodeToString([]byte("intruder")),
			"v": base64.StdEncoding.EncodeToString([]byte(`{"assignedRole":"Administrator"}`)),
		}}})
		cp["maps"] = maps
	})
	n = openNode(t, dir, nil)
	defer n.Close()
	if v, ok := n.State().Get(tables.UsersMap, []byte("intruder")); ok {
		t.Fatalf("a user the ledger never registered is in the state: %s", v)
	}
	e, err := n.LatestEntry("t00")
	if err != nil || e.Collection != "t00" || e.ID != a {
		t.Fatalf("LatestEntry(t00) = %+v, %v; want %s of t00", e, err, a)
	}
	_ = node.StatusCommitted
}

// flipByte flips one bit of byte off (from the end if negative) of path.
func flipByte(t *testing.T, path string, off int64) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if off < 0 {
		off += int64(len(b))
	}
	b[off] ^= 0x10
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

// Issue 9 item 4: a flipped byte in merkle.tree or signatures.idx must not
// make receipts fail: every receipt served verifies, the derived files are
// rebuilt from the ledger. (merkle.Open re-checks the records of the last
// 16384 leaves, so the tree is damaged under a running node, as bit rot
// or a stray writer would, where nothing re-reads it but receipts.)
func TestCorruptTreeAndIndexNeverServeBadReceipts(t *testing.T) {
	for _, file := range []string{"merkle.tree", "signatures.idx"} {
		t.Run(file, func(t *testing.T) {
			dir := t.TempDir()
			txs := stoppedNode(t, dir, 60)
			path := filepath.Join(dir, file)
			if file == "signatures.idx" {
				// The third record names the entry after its signature,
				// which is not one; the records stay sorted.
				b, _ := os.ReadFile(path)
				b[8*2]++
				os.WriteFile(path, b, 0o600)
			}
			n := openNode(t, dir, nil)
			defer n.Close()
			if file == "merkle.tree" {
				// The stored hashes of even leaves 20..50 (the record of
				// leaf i starts at 2i-popcount(i)): each breaks the proof
				// of its sibling.
				for i := 20; i <= 50; i += 2 {
					flipByte(t, path, int64(16+32*(2*i-bits.OnesCount(uint(i)))+3))
				}
			}
			ids, _ := identity.LoadOrCreate(dir, identity.Options{})
			for _, id := range txs {
				verifyReceipt(t, n, ids, id)
			}
		})
	}
}

// A merkle.tree whose header is damaged is derived data: the node rebuilds
// it from the ledger instead of refusing to start.
func TestDamagedTreeHeaderIsRebuilt(t *testing.T) {
	dir := t.TempDir()
	txs := stoppedNode(t, dir, 30)
	flipByte(t, filepath.Join(dir, "merkle.tree"), 2)
	n := openNode(t, dir, nil)
	defer n.Close()
	ids, _ := identity.LoadOrCreate(dir, identity.Options{})
	for _, id := range txs {
		verifyReceipt(t, n, ids, id)
	}
}
