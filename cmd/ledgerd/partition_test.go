package main

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/ledgerd/ledgerd/client"
	"github.com/ledgerd/ledgerd/internal/testbin"
)

// isPrimary asks node i whether it is the primary (/node/network/nodes/self).
func (w *network3) isPrimary(t *testing.T, i int) bool {
	t.Helper()
	return isPrimaryAt(w.admin[i], w.procs[i].addr)
}

func isPrimaryAt(c *http.Client, addr string) bool {
	status, _, body, err := try(c, "GET", "https://"+addr+"/node/network/nodes/self", "")
	return err == nil && status == 200 && body["primary"] == true
}

func txStatusAt(c *http.Client, addr, txid string) string {
	status, _, body, err := try(c, "GET", "https://"+addr+"/node/tx?transaction_id="+txid, "")
	if err != nil || status != 200 {
		return ""
	}
	s, _ := body["status"].(string)
	return s
}

// Partitions of real ledgerd processes.
//
// How the network is cut. Every node-to-node connection goes through a TCP
// proxy of the test: node i publishes (--peer-publish) the address of its
// proxy, which forwards to its real --peer-listen address, and makes its
// own node-to-node connections from its own loopback address 127.0.0.(2+i)
// (--peer-client-interface, CCF's node_client_interface), so the proxy
// knows which node a connection comes from. Each direction of a pair's
// traffic travels on connections the sender dials to the receiver's proxy,
// so cutting a pair at both proxies cuts both directions, and at one
// proxy one direction (cutOneWay). Only node-to-node traffic is cut: each node keeps running, its timers tick,
// and its client interface (which does not go through a proxy) serves its
// clients. Two kinds of cut:
//   - reset: open connections between the two sides are closed and new
//     ones are accepted and closed at once (a firewall's REJECT, a peer's
//     machine rebooting);
//   - blackhole: open and new connections stay up but carry nothing until
//     the partition heals, then deliver what was held (a firewall's DROP,
//     a link down shorter than TCP's timeouts): the nodes see stalled
//     streams, and stale messages arrive after the heal.
//
// Why a proxy and not ip netns with veth pairs: the proxy needs no
// privilege and no kernel feature, so the one code path these tests run
// here is the one CI runs on any machine (a CI runner without root or
// CAP_NET_ADMIN, or a container without netns, would otherwise run a
// second code path that is never exercised where the tests are written).
// It cuts exactly the node-to-node interface, in both directions, and both
// failure shapes a network has (refused and silent) are covered. The
// mechanism it relies on, --peer-publish and --peer-client-interface, is
// the production one (a node behind NAT or a port forward; a multi-homed
// machine), not a test hook. A one-way cut cuts the connections one node
// dials to another (both ways on them): as a stateful firewall that lets
// connections be opened one way only, or a node whose published address
// its peers cannot reach while it reaches theirs (a packet filter dropping
// one direction's packets kills TCP both ways: a full cut). What the
// proxy does not model: latency, and loss that TCP hides.

// cutKind is how a partition cuts the links between its sides.
type cutKind int

const (
	cutReset cutKind = iota
	cutBlackhole
)

// partNet is a service of n ledgerd processes whose node-to-node links
// the test can cut.
type partNet struct {
	bin    string
	dirs   []string
	ips    []string // node i's own loopback address
	listen []string // node i's --peer-listen
	procs  []*process
	admin  []*http.Client // reads and status: never a write, so never a forwarded session
	writer []*http.Client // the test's appends

	mu      sync.Mutex
	changed *sync.Cond              // signalled on every change of cut
	cuts    map[[2]int]bool         // (from, to): from's connections to to are cut
	kind    cutKind                 // of the current cuts
	links   map[*proxiedLink][2]int // open proxied connections -> (from, to)
	proxies []net.Listener
	closed  bool // the proxies are closed
	wg      sync.WaitGroup
}

// proxiedLink is one proxied node-to-node connection.
type proxiedLink struct{ in, out net.Conn }

func (l *proxiedLink) close() { l.in.Close(); l.out.Close() }

