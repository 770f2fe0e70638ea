package node_test

import (
	"encoding/base64"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

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
