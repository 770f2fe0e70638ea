package node_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"go.etcd.io/raft/v3/raftpb"

	"github.com/ledgerd/ledgerd/internal/consensus"
	"github.com/ledgerd/ledgerd/internal/durable"
	"github.com/ledgerd/ledgerd/internal/durable/simdisk"
	"github.com/ledgerd/ledgerd/internal/identity"
	"github.com/ledgerd/ledgerd/internal/node"
)

// snapCluster is three members on memNet whose configurations are kept,
// so that a test can stop, rebuild and restart them.
type snapCluster struct {
	t     *testing.T
	net   *memNet
	base  string
	ids   map[uint64]*identity.Identities
	cfgs  map[uint64]node.Config
	nodes map[uint64]*node.Node
	mu    sync.Mutex
	// fetch answers FetchSnapshot of member to from member from (default:
	// from's latest committed snapshot file).
	fetch func(to, from uint64) ([]byte, error)
	logs  map[uint64]*lockedBuffer
}

func newSnapCluster(t *testing.T, mod func(id uint64, c *node.Config)) *snapCluster {
	t.Helper()
	c := &snapCluster{t: t, net: &memNet{nodes: map[uint64]*node.Node{}, cut: map[uint64]bool{}}, base: t.TempDir(),
		ids: map[uint64]*identity.Identities{}, cfgs: map[uint64]node.Config{}, nodes: map[uint64]*node.Node{}, logs: map[uint64]*lockedBuffer{}}
	c.fetch = c.latest
	for id := uint64(1); id <= 3; id++ {
		c.configure(id, consensus.Config{Peers: []uint64{1, 2, 3}}, mod)
		c.start(id)
	}
	t.Cleanup(func() {
		for id := range c.nodes {
			c.stop(id)
		}
	})
	return c
}

// configure sets up member id's directory, identity and configuration.
func (c *snapCluster) configure(id uint64, rc consensus.Config, mod func(id uint64, c *node.Config)) {
	t := c.t
	dir := filepath.Join(c.base, fmt.Sprint(id))
	if id > 1 {
		copyIdentity(t, filepath.Join(c.base, "1"), dir, false)
	}
	ids, err := identity.LoadOrCreate(dir, identity.Options{})
	if err != nil {
		t.Fatal(err)
	}
	c.ids[id] = ids
	c.logs[id] = &lockedBuffer{}
	rc.ID, rc.TickInterval, rc.ElectionTicks, rc.HeartbeatTicks = id, 5*time.Millisecond, 20, 2
	cfg := node.Config{
		Dir: dir, Identities: ids, Logger: slog.New(slog.NewTextHandler(c.logs[id], &slog.HandlerOptions{Level: slog.LevelInfo})),
		Raft:               rc,
		Transport:          memTransport{c.net},
		NoBootstrap:        id != 1,
		ChunkSize:          8 << 10,
		SnapshotTxInterval: 10,
	}
	cfg.FetchSnapshot = func(ctx context.Context, from uint64) ([]byte, error) {
		c.mu.Lock()
		f := c.fetch
		c.mu.Unlock()
		return f(id, from)
	}
	if mod != nil {
		mod(id, &cfg)
	}
	c.cfgs[id] = cfg
}

