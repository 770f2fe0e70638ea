package node_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
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

// faultSeedEnv reproduces a run of TestRandomFaults: its seed is printed
// at the start and in every failure.
const faultSeedEnv = "LEDGERD_FAULT_SEED"

// faultNet is the randomised test's network: messages wait in flight until
// the test delivers, delays (reorders) or drops them; a partition delivers
// only within a group.
type faultNet struct {
	mu     sync.Mutex
	flight []inFlight
	group  map[uint64]int  // partition group of each node; all 0 when healed
	down   map[uint64]bool // crashed members: nothing they send gets out
	// sentMax is the highest log index each node has sent in entries
	// (MsgApp): a node's entries reach others only through its own sends
	// first, so a removed node's sends show whether it went on leading.
	sentMax map[uint64]uint64
	// live: each member's node while it is up, for FetchSnapshot (a
	// backup sent a Raft snapshot fetches the file from the sender).
	live map[uint64]*node.Node
}

type inFlight struct {
	m   raftpb.Message
	age int
}

type faultTransport struct{ net *faultNet }

func (t faultTransport) Send(msgs []raftpb.Message) {
	t.net.mu.Lock()
	defer t.net.mu.Unlock()
	for _, m := range msgs {
		if t.net.down[m.From] {
			continue
		}
		if k := len(m.Entries); k > 0 {
			t.net.sentMax[m.From] = max(t.net.sentMax[m.From], m.Entries[k-1].Index)
		}
		t.net.flight = append(t.net.flight, inFlight{m: m})
	}
}

// faultNode is one member: its node while up, its simulated disk, its
// clock and Raft tick channel.
type faultNode struct {
	id    uint64
	n     *node.Node // nil while down
	disk  *simdisk.Disk
	gate  *syncGate // holds its fsyncs while the test says (a slow disk)
	clock *fakeClock
	ticks chan time.Time
	cfg   node.Config
	// checked: committed seqnos (1..checked) of this node whose bytes
	// were compared with the canonical prefix and whose writes reported
	// Committed were read back. Reset when it restarts.
	checked uint64
	life    int  // times opened
	gone    bool // decommissioned (removed from the service and shut down): never restarted
	// snap: the seqno S of the committed snapshot it joined from (0: it
	// holds the whole ledger): its ledger starts at S+1.
	snap uint64
}

// answer is a write answered (Pending) by a primary.
type answer struct {
	id   node.TxID
	body string
	seen string // where and when it was seen Invalid
	// invalidOn saw it Invalid in its incarnation life (opens counted).
	invalidOn *faultNode
	life      int
}

// faultRun is one randomised run: members, network, the writes answered
// and the writes seen Committed, and the canonical committed prefix.
type faultRun struct {
	t         *testing.T
	rng       *rand.Rand
	seed      uint64
	step      int
	net       *faultNet
	nodes     []*faultNode
	ids       *identity.Identities
	futures   []pendingWrite
	answered  []answer
	committed []answer             // reported Committed, in seqno order
	bodies    map[string]node.TxID // body of each write reported Committed
	invalid   []answer             // seen Invalid: must never be Committed
	nAnswered int
	canonical map[uint64][32]byte // seqno -> SHA-256 of its committed ledger bytes
	writes    int
	stats     map[string]int
	// Membership (membership_test.go): the configuration's voters as the
	// committed conf changes left it, the one change in flight, the
	// removed nodes, and the data directory's parent of new members.
	voters  map[uint64]bool
	change  *confChange
	removed map[uint64]*removal
	signers map[string]uint64 // signer node id -> Raft id
	sigBy   map[uint64]string // committed signature seqno -> signer node id
	base    string
	initial int // founding members
	// converging: the faults have stopped; removed nodes are shut down
	// as soon as their removal is seen committed.
	converging bool
	// stateAt: SHA-256 of the committed state at a seqno, as a
	// full-history node held it (sampled); a snapshot-started node's must
	// equal it at the same commit point.
	stateAt map[uint64][32]byte
}

type pendingWrite struct {
	fut   *node.Future
	body  string
	tries int
	on    *faultNode
}