// loopbackIPs returns n loopback addresses other than 127.0.0.1 that this
// machine can bind (all of 127.0.0.0/8 is local on Linux).
func loopbackIPs(t *testing.T, n int) []string {
	t.Helper()
	var ips []string
	for i := range n {
		ip := fmt.Sprintf("127.0.0.%d", 2+i)
		ln, err := net.Listen("tcp", ip+":0")
		if err != nil {
			if runtime.GOOS != "linux" {
				t.Skipf("the partition tests need the loopback addresses 127.0.0.2-%d: %v", 1+n, err)
			}
			t.Fatalf("binding %s: %v", ip, err)
		}
		ln.Close()
		ips = append(ips, ip)
	}
	return ips
}

// startPartitionable founds a service of n nodes as startNetwork does (an
// Opening service, the others joined and trusted, then opened), every
// node-to-node connection through the test's proxies, and waits until the
// n nodes are voters.
func startPartitionable(t *testing.T, n int, extra ...string) *partNet {
	t.Helper()
	w := &partNet{bin: testbin.Command(t, "", "github.com/ledgerd/ledgerd/cmd/ledgerd"),
		ips: loopbackIPs(t, n), links: map[*proxiedLink][2]int{}}
	w.changed = sync.NewCond(&w.mu)
	t.Cleanup(w.closeProxies) // after the processes' cleanups (LIFO)
	base := t.TempDir()
	published := make([]string, n)
	for i := range n {
		w.dirs = append(w.dirs, filepath.Join(base, string(rune('a'+i))))
		ln, err := net.Listen("tcp", w.ips[i]+":0")
		if err != nil {
			t.Fatal(err)
		}
		w.listen = append(w.listen, ln.Addr().String())
		ln.Close()
		p, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		w.proxies = append(w.proxies, p)
		published[i] = p.Addr().String()
	}
	for i, p := range w.proxies {
		w.wg.Add(1)
		go w.serveProxy(p, i)
	}
	args := func(i int) []string {
		a := []string{"--data", w.dirs[i], "--peer-listen", w.listen[i], "--peer-publish", published[i],
			"--peer-client-interface", w.ips[i], "--election-timeout", "500ms"}
		return append(a, extra...)
	}
	svcPEM := filepath.Join(w.dirs[0], "service.pem")
	w.procs = append(w.procs, startLedgerd(t, w.bin, append(args(0), "--start-opening")...))
	for i := 1; i < n; i++ {
		w.procs = append(w.procs, startLedgerd(t, w.bin, append(args(i), "--join", "https://"+w.procs[0].addr, "--service-cert", svcPEM)...))
	}
	for range n {
		w.admin = append(w.admin, httpsClientWith(t, svcPEM, filepath.Join(w.dirs[0], "admin.pem")))
		w.writer = append(w.writer, httpsClientWith(t, svcPEM, filepath.Join(w.dirs[0], "admin.pem")))
	}
	c, err := client.New("https://"+w.procs[0].addr, client.CertificateFile(filepath.Join(w.dirs[0], "member0.pem")),
		&client.Options{ServiceCertFile: svcPEM})
	if err != nil {
		t.Fatal(err)
	}
	cert, err := os.ReadFile(svcPEM)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	p, err := c.CreateProposal(ctx, client.Action{Name: "transition_service_to_open",
		Args: map[string]any{"next_service_identity": string(cert)}})
	if err != nil {
		t.Fatal(err)
	}
	if p, err = c.Vote(ctx, p.ProposalID, true); err != nil || p.State != "Accepted" {
		t.Fatalf("opening the service: %+v %v", p, err)
	}
	// Every node a voter before anything is cut.
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		p := w.primary(t, nil)
		if len(w.voters(t, p)) == n {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the voters are %v, want %d nodes", w.voters(t, p), n)
		}
	}
	return w
}

// serveProxy is node to's proxy: it forwards each connection to the node's
// peer listener unless the partition cuts it from the node it comes from.
func (w *partNet) serveProxy(ln net.Listener, to int) {
	defer w.wg.Done()
	for {
		in, err := ln.Accept()
		if err != nil {
			return
		}
		w.wg.Add(1)
		go func() {
			defer w.wg.Done()
			w.proxy(in, to)
		}()
	}
}