// copyIdentity copies the service's files (and, with node, the node's
// identity) from one data directory to another.
func copyIdentity(t *testing.T, from, to string, withNode bool) {
	t.Helper()
	if err := os.MkdirAll(to, 0o700); err != nil {
		t.Fatal(err)
	}
	files := []string{identity.ServiceCertFile, identity.ServiceKeyFile, identity.LedgerSecretFile}
	if withNode {
		files = append(files, identity.NodeCertFile, identity.NodeKeyFile)
	}
	for _, f := range files {
		b, err := os.ReadFile(filepath.Join(from, f))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(to, f), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
}

func (c *snapCluster) latest(_, from uint64) ([]byte, error) {
	c.net.mu.Lock()
	n := c.net.nodes[from]
	c.net.mu.Unlock()
	if n == nil {
		return nil, errors.New("no such member")
	}
	_, b, err := n.LatestSnapshot()
	return b, err
}

func (c *snapCluster) setFetch(f func(to, from uint64) ([]byte, error)) {
	c.mu.Lock()
	c.fetch = f
	c.mu.Unlock()
}

func (c *snapCluster) start(id uint64) *node.Node {
	c.t.Helper()
	n, err := node.Open(c.cfgs[id])
	if err != nil {
		c.t.Fatalf("opening member %d: %v", id, err)
	}
	c.nodes[id] = n
	c.net.mu.Lock()
	c.net.nodes[id] = n
	c.net.mu.Unlock()
	return n
}

func (c *snapCluster) stop(id uint64) {
	c.net.mu.Lock()
	delete(c.net.nodes, id)
	c.net.mu.Unlock()
	if n := c.nodes[id]; n != nil {
		n.Close()
	}
	delete(c.nodes, id)
}

// primary waits for one of the running members to lead.
func (c *snapCluster) primary() uint64 {
	c.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		for id, n := range c.nodes {
			if n.IsPrimary() {
				return id
			}
		}
		time.Sleep(5 * time.Millisecond) // polling for an election, bounded by the deadline
	}
	c.t.Fatal("no primary elected")
	return 0
}

// write appends an entry on the primary and waits until it is committed.
func (c *snapCluster) write(body string) node.TxID {
	c.t.Helper()
	for try := 0; ; try++ {
		p := c.nodes[c.primary()]
		id, err := submitUntilAccepted(c.t, p, "snap", body)
		if err == nil {
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			err = p.WaitCommitted(ctx, id)
			cancel()
			if err == nil {
				return id
			}
		}
		if try == 5 {
			c.t.Fatalf("writing %q: %v", body, err)
		}
	}
}