func (r *faultRun) fatalf(format string, args ...any) {
	r.t.Helper()
	r.t.Fatalf("seed %d (%s=%d to reproduce), step %d: %s", r.seed, faultSeedEnv, r.seed, r.step, fmt.Sprintf(format, args...))
}

// TestRandomFaults runs three members, then five, through randomised
// faults: messages dropped, delayed and reordered (within maxDelay
// deliveries), partitions and heals, slow disks (a member's fsyncs held),
// members crashed (a power cut of their simulated disk, which keeps only
// what was fsynced, or a clean close) and restarted on their data, all
// while clients append to random members (followers refuse: the client
// tries up to two others). Raft's clock and the nodes' clocks move only
// when the test ticks. After every step: every write seen Committed is
// Committed with its contents on every member that has committed that far,
// the members' committed ledger bytes are identical, and its receipt
// verifies against the service certificate. At the end the faults stop and
// every member must converge and commit a new write.
//
// The fault schedule is a function of the seed; the nodes' goroutines run
// concurrently with it, so two runs of one seed take the same faults but
// may interleave them with the nodes' work differently.
func TestRandomFaults(t *testing.T) {
	seed := rand.Uint64()
	if s := os.Getenv(faultSeedEnv); s != "" {
		var err error
		if seed, err = strconv.ParseUint(s, 10, 64); err != nil {
			t.Fatalf("%s=%q: %v", faultSeedEnv, s, err)
		}
	}
	t.Logf("seed %d (%s=%d to reproduce)", seed, faultSeedEnv, seed)
	steps3, steps5 := 7000, 3000
	if testing.Short() {
		steps3, steps5 = 1500, 500
	}
	var joins, compared int
	for _, c := range []struct {
		name           string
		seed           uint64
		members, steps int
	}{{"3 members", seed, 3, steps3}, {"5 members", seed + 1, 5, steps5}} {
		t.Run(c.name, func(t *testing.T) {
			st := runFaults(t, c.seed, c.members, c.steps)
			joins += st["join from a snapshot"]
			compared += st["snapshot-started state compared"]
		})
	}
	t.Logf("%d joins from a snapshot, %d states of snapshot-started nodes compared with a full-history node's", joins, compared)
	if !t.Failed() && (joins == 0 || compared == 0) {
		t.Fatal("no node joined from a snapshot and was compared: the run did not exercise snapshot install")
	}
}

// runFaults runs one randomised run and returns its counts.
func runFaults(t *testing.T, seed uint64, members, steps int) map[string]int {
	r := &faultRun{
		t: t, seed: seed, rng: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)),
		net:       &faultNet{group: map[uint64]int{}, down: map[uint64]bool{}, sentMax: map[uint64]uint64{}, live: map[uint64]*node.Node{}},
		canonical: map[uint64][32]byte{},
		bodies:    map[string]node.TxID{},
		stats:     map[string]int{},
		voters:    map[uint64]bool{},
		removed:   map[uint64]*removal{},
		signers:   map[string]uint64{},
		sigBy:     map[uint64]string{},
		stateAt:   map[uint64][32]byte{},
		initial:   members,
	}
	r.start(members)
	defer func() {
		for _, m := range r.nodes {
			if m.n != nil {
				m.gate.release() // a held fsync would keep Close waiting (a failed run hung until the test timeout)
				m.n.Close()
			}
		}
	}()
	for r.step = 0; r.step < steps; r.step++ {
		switch x := r.rng.IntN(1000); {
		case x < 400:
			r.deliver(0.05, 0.2, 3)
		case x < 650:
			r.tick()
		case x < 858:
			r.submit()
		case x < 870:
			r.reconfigure() // a member added or removed (membership_test.go)
		case x < 900:
			r.partition()
		case x < 940:
			r.heal()
		case x < 960:
			r.crash()
		case x < 980:
			r.restart()
		case x < 990:
			r.holdSyncs()
		default:
			r.releaseSyncs()
		}
		r.check()
	}
	r.converge()
	t.Logf("%d members, %d steps: %v; %d writes submitted, %d answered (Pending), %d seen Committed, %d seen Invalid, %d committed seqnos compared; voters at the end %v",
		members, steps, r.stats, r.writes, r.nAnswered, len(r.committed), len(r.invalid), len(r.canonical), r.memberIDs())
	if len(r.committed) == 0 {
		t.Fatal("no write committed: the run exercised nothing")
	}
	t.Logf("%d joins from a snapshot (%d from seqno 1 for want of a committed snapshot), %d Raft snapshots installed, %d states of snapshot-started nodes compared with a full-history node's",
		r.stats["join from a snapshot"], r.stats["join from seqno 1 (no snapshot yet)"], r.stats["Raft snapshot installed"], r.stats["snapshot-started state compared"])
	return r.stats
}

