package ledger

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/ledgerd/ledgerd/internal/testfs"
)

// A full disk during Sync is not a failure of the Ledger: the entries stay
// readable in memory, Sync reports ENOSPC as often as it is called, and once
// space returns it writes them (chunk rollovers included); nothing written
// before is lost, and the directory reopens whole.
func TestSyncResumesAfterDiskFull(t *testing.T) {
	dir := filepath.Join(testfs.Tmpfs(t, 256<<10), "ledger")
	l, err := Open(dir, Options{Logger: testLogger(t), PreopenChunks: true})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { l.Close() }()
	var all [][]byte
	appendN := func(n int) {
		t.Helper()
		for range n {
			seqno := l.LastSeqno() + 1
			var flags uint8
			if seqno%10 == 0 {
				flags = FlagForceChunkAfter
			}
			raw := syntheticEntry(seqno, 2, flags, 700)
			if err := l.Append(raw); err != nil {
				t.Fatal(err)
			}
			all = append(all, raw)
		}
	}
	appendN(25)
	if err := l.Sync(); err != nil {
		t.Fatal(err)
	}
	free := testfs.Fill(t, filepath.Dir(dir))
	appendN(40) // several pages, and four chunk rollovers
	for range 3 {
		if err := l.Sync(); !IsNoSpace(err) {
			t.Fatalf("Sync on a full disk: %v, want ENOSPC", err)
		}
	}
	checkContents(t, l, 1, all) // readable all along, from memory
	free()
	if err := l.Sync(); err != nil {
		t.Fatalf("Sync once space returned: %v", err)
	}
	appendN(5)
	if err := l.Sync(); err != nil {
		t.Fatal(err)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	l = openT(t, dir)
	checkContents(t, l, 1, all)
	if names := dirNames(t, dir); len(names) != 7 || names[0] != "ledger_1-10" || names[6] != "ledger_61-70" {
		t.Fatalf("files after reopening: %v", names)
	}
}

// With PreopenChunks a chunk rollover needs no new descriptor: it succeeds
// with none left. The rollover after it, with no spare, fails with EMFILE
// without breaking the Ledger, and succeeds once descriptors are free.
//
// It lowers RLIMIT_NOFILE, so it runs in a child process of its own.
func TestRolloverWithoutFileDescriptors(t *testing.T) {
	if os.Getenv("LEDGER_EMFILE_CHILD") == "" {
		cmd := exec.Command(os.Args[0], "-test.run=^TestRolloverWithoutFileDescriptors$", "-test.v")
		cmd.Env = append(os.Environ(), "LEDGER_EMFILE_CHILD="+t.TempDir())
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("child: %v\n%s", err, out)
		}
		return
	}
	dir := filepath.Join(os.Getenv("LEDGER_EMFILE_CHILD"), "ledger")
	l, err := Open(dir, Options{Logger: testLogger(t), PreopenChunks: true})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	var all [][]byte
	appendChunk := func() {
		t.Helper()
		for i := range 3 {
			seqno := l.LastSeqno() + 1
			var flags uint8
			if i == 2 {
				flags = FlagForceChunkAfter
			}
			raw := syntheticEntry(seqno, 2, flags, 200)
			if err := l.Append(raw); err != nil {
				t.Fatal(err)
			}
			all = append(all, raw)
		}
	}
	appendChunk()
	if err := l.Sync(); err != nil {
		t.Fatal(err)
	}
	release := testfs.ExhaustDescriptors(t)
	appendChunk()
	if err := l.Sync(); err != nil {
		t.Fatalf("rollover with no descriptor left but a spare: %v", err)
	}
	appendChunk()
	if err := l.Sync(); !IsTooManyFiles(err) {
		t.Fatalf("rollover with no descriptor and no spare: %v, want EMFILE", err)
	}
	release()
	if err := l.Sync(); err != nil {
		t.Fatalf("Sync once descriptors are free: %v", err)
	}
	checkContents(t, l, 1, all)
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	l = openT(t, dir)
	checkContents(t, l, 1, all)
}