// waitCommitted waits until member id has committed seqno.
func (c *snapCluster) waitCommitted(id uint64, seqno uint64) {
	c.t.Helper()
	n := c.nodes[id]
	deadline := time.Now().Add(30 * time.Second)
	for n.CommittedSeqno() < seqno {
		if time.Now().After(deadline) {
			c.t.Fatalf("member %d committed %d, not %d, in 30 s; its log:\n%s", id, n.CommittedSeqno(), seqno, tail(c.logs[id].String(), 3000))
		}
		time.Sleep(5 * time.Millisecond) // polling for replication, bounded by the deadline
	}
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

// behindASnapshotStartedPrimary builds the case Raft snapshots are for:
// member 3 stops early; the others go on past a committed snapshot at S
// beyond member 3's commit point; member 2 is rebuilt from that snapshot
// (it holds nothing up to S; member 1, restarted, brings it up to date);
// member 1 stops. Member 3 restarted then needs
// entries only a snapshot can give it, and member 2 is the only possible
// primary. It returns the ids written (before member 3 stopped, and after)
// and S.
func (c *snapCluster) behindASnapshotStartedPrimary(restart3 bool) (early, later []node.TxID, bodies map[node.TxID]string, s uint64) {
	c.t.Helper()
	bodies = map[node.TxID]string{}
	for i := range 3 {
		id := c.write(fmt.Sprintf("early-%d", i))
		early = append(early, id)
		bodies[id] = fmt.Sprintf("early-%d", i)
	}
	c.waitCommitted(3, early[len(early)-1].Seqno)
	c.stop(3)
	behind := early[len(early)-1].Seqno
	for i := 0; ; i++ {
		body := fmt.Sprintf("later-%d-%s", i, strings.Repeat("z", 300))
		id := c.write(body)
		later = append(later, id)
		bodies[id] = body
		if i >= 30 {
			if name, _, err := c.nodes[2].LatestSnapshot(); err == nil {
				if at, _, _ := node.ParseSnapshotName(name); at > behind+10 {
					s = at
					break
				}
			}
		}
		if i > 400 {
			c.t.Fatal("no committed snapshot on member 2 after 400 writes")
		}
	}
	// Member 2 starts again from its latest snapshot, in a new directory.
	_, data, err := c.nodes[2].LatestSnapshot()
	if err != nil {
		c.t.Fatal(err)
	}
	// Both stop, so that member 1 forgets what member 2 had acknowledged
	// (a Raft member may not lose its log under the same id otherwise: a
	// real node would join anew, with a new id).
	c.stop(1)
	c.stop(2)
	cfg := c.cfgs[2]
	old := cfg.Dir
	cfg.Dir = old + "-from-snapshot"
	copyIdentity(c.t, old, cfg.Dir, true)
	if _, err := node.InstallSnapshot(nil, cfg.Dir, c.ids[2].Service.Cert, data); err != nil {
		c.t.Fatal(err)
	}
	c.cfgs[2] = cfg
	c.start(1)
	c.start(2)
	last := c.write("member 2 is back")
	later = append(later, last)
	bodies[last] = "member 2 is back"
	c.waitCommitted(2, last.Seqno)
	if got := node.SnapshotBase(c.nodes[2]); got != s {
		c.t.Fatalf("member 2 started from %d, want %d", got, s)
	}
	c.stop(1)
	if restart3 {
		c.start(3)
	}
	return early, later, bodies, s
}

// TestRaftSnapshotCatchUp: a backup stopped while the others moved past a
// snapshot, restarted when the only primary possible started from that
// snapshot (it holds no entry the backup lacks), catches up through a
// Raft snapshot: it fetches the primary's snapshot, verifies and installs
// it, and goes on from S+1. It then has the primary's committed state,
// byte-identical committed chunk files from S+1, answers reads up to S as a
// snapshot-started node does, serves the later entries, and restarts on its
// directory. Without MsgSnap it never catches up (it stays at its commit).
func TestRaftSnapshotCatchUp(t *testing.T) {
	c := newSnapCluster(t, nil)
	early, later, bodies, s := c.behindASnapshotStartedPrimary(true)
	if p := c.primary(); p != 2 {
		t.Fatalf("member %d leads, want 2 (member 3 is behind)", p)
	}
	last := c.write("after the install")
	bodies[last] = "after the install"
	later = append(later, last)
	c.waitCommitted(3, last.Seqno)
	n3, n2 := c.nodes[3], c.nodes[2]
	base := node.SnapshotBase(n3)
	if base < s {
		t.Fatalf("member 3 installed a snapshot at %d, want at least %d", base, s)
	}
	if first := node.LedgerFirst(n3); first != base+1 {
		t.Fatalf("member 3's ledger starts at %d, want %d", first, base+1)
	}
	if !strings.Contains(c.logs[3].String(), "installed the primary's snapshot") {
		t.Fatalf("member 3 did not log the install:\n%s", tail(c.logs[3].String(), 3000))
	}
	checkAfterInstall(t, c, n3, n2, early, later, bodies, base)

	// A restart on its directory starts from the installed snapshot.
	c.stop(3)
	n3 = c.start(3)
	last = c.write("after the restart")
	bodies[last] = "after the restart"
	later = append(later, last)
	c.waitCommitted(3, last.Seqno)
	if got := node.SnapshotBase(n3); got != base {
		t.Fatalf("member 3 restarted from %d, want %d", got, base)
	}
	checkAfterInstall(t, c, n3, n2, early, later, bodies, base)
	if _, err := os.Stat(filepath.Join(c.cfgs[3].Dir, "ledger.before-snapshot-"+fmt.Sprint(base))); err != nil {
		t.Fatalf("member 3's previous ledger was not kept aside: %v", err)
	}
}

// checkAfterInstall compares member n3, which installed a snapshot at
// base, with the primary n2.
func checkAfterInstall(t *testing.T, c *snapCluster, n3, n2 *node.Node, early, later []node.TxID, bodies map[node.TxID]string, base uint64) {
	t.Helper()
	for _, id := range append(append([]node.TxID(nil), early...), later...) {
		e, err := n3.Entry(id)
		if id.Seqno <= base {
			if !errors.Is(err, node.ErrBeforeSnapshot) {
				t.Fatalf("member 3 reads %s (before its snapshot at %d): %v, want ErrBeforeSnapshot", id, base, err)
			}
			if st := n3.Status(id); st != node.StatusCommitted {
				t.Fatalf("member 3: status of %s is %v, want Committed", id, st)
			}
			continue
		}
		if err != nil || string(e.Contents) != bodies[id] {
			t.Fatalf("member 3 reads %s: %.20q, %v; want %.20q", id, e.Contents, err, bodies[id])
		}
		verifyReceipt(t, n3, c.ids[3], id)
	}
	// The same committed state at the same commit point.
	deadline := time.Now().Add(20 * time.Second)
	for {
		s2, st2 := node.CommittedState(n2)
		s3, st3 := node.CommittedState(n3)
		if s2 == s3 && st2 == st3 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("committed states differ: member 2 at %d, member 3 at %d", s2, s3)
		}
		time.Sleep(5 * time.Millisecond) // polling for the last commit, bounded by the deadline
	}
	// Byte-identical committed chunk files from base+1.
	chunks3 := committedChunks(t, durable.OS, filepath.Join(c.cfgs[3].Dir, "ledger"))
	if len(chunks3) == 0 || !strings.HasPrefix(chunks3[0], fmt.Sprintf("ledger_%d-", base+1)) {
		t.Fatalf("member 3's committed chunks %v do not start at %d", chunks3, base+1)
	}
	for _, name := range chunks3 {
		a, err := os.ReadFile(filepath.Join(c.cfgs[3].Dir, "ledger", name))
		if err != nil {
			t.Fatal(err)
		}
		b, err := os.ReadFile(filepath.Join(c.cfgs[2].Dir, "ledger", name))
		if err != nil {
			t.Fatalf("member 3 has %s, member 2 not: %v", name, err)
		}
		if !bytes.Equal(a, b) {
			t.Fatalf("chunk %s differs between members 3 and 2", name)
		}
	}
}