func (r *faultRun) start(members int) {
	base := r.t.TempDir()
	r.base = base
	peers := make([]uint64, members)
	for i := range peers {
		peers[i] = uint64(i + 1)
	}
	var err error
	r.ids, err = identity.LoadOrCreate(filepath.Join(base, "1"), identity.Options{})
	if err != nil {
		r.t.Fatal(err)
	}
	for _, id := range peers {
		dir := filepath.Join(base, fmt.Sprint(id))
		if id > 1 {
			os.MkdirAll(dir, 0o700)
			for _, f := range []string{identity.ServiceCertFile, identity.ServiceKeyFile, identity.LedgerSecretFile} {
				b, err := os.ReadFile(filepath.Join(base, "1", f))
				if err != nil {
					r.t.Fatal(err)
				}
				os.WriteFile(filepath.Join(dir, f), b, 0o600)
			}
		}
		ids, err := identity.LoadOrCreate(dir, identity.Options{})
		if err != nil {
			r.t.Fatal(err)
		}
		r.voters[id] = true
		r.addNode(id, ids, consensus.Config{ID: id, Peers: peers}, id != 1)
	}
}

// addNode opens a new node: a founding member (raft's Peers set) or a
// joiner (raft.Joining: no configuration until the leader's log gives it
// one).
func (r *faultRun) addNode(id uint64, ids *identity.Identities, rc consensus.Config, noBootstrap bool, install ...func(*faultNode)) *faultNode {
	m := &faultNode{id: id, disk: simdisk.New(simdisk.Options{}), gate: &syncGate{}, clock: &fakeClock{}, ticks: make(chan time.Time)}
	rc.TickInterval, rc.ElectionTicks, rc.HeartbeatTicks = 10*time.Millisecond, 10, 1
	m.cfg = node.Config{
		Dir: "/data", Identities: ids, Logger: quietLogger(),
		Raft:        rc,
		Transport:   faultTransport{r.net},
		NoBootstrap: noBootstrap,
		Ticks:       m.ticks,
		// A Raft snapshot's file, fetched from its sender while both are
		// up and in one partition group.
		FetchSnapshot: func(_ context.Context, from uint64) ([]byte, error) {
			r.net.mu.Lock()
			src := r.net.live[from]
			cut := r.net.down[from] || r.net.down[id] || r.net.group[from] != r.net.group[id]
			r.net.mu.Unlock()
			if src == nil || cut {
				return nil, fmt.Errorf("member %d unreachable", from)
			}
			_, b, err := src.LatestSnapshot()
			return b, err
		},
		ChunkSize:   4 << 10,
		SnapshotTxs: 50,
		// Snapshots (snapshot.go) at the first committed signature of
		// every 40 seqnos: joiners find one to start from.
		SnapshotTxInterval: 40,
	}
	m.clock.set(&m.cfg)
	r.signers[ids.Node.ID] = id
	r.nodes = append(r.nodes, m)
	for _, f := range install {
		f(m)
	}
	r.open(m)
	return m
}

func (r *faultRun) open(m *faultNode) {
	cfg := m.cfg
	cfg.FS = gatedFS{m.disk, m.gate}
	n, err := node.Open(cfg)
	if err != nil {
		r.fatalf("opening member %d: %v", m.id, err)
	}
	m.n, m.checked = n, 0
	m.life++
	r.net.mu.Lock()
	r.net.live[m.id] = n
	r.net.mu.Unlock()
	r.noteInstall(m)
	if m.snap > 0 { // its ledger begins at S+1, each time it opens
		if first := node.LedgerFirst(n); first != m.snap+1 {
			r.fatalf("member %d, started from the snapshot at %d, has a ledger from %d", m.id, m.snap, first)
		}
		if _, err := node.LedgerBytes(n, m.snap); err == nil {
			r.fatalf("member %d, started from the snapshot at %d, holds seqno %d", m.id, m.snap, m.snap)
		}
	}
}