// from is the node a connection comes from (-1: none of them).
func (w *partNet) from(c net.Conn) int {
	host, _, _ := net.SplitHostPort(c.RemoteAddr().String())
	return slices.Index(w.ips, host)
}

// cut reports whether a's connections to b are cut (w.mu held).
func (w *partNet) cut(a, b int) bool {
	return w.cuts[[2]int{a, b}]
}

func (w *partNet) proxy(in net.Conn, to int) {
	from := w.from(in)
	w.mu.Lock()
	for w.cut(from, to) && w.kind == cutBlackhole && !w.closed {
		w.changed.Wait() // held, silent, until the heal
	}
	if w.cut(from, to) || w.closed {
		w.mu.Unlock()
		in.Close()
		return
	}
	w.mu.Unlock()
	out, err := net.DialTimeout("tcp", w.listen[to], 5*time.Second)
	if err != nil {
		in.Close()
		return
	}
	l := &proxiedLink{in: in, out: out}
	w.mu.Lock()
	if w.cut(from, to) || w.closed { // cut while dialling
		w.mu.Unlock()
		l.close()
		return
	}
	w.links[l] = [2]int{from, to}
	w.mu.Unlock()
	done := make(chan struct{}, 2)
	pipe := func(dst, src net.Conn) {
		buf := make([]byte, 32<<10)
		for {
			n, err := src.Read(buf)
			if n > 0 {
				w.mu.Lock()
				_, live := w.links[l]
				for live && w.cut(from, to) && w.kind == cutBlackhole {
					w.changed.Wait()
					_, live = w.links[l]
				}
				w.mu.Unlock()
				if !live {
					break
				}
				if _, err := dst.Write(buf[:n]); err != nil {
					break
				}
			}
			if err != nil {
				break
			}
		}
		done <- struct{}{}
	}
	go pipe(out, in)
	go pipe(in, out)
	<-done
	w.mu.Lock()
	delete(w.links, l)
	w.changed.Broadcast()
	w.mu.Unlock()
	l.close()
	<-done
}

// partition cuts the network into sides (each a list of node indexes;
// nodes in no list are a side of their own each) in the way kind says.
// It returns once every open connection between two sides is closed
// (reset) or holds its traffic (blackhole).
func (w *partNet) partition(kind cutKind, sides ...[]int) {
	side := make([]int, len(w.procs))
	for i := range side {
		side[i] = -1 - i
	}
	for s, nodes := range sides {
		for _, i := range nodes {
			side[i] = s
		}
	}
	cuts := map[[2]int]bool{}
	for a := range side {
		for b := range side {
			if side[a] != side[b] {
				cuts[[2]int{a, b}] = true
			}
		}
	}
	w.setCuts(kind, cuts)
}

// cutOneWay cuts the connections from the nodes in from to those in to,
// not the other way: the nodes in to still reach the others.
func (w *partNet) cutOneWay(kind cutKind, from, to []int) {
	cuts := map[[2]int]bool{}
	for _, a := range from {
		for _, b := range to {
			cuts[[2]int{a, b}] = true
		}
	}
	w.setCuts(kind, cuts)
}

func (w *partNet) setCuts(kind cutKind, cuts map[[2]int]bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.cuts, w.kind = cuts, kind
	if kind == cutReset {
		for l, ft := range w.links {
			if w.cut(ft[0], ft[1]) {
				delete(w.links, l)
				l.close()
			}
		}
	}
	w.changed.Broadcast()
}

// heal ends the partition: held traffic flows on, new connections are
// forwarded.
func (w *partNet) heal() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.cuts = nil
	w.changed.Broadcast()
}

func (w *partNet) closeProxies() {
	w.mu.Lock()
	for _, ln := range w.proxies {
		ln.Close()
	}
	w.closed = true
	for l := range w.links {
		delete(w.links, l)
		l.close()
	}
	w.changed.Broadcast()
	w.mu.Unlock()
	w.wg.Wait()
}