func committedChunks(t *testing.T, fsys durable.FS, dir string) []string {
	t.Helper()
	ents, err := fsys.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), "ledger_") && strings.HasSuffix(e.Name(), ".committed") {
			out = append(out, e.Name())
		}
	}
	return out
}

// TestForgedRaftSnapshotRefused: a snapshot that does not verify against
// the service certificate (one hex digit of its Merkle tree changed, the
// framing and JSON intact: it parses) is refused by the backup before it touches anything: it installs
// nothing, keeps its ledger and commit point, and logs the refusal; the
// real snapshot, once served, is installed. Without VerifySnapshot on the
// received file, the forged snapshot would be installed.
func TestForgedRaftSnapshotRefused(t *testing.T) {
	c := newSnapCluster(t, nil)
	_, _, _, s := c.behindASnapshotStartedPrimary(false)
	var mu sync.Mutex
	forged := 0
	c.setFetch(func(to, from uint64) ([]byte, error) {
		b, err := c.latest(to, from)
		if err != nil {
			return nil, err
		}
		// One hex digit of the Merkle tree's edge changed: the JSON and
		// the framing stay valid.
		i := bytes.Index(b, []byte(`"frontier":["`))
		if i < 0 {
			return nil, errors.New("no frontier in the snapshot")
		}
		i += len(`"frontier":["`)
		f := bytes.Clone(b)
		if f[i] == '0' {
			f[i] = '1'
		} else {
			f[i] = '0'
		}
		if _, err := node.ParseSnapshot(f); err != nil {
			return nil, fmt.Errorf("the forged snapshot does not parse: %v", err)
		}
		mu.Lock()
		forged++
		mu.Unlock()
		return f, nil
	})
	before, _ := os.ReadDir(filepath.Join(c.cfgs[3].Dir, "ledger"))
	n3 := c.start(3)
	commit3 := n3.CommittedSeqno()
	deadline := time.Now().Add(30 * time.Second)
	for {
		mu.Lock()
		k := forged
		mu.Unlock()
		if k >= 2 && strings.Contains(c.logs[3].String(), "refused the primary's snapshot") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("member 3 fetched %d forged snapshots and did not refuse them twice in 30 s (installed at %d); its log:\n%s", k, node.SnapshotBase(n3), tail(c.logs[3].String(), 3000))
		}
		time.Sleep(5 * time.Millisecond) // polling for the refusals, bounded by the deadline
	}
	if got := node.SnapshotBase(n3); got != 0 {
		t.Fatalf("member 3 installed a forged snapshot at %d", got)
	}
	if got := n3.CommittedSeqno(); got != commit3 || got >= s {
		t.Fatalf("member 3 committed %d after refusing (was %d, snapshot at %d)", got, commit3, s)
	}
	if _, err := os.Stat(filepath.Join(c.cfgs[3].Dir, "startup.snapshot")); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("member 3 wrote startup.snapshot from a forged snapshot: %v", err)
	}
	after, _ := os.ReadDir(filepath.Join(c.cfgs[3].Dir, "ledger"))
	if len(after) < len(before) || len(before) == 0 {
		t.Fatalf("member 3's ledger changed: %d files before, %d after", len(before), len(after))
	}
	// The real one is installed.
	c.setFetch(c.latest)
	last := c.write("after the refusals")
	c.waitCommitted(3, last.Seqno)
	if node.SnapshotBase(n3) < s {
		t.Fatalf("member 3 installed %d, want at least %d", node.SnapshotBase(n3), s)
	}
}