// noteInstall follows a member's snapshot base: a Raft snapshot installed
// (from a primary that holds no entry it lacked) moves its ledger's start.
// The node installs concurrently with the checks: a check that reads its
// commit point calls it after (the base is set before the commit point
// is published). It reports whether the base moved.
func (r *faultRun) noteInstall(m *faultNode) bool {
	if b := node.SnapshotBase(m.n); b > m.snap {
		r.stats["Raft snapshot installed"]++
		m.snap = b
		return true
	}
	return false
}

func (r *faultRun) live() []*faultNode {
	var l []*faultNode
	for _, m := range r.nodes {
		if m.n != nil {
			l = append(l, m)
		}
	}
	return l
}

// readable returns the live members whose fsyncs are not held: a held
// member's reads may wait for its disk (a rollback cuts the Merkle tree
// file durably under the tree's lock; the ledger's no longer makes
// readers wait), and the test must not.
func (r *faultRun) readable() []*faultNode {
	var l []*faultNode
	for _, m := range r.live() {
		if !m.gate.isHeld() {
			l = append(l, m)
		}
	}
	return l
}

// downVoters counts the voters that are down.
func (r *faultRun) downVoters() int {
	k := 0
	for _, m := range r.nodes {
		if m.n == nil && !m.gone && r.voters[m.id] {
			k++
		}
	}
	return k
}

// down counts the nodes that are down and will be restarted.
func (r *faultRun) down() int {
	k := 0
	for _, m := range r.nodes {
		if m.n == nil && !m.gone {
			k++
		}
	}
	return k
}

// deliver hands the messages in flight to their members: each is dropped
// with probability drop, else held back with probability delay (at most
// maxDelay deliveries), else delivered, in a shuffled order, if a
// partition does not separate its ends and its destination is up.
func (r *faultRun) deliver(drop, delay float64, maxDelay int) {
	r.stats["deliver"]++
	r.net.mu.Lock()
	var out []raftpb.Message
	kept := r.net.flight[:0]
	for _, f := range r.net.flight {
		switch p := r.rng.Float64(); {
		case p < drop:
		case p < drop+delay && f.age < maxDelay:
			f.age++
			kept = append(kept, f)
		default:
			if r.net.group[f.m.From] == r.net.group[f.m.To] {
				out = append(out, f.m)
			}
		}
	}
	r.net.flight = kept
	r.net.mu.Unlock()
	r.rng.Shuffle(len(out), func(i, j int) { out[i], out[j] = out[j], out[i] })
	for _, m := range out {
		if to := r.nodes[m.To-1]; to.n != nil {
			to.n.Step(m)
		}
	}
}

// tick advances every live member's Raft clock by a tick and its clock by
// the tick's duration (signatures become due by time).
func (r *faultRun) tick() {
	r.stats["tick"]++
	for _, m := range r.live() {
		if m.gate.isHeld() {
			continue // its loop may wait for an fsync: a stalled member misses ticks
		}
		m.clock.Advance(10 * time.Millisecond)
		select {
		case m.ticks <- time.Time{}:
		case <-m.n.Done():
			r.fatalf("member %d stopped: %v", m.id, m.n.Err())
		case <-time.After(30 * time.Second):
			r.fatalf("member %d took no tick for 30s: its loop is stuck", m.id)
		}
	}
}

// submit appends a write to a random live member, as a client that does
// not know the primary.
func (r *faultRun) submit() {
	body := fmt.Sprintf("w%d-%d", r.step, r.writes)
	r.writes++
	r.submitTo(body, 0, nil)
}