// primary waits until one of the nodes in among (nil: all) says it is the
// primary and returns it.
func (w *partNet) primary(t *testing.T, among []int) int {
	t.Helper()
	for deadline := time.Now().Add(15 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		for i := range w.procs {
			if (among == nil || slices.Contains(among, i)) && isPrimaryAt(w.admin[i], w.procs[i].addr) {
				return i
			}
		}
	}
	t.Fatalf("none of the nodes %v is the primary", among)
	return 0
}

// voters is node i's last Raft configuration (/node/consensus): node ids.
func (w *partNet) voters(t *testing.T, i int) map[string]any {
	t.Helper()
	_, _, body, _ := try(w.admin[i], "GET", "https://"+w.procs[i].addr+"/node/consensus", "")
	details, _ := body["details"].(map[string]any)
	configs, _ := details["configs"].([]any)
	if len(configs) == 0 {
		return nil
	}
	last, _ := configs[len(configs)-1].(map[string]any)
	nodes, _ := last["nodes"].(map[string]any)
	return nodes
}

// appendOn appends contents on node i and returns the answer's status and
// transaction id.
func (w *partNet) appendOn(i int, contents string) (int, string) {
	return w.appendVia(w.writer[i], i, contents)
}

// appendVia is appendOn through the client c.
func (w *partNet) appendVia(c *http.Client, i int, contents string) (int, string) {
	status, h, _, err := try(c, "POST", "https://"+w.procs[i].addr+"/app/transactions?api-version=2022-05-13",
		`{"contents":"`+contents+`"}`)
	if err != nil {
		return 0, ""
	}
	return status, h.Get("x-ms-ccf-transaction-id")
}

// commitOn appends contents through the primary among the nodes in among
// and waits until it is Committed there.
func (w *partNet) commitOn(t *testing.T, among []int, contents string) (string, int) {
	t.Helper()
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		p := w.primary(t, among)
		status, txid := w.appendOn(p, contents)
		if status != 200 {
			continue
		}
		for d := time.Now().Add(10 * time.Second); time.Now().Before(d); time.Sleep(10 * time.Millisecond) {
			switch txStatusAt(w.admin[p], w.procs[p].addr, txid) {
			case "Committed":
				return txid, p
			case "Invalid":
				d = time.Time{}
			}
		}
	}
	t.Fatalf("no primary among %v committed %q", among, contents)
	return "", 0
}

// waitStatus waits until txid's status on node i is want.
func (w *partNet) waitStatus(t *testing.T, i int, txid, want string) {
	t.Helper()
	got := ""
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if got = txStatusAt(w.admin[i], w.procs[i].addr, txid); got == want {
			return
		}
	}
	t.Fatalf("%s is %q on node %d, want %s", txid, got, i, want)
}

// settled waits until a write's status is final (Committed or Invalid) on
// node 0, checks it is the same on every node and, if Committed, that
// every node serves it; it returns the status.
func (w *partNet) settled(t *testing.T, cw committedWrite) string {
	t.Helper()
	final := ""
	for deadline := time.Now().Add(20 * time.Second); final != "Committed" && final != "Invalid"; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%s is %q on node 0 after the heal", cw.txid, final)
		}
		final = txStatusAt(w.admin[0], w.procs[0].addr, cw.txid)
	}
	for i := range w.procs {
		w.waitStatus(t, i, cw.txid, final)
		if final == "Committed" {
			readEntry(t, w.admin[i], "https://"+w.procs[i].addr, cw.txid, cw.contents)
		}
	}
	return final
}

// readable checks that node i serves txid's committed entry with contents.
func (w *partNet) readable(t *testing.T, i int, txid, contents string) {
	t.Helper()
	w.waitStatus(t, i, txid, "Committed")
	readEntry(t, w.admin[i], "https://"+w.procs[i].addr, txid, contents)
}

func (w *partNet) commitSeqno(i int) uint64 {
	return commitSeqno(w.admin[i], "https://"+w.procs[i].addr)
}

// partLoad is one client per node appending on that node (a backup
// forwards to the primary), recording every write it was given a
// transaction id for, and those it saw reported Committed.
type partLoad struct {
	w    *partNet
	stop chan struct{}
	wg   sync.WaitGroup

	mu                  sync.Mutex
	accepted, committed []committedWrite
}