// TestRaftSnapshotInstallPowerCut: member 3 runs on a simulated disk
// (durable/simdisk) whose power is cut at each point of the install in
// turn (the k-th disk operation after the fetch); the surviving disk must
// start (the old state or the new one, never neither) and then catch up,
// with the snapshot installed and nothing committed lost.
func TestRaftSnapshotInstallPowerCut(t *testing.T) {
	disk := simdisk.New(simdisk.Options{})
	c := newSnapCluster(t, func(id uint64, cfg *node.Config) {
		if id == 3 {
			cfg.FS, cfg.Dir = disk, "/data3"
		}
	})
	_, later, bodies, s := c.behindASnapshotStartedPrimary(false)
	// Member 3's disk as it stopped: each round restarts from a copy.
	stopped := disk.Survivor()
	cfg3 := c.cfgs[3]
	var cutAt struct {
		sync.Mutex
		k  int
		ch <-chan *simdisk.Disk
		d  *simdisk.Disk
	}
	c.setFetch(func(to, from uint64) ([]byte, error) {
		b, err := c.latest(to, from)
		cutAt.Lock()
		defer cutAt.Unlock()
		if err == nil && cutAt.ch == nil && to == 3 {
			cutAt.ch = cutAt.d.CutAtOp(cutAt.d.Ops() + cutAt.k)
		}
		return b, err
	})
	outcomes := map[string]int{}
	for k := 1; k <= 40; k += 1 + k/8 {
		// The primary restarts too: member 3 goes back to its old disk,
		// and the primary must forget what it acknowledged before.
		c.stop(2)
		c.start(2)
		d := stopped.Survivor()
		cutAt.Lock()
		cutAt.k, cutAt.ch, cutAt.d = k, nil, d
		cutAt.Unlock()
		cfg := cfg3
		cfg.FS = d
		c.cfgs[3] = cfg
		n3 := c.start(3)
		var survivor *simdisk.Disk
		deadline := time.After(30 * time.Second)
	wait:
		for {
			cutAt.Lock()
			ch := cutAt.ch
			cutAt.Unlock()
			if ch != nil {
				select {
				case survivor = <-ch:
					break wait
				case <-deadline:
					t.Fatalf("cut at %d: the disk saw no %d-th operation after the fetch in 30 s", k, k)
				}
			}
			select {
			case <-deadline:
				t.Fatalf("cut at %d: member 3 fetched no snapshot in 30 s; its log:\n%s", k, tail(c.logs[3].String(), 3000))
			case <-time.After(5 * time.Millisecond): // polling for the fetch, bounded by the deadline
			}
		}
		_ = n3
		c.stop(3) // fails to write: the power is off
		// The survivor starts, as the old state or the new.
		cfg.FS = survivor
		c.cfgs[3] = cfg
		c.setFetch(c.latest)
		n3 = c.start(3)
		base := node.SnapshotBase(n3)
		switch {
		case base == 0:
			outcomes["old state"]++
		case base >= s:
			outcomes["new state"]++
		default:
			t.Fatalf("cut at %d: member 3 restarted from a snapshot at %d", k, base)
		}
		if node.InstallingSnapshot(survivor, "/data3") {
			t.Fatalf("cut at %d: the install marker is still there after the start", k)
		}
		last := later[len(later)-1]
		c.waitCommitted(3, last.Seqno)
		for _, id := range later {
			if id.Seqno <= node.SnapshotBase(n3) {
				continue
			}
			if e, err := n3.Entry(id); err != nil || string(e.Contents) != bodies[id] {
				t.Fatalf("cut at %d: member 3 reads %s: %.20q, %v", k, id, e.Contents, err)
			}
		}
		c.stop(3)
		c.setFetch(func(to, from uint64) ([]byte, error) {
			b, err := c.latest(to, from)
			cutAt.Lock()
			defer cutAt.Unlock()
			if err == nil && cutAt.ch == nil && to == 3 {
				cutAt.ch = cutAt.d.CutAtOp(cutAt.d.Ops() + cutAt.k)
			}
			return b, err
		})
	}
	outcomes["install finished at the next start"] = strings.Count(c.logs[3].String(), "interrupted after it took effect")
	t.Logf("outcomes after power cuts during the install: %v", outcomes)
	if outcomes["install finished at the next start"] == 0 {
		t.Fatalf("no cut fell between the install's commit point and its end: %v", outcomes)
	}
	if outcomes["old state"] == 0 || outcomes["new state"] == 0 {
		t.Fatalf("the cuts did not fall both before and after the install's commit point: %v", outcomes)
	}
}