// submitTo submits body to a random live member other than not; a refusal
// (ErrNotPrimary, ErrBusy) is retried elsewhere up to twice, as a client
// that tries the next node. Only a refused write is retried: it left no
// trace (Submit refused it, or the node dropped it unsequenced), so the
// same body never commits twice (check's bodies).
func (r *faultRun) submitTo(body string, tries int, not *faultNode) {
	var l []*faultNode
	for _, m := range r.live() {
		if m != not {
			l = append(l, m)
		}
	}
	if len(l) == 0 || tries > 2 {
		return
	}
	m := l[r.rng.IntN(len(l))]
	f, err := m.n.SubmitEntry("faults", []byte(body))
	if err != nil {
		r.stats["refused"]++
		r.submitTo(body, tries+1, m)
		return
	}
	r.futures = append(r.futures, pendingWrite{fut: f, body: body, tries: tries, on: m})
}

// partition splits the members into two random non-empty groups.
func (r *faultRun) partition() {
	r.stats["partition"]++
	r.net.mu.Lock()
	defer r.net.mu.Unlock()
	for {
		for _, m := range r.nodes {
			r.net.group[m.id] = r.rng.IntN(2)
		}
		g := r.net.group[1]
		for _, m := range r.nodes[1:] {
			if r.net.group[m.id] != g {
				return
			}
		}
	}
}

func (r *faultRun) heal() {
	r.stats["heal"]++
	r.net.mu.Lock()
	defer r.net.mu.Unlock()
	clear(r.net.group)
}

// crash stops a random live node, unless it is a voter and a minority of
// the voters is down already: half the time by a power cut (it is cut off
// the network, then restarts on what its disk had fsynced), else by a
// clean close.
func (r *faultRun) crash() {
	l := r.live()
	m := l[r.rng.IntN(len(l))]
	if r.voters[m.id] && r.downVoters() >= (len(r.voters)-1)/2 {
		return
	}
	r.net.mu.Lock()
	r.net.down[m.id] = true
	delete(r.net.live, m.id)
	r.net.mu.Unlock()
	if r.rng.IntN(2) == 0 {
		r.stats["power cut"]++
		m.disk = m.disk.Survivor() // what its held fsyncs would have made durable is lost
	} else {
		r.stats["close"]++
	}
	m.gate.release()
	m.n.Close() // after a power cut it writes to the old disk, which is gone
	m.n = nil
}

func (r *faultRun) restart() {
	for _, m := range r.nodes {
		if m.n == nil && !m.gone {
			r.stats["restart"]++
			r.net.mu.Lock()
			r.net.down[m.id] = false
			r.net.mu.Unlock()
			r.open(m)
			return
		}
	}
}

// holdSyncs stalls a random live member's fsyncs (a slow disk) until
// releaseSyncs or its crash: what it writes meanwhile is not durable, and
// must not be counted so by anyone.
func (r *faultRun) holdSyncs() {
	l := r.live()
	if len(l) == 0 {
		return
	}
	r.stats["hold fsyncs"]++
	l[r.rng.IntN(len(l))].gate.hold()
}

func (r *faultRun) releaseSyncs() {
	for _, m := range r.nodes {
		if m.gate.isHeld() {
			r.stats["release fsyncs"]++
			m.gate.release()
			return
		}
	}
}

// syncGate holds the fsyncs of a member's files while held.
type syncGate struct {
	mu   sync.Mutex
	held chan struct{} // non-nil while held; closed on release
}

func (g *syncGate) hold() {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.held == nil {
		g.held = make(chan struct{})
	}
}

func (g *syncGate) release() {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.held != nil {
		close(g.held)
		g.held = nil
	}
}

func (g *syncGate) isHeld() bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.held != nil
}

func (g *syncGate) wait() {
	g.mu.Lock()
	c := g.held
	g.mu.Unlock()
	if c != nil {
		<-c
	}
}

// gatedFS is a member's disk with its fsyncs behind its gate.
type gatedFS struct {
	durable.FS
	gate *syncGate
}

func (g gatedFS) OpenFile(name string, flag int, perm fs.FileMode) (durable.File, error) {
	f, err := g.FS.OpenFile(name, flag, perm)
	if err != nil {
		return nil, err
	}
	return gatedFile{f, g.gate}, nil
}

type gatedFile struct {
	durable.File
	gate *syncGate
}

func (f gatedFile) Sync() error {
	f.gate.wait()
	return f.File.Sync()
}