func startPartLoad(w *partNet) *partLoad {
	l := &partLoad{w: w, stop: make(chan struct{})}
	for i := range w.procs {
		l.wg.Add(1)
		go l.client(i)
	}
	return l
}

func (l *partLoad) client(i int) {
	defer l.wg.Done()
	// Its own connections: once a backup has forwarded a write of a
	// connection, it forwards that connection's reads too (session
	// consistency), which the test's reads of what a node has must not be.
	tr := l.w.admin[i].Transport.(*http.Transport).Clone()
	defer tr.CloseIdleConnections()
	base, c := "https://"+l.w.procs[i].addr, &http.Client{Timeout: 10 * time.Second, Transport: tr}
	for n := 0; ; n++ {
		select {
		case <-l.stop:
			return
		default:
		}
		contents := fmt.Sprintf("load on node %d, write %d", i, n)
		status, txid := l.w.appendVia(c, i, contents)
		if status != 200 {
			time.Sleep(50 * time.Millisecond) // no primary reachable: try again
			continue
		}
		l.mu.Lock()
		l.accepted = append(l.accepted, committedWrite{txid: txid, contents: contents})
		l.mu.Unlock()
		for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
			_, _, st, err := try(c, "GET", base+"/app/transactions/"+txid+"/status?api-version=2022-05-13", "")
			if err != nil || st["state"] != "Pending" {
				if err == nil && st["state"] == "Committed" {
					l.mu.Lock()
					l.committed = append(l.committed, committedWrite{txid: txid, contents: contents})
					l.mu.Unlock()
				}
				break
			}
		}
	}
}

// end stops the clients and returns the writes they were given an id for
// and those they saw Committed.
func (l *partLoad) end() (accepted, committed []committedWrite) {
	select {
	case <-l.stop:
	default:
		close(l.stop)
	}
	l.wg.Wait()
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.accepted), slices.Clone(l.committed)
}

// converge checks the end state after a heal, the load stopped: every node
// reaches the same commit point; every write a client was given an id for
// ends the same on every node (Committed and served by every node, or
// Invalid), Committed if a client saw it so; and, stopped, every node has
// the same committed chunk files, each data directory passing ledgerctl
// audit.
func (w *partNet) converge(t *testing.T, l *partLoad) {
	t.Helper()
	accepted, committed := l.end()
	var seqnos []uint64
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		seqnos = seqnos[:0]
		for i := range w.procs {
			seqnos = append(seqnos, w.commitSeqno(i))
		}
		if seqnos[0] != 0 && !slices.ContainsFunc(seqnos, func(s uint64) bool { return s != seqnos[0] }) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the nodes' commit points differ after the heal: %v", seqnos)
		}
	}
	for i := range w.procs {
		for _, cw := range committed {
			readEntry(t, w.admin[i], "https://"+w.procs[i].addr, cw.txid, cw.contents)
		}
	}
	invalid := 0
	for _, cw := range accepted {
		if w.settled(t, cw) == "Invalid" {
			invalid++
			if slices.Contains(committed, cw) {
				t.Errorf("%s was reported Committed, and is Invalid", cw.txid)
			}
		}
	}
	t.Logf("%d nodes at commit seqno %d; %d writes the clients saw Committed are on every node; of the %d given an id, %d ended Invalid (rolled back)",
		len(w.procs), seqnos[0], len(committed), len(accepted), invalid)
	for _, p := range w.procs {
		p.stop(t)
	}
	compareCommittedChunks(t, w.dirs)
	ctl := testbin.Command(t, "", "github.com/ledgerd/ledgerd/cmd/ledgerctl")
	for i, dir := range w.dirs {
		if out, err := exec.Command(ctl, "audit", "-q", dir).CombinedOutput(); err != nil {
			t.Errorf("ledgerctl audit of node %d's directory: %v\n%s", i, err, out)
		}
	}
}

// others is every node but the given ones.
func (w *partNet) others(not ...int) []int {
	var o []int
	for i := range w.procs {
		if !slices.Contains(not, i) {
			o = append(o, i)
		}
	}
	return o
}

