package node_test

import (
	"bytes"
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"go.etcd.io/raft/v3/raftpb"

	"github.com/ledgerd/ledgerd/internal/audit"
	"github.com/ledgerd/ledgerd/internal/identity"
	"github.com/ledgerd/ledgerd/internal/ledger"
	"github.com/ledgerd/ledgerd/internal/node"
	"github.com/ledgerd/ledgerd/internal/tables"
)

func gcm(t testing.TB, secret []byte) cipher.AEAD {
	t.Helper()
	b, err := aes.NewCipher(secret)
	if err != nil {
		t.Fatal(err)
	}
	a, err := cipher.NewGCM(b)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// rekey executes a ledger rekey through the executor, as governance does,
// and waits until it is committed.
func rekey(t testing.TB, n *node.Node) node.TxID {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	id, err := n.Exec(ctx, node.UntilCommitted, func(*node.State) ([]ledger.MapWrites, error) { return n.RekeyWrites() })
	if err != nil {
		t.Fatalf("rekey: %v", err)
	}
	return id
}

// ledgerEntries reads every entry of a data directory's ledger from disk.
func ledgerEntries(t testing.TB, dir string) map[uint64]*ledger.Entry {
	t.Helper()
	out := map[uint64]*ledger.Entry{}
	err := ledger.Walk(filepath.Join(dir, "ledger"), func(seqno uint64, raw []byte) error {
		e, err := ledger.ParseEntry(bytes.Clone(raw))
		out[seqno] = e
		return err
	}, ledger.WalkOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestLedgerRekey: entries written after a rekey transaction are encrypted
// with its new secret (and not with the first one), the ones before stay
// readable, and everything reads back and audits after a restart, a replay
// from the start, and a second rekey whose entries share its batch.
func TestLedgerRekey(t *testing.T) {
	dir := t.TempDir()
	ids, err := identity.LoadOrCreate(dir, identity.Options{})
	if err != nil {
		t.Fatal(err)
	}
	n := openNode(t, dir, func(c *node.Config) { c.ChunkSize = 2048 })
	defer func() {
		if n != nil {
			n.Close()
		}
	}()
	first := n.LatestLedgerSecret()
	if !bytes.Equal(first, ids.LedgerSecret) {
		t.Fatal("before any rekey, the latest ledger secret is not ledger.secret")
	}
	want := map[node.TxID]string{}
	write := func(body string) node.TxID {
		id := appendEntry(t, n, "c", body)
		want[id] = body
		return id
	}
	for i := range 5 {
		write(fmt.Sprintf("old %d", i))
	}
	if got := n.LatestLedgerSecretSeqno(); got != 1 {
		t.Fatalf("before any rekey, the latest secret applies from %d, want 1", got)
	}
	r1 := rekey(t, n)
	if got := n.LatestLedgerSecretSeqno(); got != int64(r1.Seqno)+1 {
		t.Fatalf("after a rekey at %d, the latest secret applies from %d", r1.Seqno, got)
	}
	second := n.LatestLedgerSecret()
	if len(second) != 32 || bytes.Equal(second, first) {
		t.Fatalf("after a rekey the latest secret is %x, want a new 32-byte one", second)
	}

	// A second rekey submitted with entries right behind it: those
	// sequenced after it, in its batch or later, use its secret.
	w2, err := n.RekeyWrites()
	if err != nil {
		t.Fatal(err)
	}
	f2, err := n.Submit(w2)
	if err != nil {
		t.Fatal(err)
	}
	var futs []*node.Future
	for i := range 10 {
		f, err := n.SubmitEntry("c", []byte(fmt.Sprintf("new %d", i)))
		if err != nil {
			t.Fatal(err)
		}
		futs = append(futs, f)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	r2, err := f2.Wait(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for i, f := range futs {
		id, err := f.Wait(ctx)
		if err != nil {
			t.Fatal(err)
		}
		want[id] = fmt.Sprintf("new %d", i)
	}
	third := n.LatestLedgerSecret()
	if bytes.Equal(third, second) || bytes.Equal(third, first) {
		t.Fatal("the second rekey did not change the latest secret")
	}
	last := write("last")
	waitCommitted(t, n, last)

	readAll := func(when string) {
		t.Helper()
		for id, body := range want {
			e, err := n.Entry(id)
			if err != nil || string(e.Contents) != body {
				t.Fatalf("%s: Entry(%s) = %q, %v; want %q", when, id, e.Contents, err, body)
			}
		}
		got := 0
		if err := n.Entries("c", 1, last.Seqno, func(e node.Entry) bool {
			if want[e.ID] != string(e.Contents) {
				t.Errorf("%s: range read %s = %q, want %q", when, e.ID, e.Contents, want[e.ID])
			}
			got++
			return true
		}); err != nil {
			t.Fatalf("%s: range read: %v", when, err)
		}
		if got != len(want) {
			t.Fatalf("%s: range read %d entries, want %d", when, got, len(want))
		}
		for id := range want {
			verifyReceipt(t, n, ids, id)
		}
	}
	readAll("after the rekeys")

	// On disk: up to and including r1 the first secret, then the second up
	// to r2, then the third; each entry fails with the secrets of the others.
	secrets := []cipher.AEAD{gcm(t, first), gcm(t, second), gcm(t, third)}
	for s, e := range ledgerEntries(t, dir) {
		k := 0
		if s > r2.Seqno {
			k = 2
		} else if s > r1.Seqno {
			k = 1
		}
		for j, a := range secrets {
			err := e.Authenticate(a)
			if j == k && err != nil {
				t.Fatalf("entry %d does not authenticate with secret %d: %v", s, k, err)
			}
			if j != k && err == nil {
				t.Fatalf("entry %d authenticates with secret %d, want only %d", s, j, k)
			}
		}
		if j := k; s == last.Seqno {
			if _, err := e.Decrypt(secrets[j]); err != nil {
				t.Fatalf("the last entry does not decrypt with the latest secret: %v", err)
			}
		}
	}

	checkAudit := func(when string) {
		t.Helper()
		keys, err := tables.NewKeyring(ids.LedgerSecret, ids.Service.Key)
		if err != nil {
			t.Fatal(err)
		}
		rep, err := audit.Dir(filepath.Join(dir, "ledger"), audit.Options{ServiceCert: ids.Service.Cert, Keyring: keys})
		if err != nil {
			t.Fatalf("%s: audit: %v", when, err)
		}
		if !rep.Authenticated || rep.Rekeys != 2 {
			t.Fatalf("%s: audit authenticated %v, %d rekeys; want true, 2", when, rep.Authenticated, rep.Rekeys)
		}
		// Without the service key: authenticated up to the first rekey.
		rep, err = audit.Dir(filepath.Join(dir, "ledger"), audit.Options{ServiceCert: ids.Service.Cert, LedgerSecret: ids.LedgerSecret})
		if err != nil || rep.Authenticated || rep.AuthenticatedTo != r1.Seqno {
			t.Fatalf("%s: audit without the service key: %+v, %v; want authenticated to %d", when, rep, err, r1.Seqno)
		}
	}

	// Restart (checkpoint), then replay from the start (no checkpoint).
	for _, restart := range []string{"a restart", "a replay from the start"} {
		if err := n.Close(); err != nil {
			t.Fatal(err)
		}
		checkAudit("before " + restart)
		if restart == "a replay from the start" {
			os.Remove(filepath.Join(dir, "state.checkpoint"))
		} else if _, err := node.CheckDerivedKeys(dir, mustKeyring(t, ids), false); err != nil {
			t.Fatalf("derived files: %v", err)
		}
		n = openNode(t, dir, func(c *node.Config) { c.ChunkSize = 2048 })
		readAll("after " + restart)
		if !bytes.Equal(n.LatestLedgerSecret(), third) {
			t.Fatalf("after %s the latest secret differs", restart)
		}
	}
	id := write("after restart")
	waitCommitted(t, n, id)
	if e := ledgerEntries(t, dir)[id.Seqno]; e.Authenticate(secrets[2]) != nil {
		t.Fatal("an entry written after the restart does not use the latest secret")
	}
	err = n.Close()
	n = nil
	if err != nil {
		t.Fatal(err)
	}

	// A wrong ledger.secret is still refused.
	wrong := make([]byte, 32)
	rand.Read(wrong)
	if err := os.WriteFile(filepath.Join(dir, identity.LedgerSecretFile), wrong, 0o600); err != nil {
		t.Fatal(err)
	}
	ids2, err := identity.LoadOrCreate(dir, identity.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := node.Open(node.Config{Dir: dir, Identities: ids2, Logger: quietLogger()}); !errors.Is(err, node.ErrWrongSecret) {
		t.Fatalf("Open with a wrong ledger.secret: %v, want ErrWrongSecret", err)
	}
}

func mustKeyring(t testing.TB, ids *identity.Identities) *tables.Keyring {
	t.Helper()
	k, err := tables.NewKeyring(ids.LedgerSecret, ids.Service.Key)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// TestClusterRekeyAndRollback: a rekey replicates (followers decrypt what
// follows it with its secret, and every node holds the same bytes); a rekey
// made by a primary cut off from the others is rolled back when it rejoins
// and forgotten: its latest secret is the committed one again, and no
// entry in any ledger is encrypted with the rolled-back secret.
func TestClusterRekeyAndRollback(t *testing.T) {
	net, nodes, dirs := startCluster(t)
	l := leader(t, nodes, -1)
	want := map[node.TxID]string{}
	write := func(n *node.Node, body string) node.TxID {
		t.Helper()
		id, err := submitUntilAccepted(t, n, "c", body)
		if err != nil {
			t.Fatal(err)
		}
		want[id] = body
		return id
	}
	for i := range 5 {
		write(nodes[l], fmt.Sprintf("old-%d", i))
	}
	r1 := rekey(t, nodes[l])
	var last node.TxID
	for i := range 5 {
		last = write(nodes[l], fmt.Sprintf("new-%d", i))
	}
	for _, n := range nodes {
		waitCommitted(t, n, last)
	}
	second := nodes[l].LatestLedgerSecret()
	for i, n := range nodes {
		if !bytes.Equal(n.LatestLedgerSecret(), second) {
			t.Fatalf("node %d: latest secret differs from the primary's", i+1)
		}
		for id, body := range want {
			if e, err := n.Entry(id); err != nil || string(e.Contents) != body {
				t.Fatalf("node %d: Entry(%s) = %q, %v; want %q", i+1, id, e.Contents, err, body)
			}
		}
	}

	// Cut the primary off; it sequences a rekey and an entry behind it.
	net.partition(uint64(l+1), true)
	cut := nodes[l]
	w, err := cut.RekeyWrites()
	if err != nil {
		t.Fatal(err)
	}
	var futs []*node.Future
	for _, ws := range [][]ledger.MapWrites{w, {entryWrite("c", "doomed")}} {
		f, err := cut.Submit(ws)
		if err != nil {
			t.Fatal(err)
		}
		futs = append(futs, f)
	}
	var doomed []node.TxID
	for _, f := range futs {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		id, err := f.Wait(ctx)
		cancel()
		if err != nil {
			t.Fatalf("the cut-off primary refused a write (%v); the rollback path was not exercised", err)
		}
		doomed = append(doomed, id)
	}
	doomedSecret := cut.LatestLedgerSecret()
	if bytes.Equal(doomedSecret, second) {
		t.Fatal("the cut-off primary's rekey did not change its latest secret")
	}
	l2 := leader(t, nodes, l)
	var after node.TxID
	for i := range 5 {
		after = write(nodes[l2], fmt.Sprintf("after-%d", i))
	}
	waitCommitted(t, nodes[l2], after)

	net.partition(uint64(l+1), false)
	waitCommitted(t, cut, after)
	for _, id := range doomed {
		if st := cut.Status(id); st != node.StatusInvalid {
			t.Fatalf("doomed write %s: status %v, want Invalid", id, st)
		}
	}
	if !bytes.Equal(cut.LatestLedgerSecret(), second) {
		t.Fatal("the rejoined node still holds the rolled-back rekey's secret")
	}
	// A rekey after the rollback follows the committed secret everywhere.
	r3 := rekey(t, nodes[l2])
	third := nodes[l2].LatestLedgerSecret()
	last = write(nodes[l2], "final")
	for _, n := range nodes {
		waitCommitted(t, n, last)
	}
	ids, err := identity.LoadOrCreate(dirs[0], identity.Options{})
	if err != nil {
		t.Fatal(err)
	}
	secrets := []cipher.AEAD{gcm(t, ids.LedgerSecret), gcm(t, second), gcm(t, third)}
	bad := gcm(t, doomedSecret)
	for i, n := range nodes {
		if !bytes.Equal(n.LatestLedgerSecret(), third) {
			t.Fatalf("node %d: latest secret is not the last rekey's", i+1)
		}
		for id, body := range want {
			if e, err := n.Entry(id); err != nil || string(e.Contents) != body {
				t.Fatalf("node %d: Entry(%s) = %q, %v; want %q", i+1, id, e.Contents, err, body)
			}
		}
		for s, e := range ledgerEntries(t, dirs[i]) {
			if s > last.Seqno {
				continue // a signature still being written
			}
			k := 0
			if s > r3.Seqno {
				k = 2
			} else if s > r1.Seqno {
				k = 1
			}
			if err := e.Authenticate(secrets[k]); err != nil {
				t.Fatalf("node %d: entry %d does not authenticate with secret %d: %v", i+1, s, k, err)
			}
			if e.Authenticate(bad) == nil {
				t.Fatalf("node %d: entry %d is encrypted with the rolled-back rekey's secret", i+1, s)
			}
		}
	}
}

// TestStaleRekeyFails: a rekey decided before another rekey changed the
// latest secret would carry a wrong chain of past secrets; it fails when
// sequenced and changes nothing.
func TestStaleRekeyFails(t *testing.T) {
	n := openNode(t, t.TempDir(), nil)
	defer n.Close()
	stale, err := n.RekeyWrites()
	if err != nil {
		t.Fatal(err)
	}
	rekey(t, n)
	latest := n.LatestLedgerSecret()
	f, err := n.Submit(stale)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if id, err := f.Wait(ctx); err == nil {
		t.Fatalf("a stale rekey was sequenced at %s", id)
	}
	if !bytes.Equal(n.LatestLedgerSecret(), latest) {
		t.Fatal("a stale rekey changed the latest secret")
	}
	id := appendEntry(t, n, "c", "after")
	waitCommitted(t, n, id)
	if e, err := n.Entry(id); err != nil || string(e.Contents) != "after" {
		t.Fatalf("Entry(%s) = %q, %v", id, e.Contents, err)
	}
}

// TestFollowerCatchesUpAcrossRekey: a follower cut off during a rekey and a
// Raft configuration change after it receives both in one append once it is
// back. It serialises the configuration change itself, with the secret of
// its seqno (the rekey's, which it has not executed yet), so its bytes equal
// the primary's: it keeps up (a wrong secret changes the entry's leaf, and
// the next signature would not verify), and reads what follows.
func TestFollowerCatchesUpAcrossRekey(t *testing.T) {
	net, nodes, _ := startCluster(t)
	l := leader(t, nodes, -1)
	f, o := (l+1)%3, (l+2)%3
	id, err := submitUntilAccepted(t, nodes[l], "c", "before")
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range nodes {
		waitCommitted(t, n, id)
	}
	net.partition(uint64(f+1), true)
	rekey(t, nodes[l])
	secret := nodes[l].LatestLedgerSecret()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	// Adding a node that is already a voter changes nothing but is logged.
	cc, err := nodes[l].ProposeConfChange(ctx, raftpb.ConfChange{Type: raftpb.ConfChangeAddNode, NodeID: uint64(o + 1)})
	if err != nil {
		t.Fatal(err)
	}
	last, err := submitUntilAccepted(t, nodes[l], "c", "after")
	if err != nil {
		t.Fatal(err)
	}
	waitCommitted(t, nodes[l], last)
	net.partition(uint64(f+1), false)
	waitCommitted(t, nodes[f], last)
	if err := nodes[f].Err(); err != nil {
		t.Fatalf("the follower stopped: %v", err)
	}
	if !bytes.Equal(nodes[f].LatestLedgerSecret(), secret) {
		t.Fatal("the follower does not hold the rekey's secret")
	}
	if e, err := nodes[f].Entry(last); err != nil || string(e.Contents) != "after" {
		t.Fatalf("follower: Entry(%s) = %q, %v", last, e.Contents, err)
	}
	rl, err1 := nodes[l].Receipt(cc)
	rf, err2 := nodes[f].Receipt(cc)
	if err1 != nil || err2 != nil || rl.LeafComponents.WriteSetDigest != rf.LeafComponents.WriteSetDigest {
		t.Fatalf("the configuration change's bytes differ between the primary and the follower (%v, %v)", err1, err2)
	}
}