// check resolves answered writes, learns which are Committed, and checks
// the invariants on every live member.
func (r *faultRun) check() {
	r.t.Helper()
	for _, m := range r.live() {
		select {
		case <-m.n.Done():
			r.fatalf("member %d stopped: %v", m.id, m.n.Err())
		default:
		}
		r.noteInstall(m)
	}
	live := r.readable()
	kept := r.futures[:0]
	var retry []pendingWrite
	for _, p := range r.futures {
		select {
		case <-p.fut.Done():
			id, err := p.fut.Wait(context.Background()) // resolved: returns at once
			switch {
			case err == nil:
				r.answered = append(r.answered, answer{id: id, body: p.body})
				r.nAnswered++
			case errors.Is(err, node.ErrNotPrimary) || errors.Is(err, node.ErrBusy):
				r.stats["retried"]++
				retry = append(retry, p)
			}
		default:
			kept = append(kept, p)
		}
	}
	r.futures = kept
	for _, p := range retry {
		r.submitTo(p.body, p.tries+1, p.on)
	}
	// Writes seen Committed by any member are reported Committed.
	still := r.answered[:0]
	for _, a := range r.answered {
		var by, invalidOn *faultNode
		for _, m := range live {
			switch m.n.Status(a.id) {
			case node.StatusCommitted:
				if by == nil || by.snap >= a.id.Seqno { // prefer one that holds it
					by = m
				}
			case node.StatusInvalid:
				invalidOn = m
			}
		}
		if by != nil && invalidOn != nil {
			r.fatalf("%s is Committed on member %d and Invalid on member %d", a.id, by.id, invalidOn.id)
		}
		if invalidOn != nil {
			a.seen = fmt.Sprintf("step %d on member %d: %s", r.step, invalidOn.id, r.describe(invalidOn))
			a.invalidOn, a.life = invalidOn, invalidOn.life
			r.invalid = append(r.invalid, a)
			continue
		}
		if by == nil {
			still = append(still, a)
			continue
		}
		if by.snap < a.id.Seqno { // else it holds no entry (nor receipt) of it
			rc, err := by.n.Receipt(a.id)
			if errors.Is(err, node.ErrBeforeSnapshot) && r.noteInstall(by) && by.snap >= a.id.Seqno {
				err, rc = nil, nil // it installed a Raft snapshot past it meanwhile
			}
			if err != nil {
				r.fatalf("member %d: receipt of Committed %s: %v", by.id, a.id, err)
			}
			if err := rc.Verify(r.ids.Service.Cert); rc != nil && err != nil {
				r.fatalf("member %d: receipt of Committed %s does not verify: %v", by.id, a.id, err)
			}
		}
		i, _ := slices.BinarySearchFunc(r.committed, a.id.Seqno, func(x answer, s uint64) int { return cmpU64(x.id.Seqno, s) })
		if i < len(r.committed) && r.committed[i].id.Seqno == a.id.Seqno {
			r.fatalf("two writes Committed at seqno %d: %s %q and %s %q", a.id.Seqno, r.committed[i].id, r.committed[i].body, a.id, a.body)
		}
		if prev, ok := r.bodies[a.body]; ok {
			r.fatalf("%q Committed twice, at %s and %s: a refused write was sequenced", a.body, prev, a.id)
		}
		r.bodies[a.body] = a.id
		r.committed = slices.Insert(r.committed, i, a)
		for _, m := range live { // members already past it
			if a.id.Seqno <= m.checked {
				r.checkWrite(m, a)
			}
		}
	}
	r.answered = still
	for _, m := range live {
		r.checkMember(m)
	}
	r.checkMembership(live)
	if r.step%50 == 0 {
		r.checkInvalid()
	}
	if r.step%10 == 0 || r.converging {
		r.checkStates(live)
	}
}