// TestRaftSnapshotToANewMember: a member added (with an empty log) after
// the primary's latest snapshot, when the primary started from a snapshot,
// is sent that snapshot, whose configuration does not name it yet. Raft
// restores a snapshot only if it names the recipient: the new member takes
// it as a learner until the conf change that added it follows, installs
// it and catches up. Without that, it refuses the snapshot forever.
func TestRaftSnapshotToANewMember(t *testing.T) {
	c := newSnapCluster(t, nil)
	c.behindASnapshotStartedPrimary(true)
	first := c.write("member 3 is back")
	c.waitCommitted(3, first.Seqno)
	c.configure(4, consensus.Config{Joining: true}, nil)
	n4 := c.start(4)
	p := c.nodes[c.primary()]
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	ccid, err := p.ProposeConfChange(ctx, raftpb.ConfChange{Type: raftpb.ConfChangeAddNode, NodeID: 4})
	if err != nil {
		t.Fatal(err)
	}
	if err := p.WaitCommitted(ctx, ccid); err != nil {
		t.Fatalf("adding member 4: %v", err)
	}
	last := c.write("with member 4")
	c.waitCommitted(4, last.Seqno)
	if base := node.SnapshotBase(n4); base == 0 || base >= ccid.Seqno {
		t.Fatalf("member 4 installed a snapshot at %d; want one before its addition at %d", base, ccid.Seqno)
	}
	if e, err := n4.Entry(last); err != nil || string(e.Contents) != "with member 4" {
		t.Fatalf("member 4 reads %s: %q %v", last, e.Contents, err)
	}
}

