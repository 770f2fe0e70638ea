package simdisk

import (
	"errors"
	"io/fs"
	"os"
	"testing"

	"github.com/ledgerd/ledgerd/internal/durable"
)

func write(t *testing.T, d *Disk, name, data string, sync bool) durable.File {
	t.Helper()
	f, err := d.OpenFile(name, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt([]byte(data), 0); err != nil {
		t.Fatal(err)
	}
	if sync {
		if err := f.Sync(); err != nil {
			t.Fatal(err)
		}
	}
	return f
}

func contents(t *testing.T, d *Disk, name string) (string, bool) {
	t.Helper()
	b, err := durable.ReadFile(d, name)
	if errors.Is(err, fs.ErrNotExist) {
		return "", false
	}
	if err != nil {
		t.Fatal(err)
	}
	return string(b), true
}

func TestPowerCutKeepsOnlyWhatWasSynced(t *testing.T) {
	d := New(Options{})
	if err := d.MkdirAll("/a", 0o700); err != nil {
		t.Fatal(err)
	}
	write(t, d, "/a/synced", "one", true)
	write(t, d, "/a/unsynced", "two", false)
	if err := durable.SyncDirFS(d, "/a"); err != nil {
		t.Fatal(err)
	}
	f := write(t, d, "/a/synced", "ONE+more", false) // overwritten, not synced
	write(t, d, "/a/new", "three", true)             // created and synced, directory not synced
	if err := d.Rename("/a/unsynced", "/a/renamed"); err != nil {
		t.Fatal(err)
	}
	if got, _ := contents(t, d, "/a/synced"); got != "ONE+more" {
		t.Fatalf("before the cut: %q", got)
	}

	after := d.PowerCut()
	if _, err := f.WriteAt([]byte("x"), 0); !errors.Is(err, ErrPowerCut) {
		t.Fatalf("write after the cut: %v", err)
	}
	if _, err := d.OpenFile("/a/synced", os.O_RDONLY, 0); !errors.Is(err, ErrPowerCut) {
		t.Fatalf("open after the cut: %v", err)
	}
	for name, want := range map[string]string{"/a/synced": "one", "/a/unsynced": ""} {
		if got, ok := contents(t, after, name); !ok || got != want {
			t.Errorf("%s after the cut: %q %v, want %q", name, got, ok, want)
		}
	}
	for _, name := range []string{"/a/new", "/a/renamed"} {
		if _, ok := contents(t, after, name); ok {
			t.Errorf("%s survived, but its directory was not synced", name)
		}
	}

	// With DurableDirs, the creation survives, with its synced contents.
	d = New(Options{DurableDirs: true})
	write(t, d, "/new", "three", true)
	write(t, d, "/unsynced", "four", false)
	after = d.PowerCut()
	if got, ok := contents(t, after, "/new"); !ok || got != "three" {
		t.Errorf("DurableDirs: /new = %q %v", got, ok)
	}
	if got, ok := contents(t, after, "/unsynced"); !ok || got != "" {
		t.Errorf("DurableDirs: /unsynced = %q %v, want empty", got, ok)
	}
}

func TestCutAtOp(t *testing.T) {
	d := New(Options{DurableDirs: true})
	cut := d.CutAtOp(5) // create, write, sync, write, sync
	f := write(t, d, "/f", "one", true)
	if _, err := f.WriteAt([]byte("two"), 0); err != nil {
		t.Fatal(err)
	}
	if d.Ops() != 4 {
		t.Fatalf("%d operations, want 4", d.Ops())
	}
	if err := f.Sync(); !errors.Is(err, ErrPowerCut) {
		t.Fatalf("second sync: %v", err)
	}
	after := <-cut
	if got, _ := contents(t, after, "/f"); got != "one" {
		t.Fatalf("after a cut at the second fsync: %q", got)
	}
	if d.Syncs() != 1 {
		t.Fatalf("%d syncs", d.Syncs())
	}
}

// TestSurvivor: Survivor is what a power cut would leave, and d stays on.
func TestSurvivor(t *testing.T) {
	d := New(Options{DurableDirs: true})
	f := write(t, d, "/f", "synced", true)
	if _, err := f.WriteAt([]byte("SYNCED+more"), 0); err != nil {
		t.Fatal(err)
	}
	after := d.Survivor()
	if got, ok := contents(t, after, "/f"); !ok || got != "synced" {
		t.Fatalf("survivor: %q %v, want the synced contents", got, ok)
	}
	if _, err := f.WriteAt([]byte("x"), 0); err != nil {
		t.Fatalf("the original disk went off: %v", err)
	}
	if got, _ := contents(t, d, "/f"); got != "xYNCED+more" {
		t.Fatalf("original after Survivor: %q", got)
	}
	write(t, after, "/g", "independent", true)
	if _, ok := contents(t, d, "/g"); ok {
		t.Fatal("the survivor shares files with the original")
	}
}
