package audit_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ledgerd/ledgerd/internal/audit"
	"github.com/ledgerd/ledgerd/internal/identity"
	"github.com/ledgerd/ledgerd/internal/merkle"
	"github.com/ledgerd/ledgerd/internal/node"
)

// buildLedger writes a ledger of a few hundred transactions over several
// chunk files and returns its data directory.
func buildLedger(t testing.TB, entries int) string {
	t.Helper()
	dir := t.TempDir()
	n := openFixtureNode(t, dir)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var last node.TxID
	for i := range entries {
		f, err := n.SubmitEntry(fmt.Sprintf("c%d", i%4), bytes.Repeat([]byte{byte('a' + i%26)}, 100+i%400))
		if err != nil {
			t.Fatal(err)
		}
		if i%37 == 0 || i == entries-1 { // vary batch sizes; a signature after each
			if last, err = f.Wait(ctx); err != nil {
				t.Fatal(err)
			}
			if err := n.WaitCommitted(ctx, last); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := n.WaitCommitted(ctx, last); err != nil {
		t.Fatal(err)
	}
	if err := n.Close(); err != nil {
		t.Fatal(err)
	}
	return dir
}

// openFixtureNode opens the node of a fixture's data directory (16 KiB
// chunks, so that a few hundred entries span several chunk files).
func openFixtureNode(t testing.TB, dir string) *node.Node {
	t.Helper()
	ids, err := identity.LoadOrCreate(dir, identity.Options{})
	if err != nil {
		t.Fatal(err)
	}
	n, err := node.Open(node.Config{Dir: dir, Identities: ids, ChunkSize: 16 << 10,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// openTailLedger is buildLedger whose last chunk file is open (not yet
// completed), as the torn-tail cases need. Where chunks end depends on
// when signatures are proposed (a signature ends a chunk that has reached
// ChunkSize), so if the ledger happens to end on a complete chunk, one more
// entry is appended and committed: its chunk holds it and its signature,
// far below ChunkSize.
func openTailLedger(t testing.TB, entries int) string {
	t.Helper()
	dir := buildLedger(t, entries)
	if ents := locate(t, dir); !ents[len(ents)-1].complete {
		return dir
	}
	n := openFixtureNode(t, dir)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	f, err := n.SubmitEntry("c0", []byte("open the next chunk"))
	if err != nil {
		t.Fatal(err)
	}
	id, err := f.Wait(ctx)
	if err == nil {
		err = n.WaitCommitted(ctx, id)
	}
	if err != nil {
		t.Fatal(err)
	}
	if err := n.Close(); err != nil {
		t.Fatal(err)
	}
	if ents := locate(t, dir); ents[len(ents)-1].complete {
		t.Fatal("the fixture still ends on a complete chunk; the torn-tail cases need an open one")
	}
	return dir
}

// copyDir copies a data directory for one tamper case.
func copyDir(t testing.TB, src string) string {
	t.Helper()
	dst := t.TempDir()
	err := filepath.Walk(src, func(p string, info os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		if info.IsDir() {
			return os.MkdirAll(filepath.Join(dst, rel), 0o700)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(dst, rel), b, info.Mode())
	})
	if err != nil {
		t.Fatal(err)
	}
	return dst
}

// located is one entry's place on disk, found by walking the chunk files
// independently of the code under test (CCF ledger format §1.2–1.4).
type located struct {
	file      string
	seqno     uint64
	off       int64 // entry header offset
	size      int64 // body size
	publicLen int64
	complete  bool  // the file has a positions table
	tableOff  int64 // its offset
	index     int   // entry index within the file
}

func (l located) publicOff() int64     { return l.off + 8 + 28 + 8 }
func (l located) ciphertextOff() int64 { return l.publicOff() + l.publicLen }

func locate(t testing.TB, dir string) []located {
	t.Helper()
	names, _ := filepath.Glob(filepath.Join(dir, "ledger", "ledger_*"))
	start := func(p string) uint64 {
		s := strings.TrimPrefix(filepath.Base(p), "ledger_")
		s, _, _ = strings.Cut(s, "-")
		s, _, _ = strings.Cut(s, ".")
		v, _ := strconv.ParseUint(s, 10, 64)
		return v
	}
	sort.Slice(names, func(i, j int) bool { return start(names[i]) < start(names[j]) })
	var out []located
	for _, name := range names {
		b, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		table := int64(binary.LittleEndian.Uint64(b))
		end := int64(len(b))
		if table != 0 {
			end = table
		}
		seqno := start(name)
		for off, i := int64(8), 0; off+8 <= end; i++ {
			var sz [8]byte
			copy(sz[:6], b[off+2:off+8])
			size := int64(binary.LittleEndian.Uint64(sz[:]))
			pub := int64(binary.LittleEndian.Uint64(b[off+8+28:]))
			out = append(out, located{file: name, seqno: seqno, off: off, size: size, publicLen: pub, complete: table != 0, tableOff: table, index: i})
			off += 8 + size
			seqno++
		}
	}
	return out
}

func flip(t testing.TB, file string, off int64, mask byte) {
	t.Helper()
	f, err := os.OpenFile(file, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var b [1]byte
	if _, err := f.ReadAt(b[:], off); err != nil {
		t.Fatal(err)
	}
	b[0] ^= mask
	if _, err := f.WriteAt(b[:], off); err != nil {
		t.Fatal(err)
	}
}

func auditOpts(t testing.TB, dir string, withSecret bool) (audit.Options, func()) {
	t.Helper()
	ids, err := identity.LoadOrCreate(dir, identity.Options{})
	if err != nil {
		t.Fatal(err)
	}
	opts := audit.Options{ServiceCert: ids.Service.Cert}
	if withSecret {
		opts.LedgerSecret = ids.LedgerSecret
	}
	tree, err := merkle.Open(filepath.Join(dir, "merkle.tree"))
	if err != nil {
		t.Fatal(err)
	}
	opts.TreeLeaf = func(s uint64) (merkle.Hash, bool) {
		h, err := tree.Leaf(s)
		return h, err == nil
	}
	return opts, func() { tree.Close() }
}

func runAudit(t testing.TB, dir string, withSecret bool) error {
	t.Helper()
	opts, closeTree := auditOpts(t, dir, withSecret)
	defer closeTree()
	_, err := audit.Dir(filepath.Join(dir, "ledger"), opts)
	return err
}

func wantFailureAt(t *testing.T, err error, seqno uint64) {
	t.Helper()
	var f *audit.Failure
	if !errors.As(err, &f) {
		t.Fatalf("audit error = %v, want a Failure at seqno %d", err, seqno)
	}
	if f.Seqno != seqno {
		t.Fatalf("audit names seqno %d (%s), want %d", f.Seqno, f.Reason, seqno)
	}
}

func TestAuditPassesOnIntactLedger(t *testing.T) {
	dir := buildLedger(t, 400)
	for _, secret := range []bool{true, false} {
		opts, closeTree := auditOpts(t, dir, secret)
		rep, err := audit.Dir(filepath.Join(dir, "ledger"), opts)
		closeTree()
		if err != nil {
			t.Fatalf("audit (secret=%v) of an intact ledger: %v", secret, err)
		}
		if rep.Entries < 400 || rep.Signatures == 0 || rep.LastSigned != rep.LastSeqno {
			t.Fatalf("report = %+v", rep)
		}
	}
	files, _ := filepath.Glob(filepath.Join(dir, "ledger", "ledger_*.committed"))
	if len(files) < 2 {
		t.Fatalf("want several committed chunk files, got %v", files)
	}
}

func TestAuditDetectsTampering(t *testing.T) {
	base := buildLedger(t, 400)
	ents := locate(t, base)
	var user, sig, tabled located
	for _, e := range ents {
		if e.seqno < 20 || e.seqno > uint64(len(ents))-20 {
			continue
		}
		if e.publicLen > 200 && sig.seqno == 0 {
			sig = e // the only entries with a large public domain are signatures
		} else if e.publicLen <= 81 && user.seqno == 0 && e.size > 300 {
			user = e
		}
		if e.complete && e.index == 3 && tabled.seqno == 0 {
			tabled = e
		}
	}
	if user.seqno == 0 || sig.seqno == 0 || tabled.seqno == 0 {
		t.Fatalf("fixture lacks targets: user=%d sig=%d tabled=%d", user.seqno, sig.seqno, tabled.seqno)
	}
	sigValueOff := func(dir string) int64 {
		b, _ := os.ReadFile(sig.file)
		pub := b[sig.publicOff() : sig.publicOff()+sig.publicLen]
		i := bytes.Index(pub, []byte(`"sig":"`))
		if i < 0 {
			t.Fatal("no sig field in the signature transaction")
		}
		return sig.publicOff() + int64(i) + 7 + 10
	}
	cases := []struct {
		name   string
		target located
		off    func(dir string) int64
		mask   byte
		secret []bool
	}{
		{"entry header version", user, func(string) int64 { return user.off }, 0x02, []bool{true, false}},
		{"entry header flags", user, func(string) int64 { return user.off + 1 }, 0x01, []bool{true, false}},
		{"entry header size", user, func(string) int64 { return user.off + 2 }, 0x01, []bool{true, false}},
		{"GCM tag", user, func(string) int64 { return user.off + 8 + 3 }, 0x01, []bool{true, false}},
		{"public domain (claims digest)", user, func(string) int64 { return user.publicOff() + 12 }, 0x01, []bool{true, false}},
		{"ciphertext", user, func(string) int64 { return user.ciphertextOff() + 5 }, 0x01, []bool{true, false}},
		{"signature", sig, sigValueOff, 0x01, []bool{true, false}},
		{"positions table", tabled, func(string) int64 { return tabled.tableOff + 4*int64(tabled.index) }, 0x01, []bool{true, false}},
	}
	for _, c := range cases {
		for _, secret := range c.secret {
			t.Run(fmt.Sprintf("%s/secret=%v", c.name, secret), func(t *testing.T) {
				dir := copyDir(t, base)
				rel, _ := filepath.Rel(base, c.target.file)
				flip(t, filepath.Join(dir, rel), c.off(base), c.mask)
				wantFailureAt(t, runAudit(t, dir, secret), c.target.seqno)
			})
		}
	}
}

// A torn tail is what a crash leaves after the last fsynced entry: a write
// in progress, never committed. The node cuts it and goes on, and the audit
// of what it writes next passes.
func TestTornTailIsRecovered(t *testing.T) {
	base := openTailLedger(t, 200)
	ents := locate(t, base)
	last := ents[len(ents)-1]
	for _, partial := range [][]byte{{1}, {1, 0, 0xe8, 0x03, 0, 0, 0}, {1, 0, 0xe8, 0x03, 0, 0, 0, 0, 9, 9, 9}} {
		t.Run(fmt.Sprint(len(partial)), func(t *testing.T) {
			dir := copyDir(t, base)
			rel, _ := filepath.Rel(base, last.file)
			f, err := os.OpenFile(filepath.Join(dir, rel), os.O_WRONLY|os.O_APPEND, 0)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := f.Write(partial); err != nil {
				t.Fatal(err)
			}
			f.Close()
			ids, _ := identity.LoadOrCreate(dir, identity.Options{})
			n, err := node.Open(node.Config{Dir: dir, Identities: ids, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
			if err != nil {
				t.Fatalf("open after a torn tail: %v", err)
			}
			recoveredTo(t, n, last.seqno)
			appendAndAudit(t, n, dir)
		})
	}
}

// Cutting into the last entry, which is committed (a signature the node
// waited for), loses committed history: the node refuses to start, and only
// the documented override starts it, after which the audit of what it
// writes passes.
func TestTruncatedCommittedTailIsRefused(t *testing.T) {
	base := openTailLedger(t, 200)
	ents := locate(t, base)
	last := ents[len(ents)-1]
	for _, cut := range []int64{1, 5, 8, 20, last.size / 2, last.size + 7} {
		t.Run(fmt.Sprint(cut), func(t *testing.T) {
			dir := copyDir(t, base)
			rel, _ := filepath.Rel(base, last.file)
			file := filepath.Join(dir, rel)
			if err := os.Truncate(file, last.off+8+last.size-cut); err != nil {
				t.Fatal(err)
			}
			ids, _ := identity.LoadOrCreate(dir, identity.Options{})
			cfg := node.Config{Dir: dir, Identities: ids, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
			if n, err := node.Open(cfg); !errors.Is(err, node.ErrLostTail) {
				if err == nil {
					n.Close()
				}
				t.Fatalf("open after losing committed %d: %v, want ErrLostTail", last.seqno, err)
			}
			cfg.UnsafeAcceptLostTail = true
			n, err := node.Open(cfg)
			if err != nil {
				t.Fatalf("open with the override: %v", err)
			}
			recoveredTo(t, n, last.seqno-1)
			appendAndAudit(t, n, dir)
		})
	}
}

// recoveredTo checks that n recovered its log to want: a node that starts
// primary begins a new view (Raft's empty entry) and signs it at once
// (internal/node/doc.go, Failover), so once that signature is committed,
// every entry after want must be of the new view, and want of an older one
// (a torn tail taken for an entry would sit after want in the old view).
func recoveredTo(t *testing.T, n *node.Node, want uint64) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for n.CommittedSeqno() <= want {
		if time.Now().After(deadline) {
			n.Close()
			t.Fatalf("the node did not commit its new view's signature after %d (committed %d, last %d)", want, n.CommittedSeqno(), n.LastSeqno())
		}
		time.Sleep(5 * time.Millisecond) // polling the node's commit, bounded by the deadline
	}
	view := n.CommittedTxID().View
	if n.Status(node.TxID{View: view, Seqno: want}) == node.StatusCommitted {
		n.Close()
		t.Fatalf("seqno %d is of the node's new view %d: the recovered log did not end there", want, view)
	}
	for s := want + 1; s <= n.CommittedSeqno(); s++ {
		if st := n.Status(node.TxID{View: view, Seqno: s}); st != node.StatusCommitted {
			n.Close()
			t.Fatalf("seqno %d after the recovered %d is not of the new view %d (%v): the log was not cut at %d", s, want, view, st, want)
		}
	}
}

// appendAndAudit appends one entry, waits for it to commit, closes the node
// and audits its directory strictly.
func appendAndAudit(t *testing.T, n *node.Node, dir string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	f, err := n.SubmitEntry("c", []byte("after recovery"))
	if err != nil {
		n.Close()
		t.Fatal(err)
	}
	id, err := f.Wait(ctx)
	if err == nil {
		err = n.WaitCommitted(ctx, id)
	}
	if err != nil {
		n.Close()
		t.Fatal(err)
	}
	if err := n.Close(); err != nil {
		t.Fatal(err)
	}
	if err := runAudit(t, dir, true); err != nil {
		t.Fatalf("audit after tail recovery: %v", err)
	}
}

// A running node's ledger may end with a write in progress: strict audits
// fail on it, live audits report it.
func TestAuditLiveAcceptsAWriteInProgress(t *testing.T) {
	dir := buildLedger(t, 10) // well under a chunk: the last file is open
	ents := locate(t, dir)
	last := ents[len(ents)-1]
	if last.complete {
		t.Fatal("fixture ended on a complete chunk")
	}
	f, err := os.OpenFile(last.file, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	partial := []byte{1, 0, 0xe8, 0x03, 0, 0, 0, 0, 9, 9, 9} // a header announcing 1000 bytes, then 3
	f.Write(partial)
	f.Close()
	if err := runAudit(t, dir, true); err == nil {
		t.Fatal("a strict audit accepted bytes after the last entry")
	}
	opts, closeTree := auditOpts(t, dir, true)
	defer closeTree()
	opts.Live = true
	rep, err := audit.Dir(filepath.Join(dir, "ledger"), opts)
	if err != nil {
		t.Fatalf("live audit: %v", err)
	}
	if rep.TornTail == nil || rep.TornTail.Bytes != int64(len(partial)) || rep.TornTail.Seqno != last.seqno+1 {
		t.Fatalf("torn tail = %+v, want %d bytes at seqno %d", rep.TornTail, len(partial), last.seqno+1)
	}
}