// TestMinorityPrimaryCommitsNothing (issue 11): the primary of a
// three-node network under load is cut off from both backups (its
// node-to-node links reset; it keeps running and serving its clients). It
// may still accept writes (within its commit window; later ones wait in
// its queue and are refused), but commits none of them, and steps down
// once it has not heard a quorum for an election timeout (CheckQuorum); the two
// others elect a primary that commits writes, which the cut-off node does
// not have. After the heal, every write the cut-off primary accepted is
// Invalid on every node (rolled back: it was never replicated), and the
// network converges: one commit point, every write a client saw Committed
// on every node, identical committed chunk files, each directory audited.
func TestMinorityPrimaryCommitsNothing(t *testing.T) {
	if testing.Short() {
		t.Skip("starts three ledgerd processes")
	}
	w := startPartitionable(t, 3, "--chunk-size", "16384")
	l := startPartLoad(w)
	defer l.end() // on failure
	before, old := w.commitOn(t, nil, "before")
	backups := w.others(old)
	for i := range w.procs {
		w.readable(t, i, before, "before")
	}

	w.partition(cutReset, []int{old}, backups)
	cutAt := time.Now()
	// Writes to the cut-off primary, until it steps down.
	var accepted []string
	for k := 0; isPrimaryAt(w.admin[old], w.procs[old].addr); k++ {
		if time.Since(cutAt) > 15*time.Second {
			t.Fatal("the cut-off primary did not step down")
		}
		if status, txid := w.appendOn(old, fmt.Sprintf("cut off %d", k)); status == 200 {
			accepted = append(accepted, txid)
		}
		time.Sleep(20 * time.Millisecond) // pacing the writes; the loop waits on the step-down
	}
	steppedDown := time.Since(cutAt)
	// Nothing it accepted is committed, there or anywhere.
	for _, id := range accepted {
		for i := range w.procs {
			if s := txStatusAt(w.admin[i], w.procs[i].addr, id); s == "Committed" {
				t.Fatalf("%s, accepted by a primary without a quorum, is Committed on node %d", id, i)
			}
		}
	}
	// The majority elects a primary and commits; the cut-off node keeps
	// serving its clients what it had, but not that.
	during, p := w.commitOn(t, backups, "during")
	for _, i := range backups {
		w.readable(t, i, during, "during")
	}
	readEntry(t, w.admin[old], "https://"+w.procs[old].addr, before, "before")
	if s := txStatusAt(w.admin[old], w.procs[old].addr, during); s == "Committed" {
		t.Fatalf("the cut-off node has %s Committed", during)
	}
	if status, _ := w.appendOn(old, "refused"); status != 503 {
		t.Fatalf("a write to the cut-off node that stepped down: %d, want 503", status)
	}
	t.Logf("the cut-off primary accepted %d writes and stepped down after %s; node %d is the new primary (view %d)",
		len(accepted), steppedDown.Round(time.Millisecond), p, viewOf(during))

	w.heal()
	after, _ := w.commitOn(t, nil, "after")
	for i := range w.procs {
		w.readable(t, i, during, "during")
		w.readable(t, i, after, "after")
		for _, id := range accepted {
			w.waitStatus(t, i, id, "Invalid")
		}
	}
	w.converge(t, l)
}