// checkStates samples the members' committed states: a full-history
// node's is recorded at its commit point, and a snapshot-started node's
// must equal it at the same commit point (its state came from the
// snapshot and the suffix after it, not from replaying seqno 1 on).
func (r *faultRun) checkStates(live []*faultNode) {
	r.t.Helper()
	type st struct {
		m     *faultNode
		seqno uint64
		h     [32]byte
	}
	var snaps []st
	for _, m := range live {
		if m.n == nil { // decommissioned by checkMembership
			continue
		}
		s, dump := node.CommittedState(m.n)
		h := sha256.Sum256([]byte(dump))
		if m.snap == 0 {
			if want, ok := r.stateAt[s]; ok && want != h {
				r.fatalf("member %d: committed state at %d differs from another full-history member's", m.id, s)
			}
			r.stateAt[s] = h
			continue
		}
		snaps = append(snaps, st{m, s, h})
	}
	for _, x := range snaps {
		want, ok := r.stateAt[x.seqno]
		if !ok {
			continue
		}
		if x.h != want {
			r.fatalf("member %d, started from the snapshot at %d: committed state at %d differs from a full-history member's (%s)", x.m.id, x.m.snap, x.seqno, r.describe(x.m))
		}
		r.stats["snapshot-started state compared"]++
	}
}

// checkInvalid: no write seen Invalid is Committed on any member, and the
// member that said Invalid says so until it restarts. (Another member, not
// yet told, may hold it Pending, as CCF's backups do.)
func (r *faultRun) checkInvalid() {
	r.t.Helper()
	for _, a := range r.invalid {
		for _, m := range r.readable() {
			st := m.n.Status(a.id)
			if st == node.StatusCommitted || (m == a.invalidOn && m.life == a.life && st != node.StatusInvalid) {
				r.fatalf("member %d: %s, seen Invalid (%s), is now %v (%s)", m.id, a.id, a.seen, st, r.describe(m))
			}
		}
	}
}