// TestLedgerAsidePruned: the ledgers set aside at snapshot installs
// (ledger.before-snapshot-S) are bounded: a node keeps the one of the
// install it now starts from and removes those of earlier installs, right
// after an install and at every start (a crash may have stopped a
// removal). What it serves is untouched (its ledger from S+1, which
// --fetch-history peers and audits read), and so are directories it did
// not name (another S suffix, a later S, other names). Without pruneAside
// the earlier ledgers stay forever.
func TestLedgerAsidePruned(t *testing.T) {
	c := newSnapCluster(t, nil)
	_, later, bodies, _ := c.behindASnapshotStartedPrimary(false)
	dir3 := c.cfgs[3].Dir
	// What earlier installs would have left: an S below any the primary
	// can send, with files and a suffix; and names that are not an aside.
	mk := func(name string) {
		t.Helper()
		if err := os.MkdirAll(filepath.Join(dir3, name, "sub"), 0o700); err != nil {
			t.Fatal(err)
		}
		for _, f := range []string{"ledger_1-3.committed", "sub/x"} {
			if err := os.WriteFile(filepath.Join(dir3, name, f), []byte("old"), 0o600); err != nil {
				t.Fatal(err)
			}
		}
	}
	for _, name := range []string{"ledger.before-snapshot-2", "ledger.before-snapshot-2.1", "ledger.before-snapshot-x", "ledger.before-snapshot-02"} {
		mk(name)
	}
	exists := func(name string) bool {
		_, err := os.Stat(filepath.Join(dir3, name))
		return err == nil
	}
	c.start(3)
	last := c.write("after the install")
	bodies[last] = "after the install"
	later = append(later, last)
	c.waitCommitted(3, last.Seqno)
	base := node.SnapshotBase(c.nodes[3])
	kept := "ledger.before-snapshot-" + fmt.Sprint(base)
	if !exists(kept) {
		t.Fatalf("member 3's ledger before its install at %d was not kept aside", base)
	}
	for _, gone := range []string{"ledger.before-snapshot-2", "ledger.before-snapshot-2.1"} {
		if exists(gone) {
			t.Fatalf("%s, set aside at an earlier install, is still there after the install at %d", gone, base)
		}
	}
	for _, other := range []string{"ledger.before-snapshot-x", "ledger.before-snapshot-02"} {
		if !exists(other) {
			t.Fatalf("%s, not a name the node gives, was removed", other)
		}
	}
	// At start: an earlier one (left by a crash) goes, a later S stays.
	c.stop(3)
	mk("ledger.before-snapshot-3")
	mk(fmt.Sprintf("ledger.before-snapshot-%d", base+1000))
	n3 := c.start(3)
	if exists("ledger.before-snapshot-3") {
		t.Fatal("an earlier install's ledger is still there after a start")
	}
	if !exists(kept) || !exists(fmt.Sprintf("ledger.before-snapshot-%d", base+1000)) {
		t.Fatal("the start removed the latest install's ledger, or one of a later seqno")
	}
	// The node still serves what it served, and catches up.
	last = c.write("after the restart")
	c.waitCommitted(3, last.Seqno)
	for _, id := range later {
		if id.Seqno <= base {
			continue
		}
		if e, err := n3.Entry(id); err != nil || string(e.Contents) != bodies[id] {
			t.Fatalf("member 3 reads %s: %.20q, %v", id, e.Contents, err)
		}
	}
}