// TestPartitionedBackupCatchesUp (issue 11): a backup of a three-node
// network under load is cut off by a blackhole (its links stall, silent).
// The others go on committing without it; it keeps serving its clients
// what it had, refuses writes it cannot forward (503), and commits nothing
// new. After the heal (the held traffic delivered late, then fresh
// streams) it catches up with everything without deposing the primary
// (PreVote: it did not raise the view while away), and the network
// converges.
func TestPartitionedBackupCatchesUp(t *testing.T) {
	if testing.Short() {
		t.Skip("starts three ledgerd processes")
	}
	w := startPartitionable(t, 3, "--chunk-size", "16384")
	l := startPartLoad(w)
	defer l.end() // on failure
	before, p := w.commitOn(t, nil, "before")
	b := w.others(p)[0]
	w.readable(t, b, before, "before")

	w.partition(cutBlackhole, []int{b}, w.others(b))
	cutAt := time.Now()
	// Writes committed without it, for at least six election timeouts (in
	// which a backup without PreVote would have stood for election several
	// times, raising its view each time).
	var during []string
	for k := 0; k < 20 || time.Since(cutAt) < 3*time.Second; k++ {
		txid, _ := w.commitOn(t, w.others(b), fmt.Sprintf("during %d", k))
		during = append(during, txid)
	}
	readEntry(t, w.admin[b], "https://"+w.procs[b].addr, before, "before")
	// A write through the cut-off backup is refused once it knows no
	// primary (after the election timeout it has not heard one).
	for deadline := time.Now().Add(15 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		status, _ := w.appendOn(b, "through the cut-off backup")
		if status == 503 {
			break
		}
		if status == 200 || time.Now().After(deadline) {
			t.Fatalf("a write through the cut-off backup: %d, want 503", status)
		}
	}
	for _, id := range during {
		if s := txStatusAt(w.admin[b], w.procs[b].addr, id); s == "Committed" {
			t.Fatalf("the cut-off backup has %s Committed", id)
		}
	}
	primaryView := viewOf(during[len(during)-1])

	w.heal()
	for k, id := range during {
		w.readable(t, b, id, fmt.Sprintf("during %d", k))
	}
	after, _ := w.commitOn(t, nil, "after")
	// PreVote: the backup that could not reach the primary did not raise
	// the view while away and depose the primary when it came back (one
	// election's slack, for one unrelated to the partition on a loaded
	// machine).
	if v := viewOf(after); v > primaryView+1 {
		t.Fatalf("view %d during the partition, %d after the heal: the healed backup deposed the primary", primaryView, v)
	}
	w.converge(t, l)
}

// TestSplitWithoutMajority (issue 11): a four-node network under load is
// split two and two, the primary with one backup. Neither side has a
// majority (3 of 4): the primary, though one backup still answers it,
// steps down (CheckQuorum), nothing it accepted commits, and no node of
// either side becomes primary while split (PreVote and the quorum rule).
// After the heal a primary is elected, and each write the old one accepted
// while split ends the same on every node: Invalid (rolled back), or
// Committed and served by every node (it reached its side's backup, whose
// longer log may win the election after the heal: Raft then commits it,
// as CCF does once a signature covers it), and the network converges.
func TestSplitWithoutMajority(t *testing.T) {
	if testing.Short() {
		t.Skip("starts four ledgerd processes")
	}
	w := startPartitionable(t, 4, "--chunk-size", "16384")
	l := startPartLoad(w)
	defer l.end() // on failure
	before, old := w.commitOn(t, nil, "before")
	others := w.others(old)
	sideA, sideB := []int{old, others[0]}, others[1:]
	for i := range w.procs {
		w.readable(t, i, before, "before")
	}
	w.partition(cutReset, sideA, sideB)
	cutAt := time.Now()
	var accepted []committedWrite
	for k := 0; isPrimaryAt(w.admin[old], w.procs[old].addr); k++ {
		if time.Since(cutAt) > 15*time.Second {
			t.Fatal("the primary of a side without a majority did not step down")
		}
		contents := fmt.Sprintf("split %d", k)
		if status, txid := w.appendOn(old, contents); status == 200 {
			accepted = append(accepted, committedWrite{txid: txid, contents: contents})
		}
		time.Sleep(20 * time.Millisecond) // pacing the writes; the loop waits on the step-down
	}
	t.Logf("the primary accepted %d writes and stepped down after %s", len(accepted), time.Since(cutAt).Round(time.Millisecond))
	// No primary anywhere, and nothing commits, for six election timeouts.
	seqnos := make([]uint64, len(w.procs))
	for i := range w.procs {
		seqnos[i] = w.commitSeqno(i)
	}
	for end := time.Now().Add(3 * time.Second); time.Now().Before(end); time.Sleep(50 * time.Millisecond) {
		for i := range w.procs {
			if isPrimaryAt(w.admin[i], w.procs[i].addr) {
				t.Fatalf("node %d became primary while no side has a majority", i)
			}
			if s := w.commitSeqno(i); s != seqnos[i] {
				t.Fatalf("node %d's commit point moved from %d to %d while split", i, seqnos[i], s)
			}
		}
	}
	for _, cw := range accepted {
		for i := range w.procs {
			if s := txStatusAt(w.admin[i], w.procs[i].addr, cw.txid); s == "Committed" {
				t.Fatalf("%s is Committed on node %d while no side has a majority", cw.txid, i)
			}
		}
	}
	w.heal()
	after, _ := w.commitOn(t, nil, "after")
	invalid := 0
	for i := range w.procs {
		w.readable(t, i, after, "after")
	}
	for _, cw := range accepted {
		if w.settled(t, cw) == "Invalid" {
			invalid++
		}
	}
	t.Logf("of the %d writes accepted while split, %d are Invalid, %d Committed after the heal", len(accepted), invalid, len(accepted)-invalid)
	w.converge(t, l)
}