func cmpU64(a, b uint64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// checkWrite: a write reported Committed is Committed with its contents on
// m, which has committed that far.
func (r *faultRun) checkWrite(m *faultNode, a answer) {
	r.t.Helper()
	if st := m.n.Status(a.id); st != node.StatusCommitted {
		r.fatalf("member %d (commit %d): %s, reported Committed, is %v", m.id, m.n.CommittedSeqno(), a.id, st)
	}
	r.noteInstall(m)
	if a.id.Seqno <= m.snap {
		if _, err := m.n.Entry(a.id); !errors.Is(err, node.ErrBeforeSnapshot) {
			r.fatalf("member %d, started from the snapshot at %d: reading %s: %v, want ErrBeforeSnapshot", m.id, m.snap, a.id, err)
		}
		return
	}
	e, err := m.n.Entry(a.id)
	if errors.Is(err, node.ErrBeforeSnapshot) && r.noteInstall(m) && a.id.Seqno <= m.snap {
		return // it installed a Raft snapshot past it meanwhile
	}
	if err != nil || string(e.Contents) != a.body {
		r.fatalf("member %d: %s, reported Committed with %q, reads %q (%v)", m.id, a.id, a.body, e.Contents, err)
	}
}

// checkMember compares m's newly committed ledger bytes with the canonical
// committed prefix and reads back the Committed writes among them.
func (r *faultRun) checkMember(m *faultNode) {
	r.t.Helper()
	c := m.n.CommittedSeqno()
	r.noteInstall(m)
	if c <= m.checked {
		return
	}
	for s := max(m.checked, m.snap) + 1; s <= c; s++ { // from its first seqno
		raw, err := node.LedgerBytes(m.n, s)
		if err != nil {
			r.fatalf("member %d: committed seqno %d (commit %d): %v", m.id, s, c, err)
		}
		h := sha256.Sum256(raw)
		if want, ok := r.canonical[s]; !ok {
			r.canonical[s] = h
			r.committedSignature(s, raw)
		} else if h != want {
			r.fatalf("member %d: committed seqno %d differs from another member's", m.id, s)
		}
	}
	i, _ := slices.BinarySearchFunc(r.committed, m.checked+1, func(x answer, s uint64) int { return cmpU64(x.id.Seqno, s) })
	for ; i < len(r.committed) && r.committed[i].id.Seqno <= c; i++ {
		r.checkWrite(m, r.committed[i])
	}
	m.checked = c
}

// converge stops the faults: every member up, no partition, no loss. Then
// every member must commit everything seen Committed, and a new write must
// commit on all of them.
func (r *faultRun) converge() {
	r.t.Helper()
	r.converging = true // removed nodes are shut down once their removal is seen committed
	r.decommission(true)
	r.heal()
	for _, m := range r.nodes {
		m.gate.release()
	}
	for r.down() > 0 {
		r.restart()
	}
	var maxCommitted uint64
	if len(r.committed) > 0 {
		maxCommitted = r.committed[len(r.committed)-1].id.Seqno
	}
	// The final write: submitted to the primary; submitted anew (another
	// body) if it is not answered within 50 rounds or turns Invalid.
	var last answer
	final, since := "", 0
	for round := 0; ; round++ {
		if round == 2000 {
			r.fatalf("no convergence after the faults stopped: commits %v, want %d and the final write %s (%s)", r.commits(), maxCommitted, last.id, final)
		}
		r.deliver(0, 0, 0)
		r.tick()
		if last.body == "" && (final == "" || round-since > 50) {
			for _, m := range r.live() {
				if m.n.IsPrimary() {
					final, since = fmt.Sprintf("final-%d", round), round
					r.submitTo(final, 0, nil)
					break
				}
			}
		}
		r.check()
		if last.body == "" {
			for _, a := range append(slices.Clone(r.answered), r.committed...) {
				if a.body == final {
					last = a
				}
			}
			continue
		}
		if slices.ContainsFunc(r.invalid, func(a answer) bool { return a.id == last.id }) {
			last, final = answer{}, ""
			continue
		}
		done := r.change == nil // a change in flight is seen through first
		for _, m := range r.members() {
			if m.n.CommittedSeqno() < max(maxCommitted, last.id.Seqno) || m.n.Status(last.id) != node.StatusCommitted {
				done = false
			}
		}
		if done {
			break
		}
	}
	// Every member (joined ones too: they caught up from the log) holds
	// the same committed bytes up to the lowest commit.
	members := r.members()
	first := members[0]
	low := first.n.CommittedSeqno()
	for _, m := range members {
		low = min(low, m.n.CommittedSeqno())
	}
	// A snapshot-started member from its first seqno on.
	for _, m := range members {
		r.noteInstall(m)
	}
	for s := uint64(1); s <= low; s++ {
		var want []byte
		var ref *faultNode
		for _, m := range members {
			if m.snap >= s {
				continue
			}
			got, err := node.LedgerBytes(m.n, s)
			if err != nil {
				r.fatalf("after convergence, member %d's seqno %d: %v", m.id, s, err)
			}
			if ref == nil {
				want, ref = got, m
			} else if !bytes.Equal(got, want) {
				r.fatalf("after convergence, member %d's seqno %d differs from member %d's", m.id, s, ref.id)
			}
		}
	}
	for _, m := range members {
		m.checked = 0
		r.checkMember(m)
		// Receipts from every member, for a sample of the writes it has
		// committed (writes answered late may commit after the final one).
		for i := 0; i < len(r.committed) && r.committed[i].id.Seqno <= m.checked; i += max(1, len(r.committed)/20) {
			a := r.committed[i]
			if a.id.Seqno <= m.snap {
				continue // it holds no entry of it (checkMember checked its status)
			}
			rc, err := m.n.Receipt(a.id)
			if err != nil {
				r.fatalf("after convergence, member %d: receipt of %s: %v", m.id, a.id, err)
			}
			if err := rc.Verify(r.ids.Service.Cert); err != nil {
				r.fatalf("after convergence, member %d: receipt of %s does not verify: %v", m.id, a.id, err)
			}
		}
	}
	r.checkInvalid()
}

// commits describes the live nodes: id, voter, snapshot seqno they
// started from, commit, last.
func (r *faultRun) commits() []string {
	var c []string
	for _, m := range r.nodes {
		if m.n != nil {
			c = append(c, fmt.Sprintf("%d(voter %v, snap %d, commit %d, last %d, primary %v)", m.id, r.voters[m.id], m.snap, m.n.CommittedSeqno(), m.n.LastSeqno(), m.n.IsPrimary()))
		}
	}
	return c
}

func (r *faultRun) describe(m *faultNode) string {
	return fmt.Sprintf("commit %s, last %s, primary %v", m.n.CommittedTxID(), m.n.LastTxID(), m.n.IsPrimary())
}