// TestOneWayPartition (issue 11): the primary of a three-node network under
// load still reaches its backups, but nothing of theirs reaches it (the
// backups' connections to it reset: a one-way cut, as when its peers
// cannot reach its published address). Its heartbeats go on
// arriving, but no acknowledgement comes back: it commits nothing it
// accepts (it never sees one Committed) and steps down (CheckQuorum); the
// backups, no longer hearing it, elect one of them, which commits. The
// old primary's pre-votes reach them but their answers do not reach it,
// and it does not depose the new primary (PreVote, and the backups'
// lease). After the heal each write it accepted ends the same on every
// node (it may have reached the backups, whose new primary then commits
// it), and the network converges.
func TestOneWayPartition(t *testing.T) {
	if testing.Short() {
		t.Skip("starts three ledgerd processes")
	}
	w := startPartitionable(t, 3, "--chunk-size", "16384")
	l := startPartLoad(w)
	defer l.end() // on failure
	before, old := w.commitOn(t, nil, "before")
	backups := w.others(old)
	for i := range w.procs {
		w.readable(t, i, before, "before")
	}
	w.cutOneWay(cutReset, backups, []int{old})
	cutAt := time.Now()
	var accepted []committedWrite
	for k := 0; isPrimaryAt(w.admin[old], w.procs[old].addr); k++ {
		if time.Since(cutAt) > 15*time.Second {
			t.Fatal("the primary that hears nothing did not step down")
		}
		contents := fmt.Sprintf("one way %d", k)
		if status, txid := w.appendOn(old, contents); status == 200 {
			accepted = append(accepted, committedWrite{txid: txid, contents: contents})
		}
		time.Sleep(20 * time.Millisecond) // pacing the writes; the loop waits on the step-down
	}
	t.Logf("the primary accepted %d writes and stepped down after %s", len(accepted), time.Since(cutAt).Round(time.Millisecond))
	during, p := w.commitOn(t, backups, "during")
	for _, i := range backups {
		w.readable(t, i, during, "during")
	}
	for _, cw := range append(accepted, committedWrite{txid: during}) {
		if s := txStatusAt(w.admin[old], w.procs[old].addr, cw.txid); s == "Committed" {
			t.Fatalf("the node that hears nothing has %s Committed", cw.txid)
		}
	}
	// The new primary stays: a second write commits in the same view.
	again, _ := w.commitOn(t, backups, "again")
	if viewOf(again) != viewOf(during) {
		t.Fatalf("the view moved from %d to %d while the old primary was cut off one way", viewOf(during), viewOf(again))
	}
	t.Logf("node %d is the new primary (view %d)", p, viewOf(during))
	w.heal()
	after, _ := w.commitOn(t, nil, "after")
	for i := range w.procs {
		w.readable(t, i, during, "during")
		w.readable(t, i, after, "after")
	}
	invalid := 0
	for _, cw := range accepted {
		if w.settled(t, cw) == "Invalid" {
			invalid++
		}
	}
	t.Logf("of the %d writes accepted while cut off, %d are Invalid, %d Committed after the heal", len(accepted), invalid, len(accepted)-invalid)
	w.converge(t, l)
}
