package main

import (
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"

	"github.com/ledgerd/ledgerd/internal/ledger"
	"github.com/ledgerd/ledgerd/internal/tables"
	"github.com/ledgerd/ledgerd/receipt"
)

// The linearizability check (issue 11) of a three-node network under faults,
// with github.com/anishathalye/porcupine.
//
// What CCF guarantees, and so what is checked. The object is the service's
// committed history of one collection: the appends that end Committed, in
// seqno order. CCF (docs "Verifying Transactions", ccf.consensus
// getStatusForTxId) promises:
//
//   - A transaction's status on a node moves from Unknown/Pending to one
//     final status, Committed or Invalid; nodes may lag (a Committed
//     transaction may still be Pending, even Unknown, on a backup) but never
//     disagree on a final status. Committed is durable: the committed
//     history is one sequence, the same on every node.
//   - Committed transactions are totally ordered by seqno, and that order
//     respects real time: a write answered before another is sent has the
//     smaller seqno if both commit (Raft's log: entries of one primary in
//     order, entries of a later view after those of an earlier one).
//   - Reads run against the answering node's latest executed state. That is
//     NOT linearizable on a backup (it lags) nor on a primary that has been
//     deposed without knowing it yet (a newer primary may have committed
//     writes it has not seen), and it may show Pending writes that later
//     turn Invalid. CCF offers session consistency, not linearizable reads.
//
// So the history holds three operations, each with its call and return
// times:
//
//   - Append(contents) -> the id the node answered, and the id at which the
//     contents are in the final committed history (read from every node once
//     the faults stop and the nodes converge; the three must agree). An
//     append that never committed has no effect; one whose answer was lost
//     (a killed node, a 503) but whose contents committed is an operation
//     that returns at the end of the history. The model requires the two ids
//     to be equal and the committed ids to increase along the linearization:
//     the committed order is a total order consistent with real time.
//   - Status(id) on any node (/node/tx) -> Unknown, Pending, Committed or
//     Invalid. Committed requires the id to be in the final committed history
//     and its append to be linearized already; Invalid requires it not to be
//     (a final status that flips, or a Committed write lost, is illegal).
//     Unknown and Pending constrain nothing: a node's view may lag.
//   - Read() -> the collection's current entry (GET /app/transactions/current),
//     served by the client's node from its latest executed state. The model
//     requires it to be the last committed append of the linearization. Only
//     reads that CCF makes linearizable are in the history: "fenced" reads,
//     bracketed by two appends of the same client on the same node that the
//     same primary sequenced in the same view v, the later one committed, and
//     the read served by that primary (the node that signed view v's
//     signatures, from the ledger after the run). Then the node was the
//     primary of v from before the read until after it, no newer primary had
//     committed anything (the later append could not have committed), so its
//     executed state held every write answered before the read, and
//     everything in it was committed. Every other read (backups, reads across
//     a view change) is only checked for contents: an id the final history
//     has must carry the same contents.
//
// Besides the history, one rule CCF states per node is checked directly
// (finalStatusFlips): once a node's process has answered Committed or
// Invalid for an id, it answers the same from then on. A restarted node is
// a new process that may lag, as another node may.
//
// Faults, in each of two rounds (LEDGERD_LIN_ROUNDS sets more, to hunt bugs
// outside CI): the primary killed with SIGKILL and restarted on its
// directory; then a node stopped (SIGSTOP) past an election timeout and
// resumed: the primary in even rounds, so that it resumes deposed, a backup
// in odd ones.

// linKind is the kind of an operation of the history.
type linKind int

const (
	linAppend linKind = iota
	linRead
	linStatus
)

// linInput is an operation's input. Fate is, for a status read, whether
// the id asked is in the final committed history ("Committed") or not
// ("Invalid").
type linInput struct {
	Kind     linKind
	Client   int
	Node     int
	Contents string // append: the contents sent
	Txid     string // status: the id asked
	Fate     string // status: the id's fate in the final history
}

// linOutput is an operation's output.
type linOutput struct {
	Txid     string // append: the id answered ("" if no answer); read: the entry's id
	Final    string // append: the id of the contents in the final committed history ("" if none)
	Contents string // read: the entry's contents
	State    string // status: the node's answer
}

// linState is the model's state: the last committed append linearized.
type linState struct {
	Seqno    uint64
	Txid     string
	Contents string
}

func seqnoOf(txid string) uint64 {
	id, err := receipt.ParseTxID(txid)
	if err != nil {
		return 0
	}
	return id.Seqno
}

func viewOf(txid string) uint64 {
	id, err := receipt.ParseTxID(txid)
	if err != nil {
		return 0
	}
	return id.View
}

// linModel is the sequential specification described above.
var linModel = porcupine.Model{
	Init: func() any { return linState{} },
	Step: func(state, input, output any) (bool, any) {
		st, in, out := state.(linState), input.(linInput), output.(linOutput)
		switch in.Kind {
		case linAppend:
			if out.Final == "" {
				return true, st // never committed: no effect
			}
			if out.Txid != "" && out.Txid != out.Final {
				return false, st // answered one id, committed at another
			}
			s := seqnoOf(out.Final)
			if s <= st.Seqno {
				return false, st // committed before a write that precedes it
			}
			return true, linState{Seqno: s, Txid: out.Final, Contents: in.Contents}
		case linRead:
			return out.Txid == st.Txid && out.Contents == st.Contents, st
		case linStatus:
			switch out.State {
			case "Committed":
				return in.Fate == "Committed" && seqnoOf(in.Txid) <= st.Seqno, st
			case "Invalid":
				return in.Fate != "Committed", st
			default: // Unknown, Pending: a node may lag
				return true, st
			}
		}
		return false, st
	},
	Hash: func(state any) uint64 { return state.(linState).Seqno },
	DescribeOperation: func(input, output any) string {
		in, out := input.(linInput), output.(linOutput)
		switch in.Kind {
		case linAppend:
			return fmt.Sprintf("append(%q)@%d -> %s (final %s)", in.Contents, in.Node, orNone(out.Txid), orNone(out.Final))
		case linRead:
			return fmt.Sprintf("current()@%d -> %s %q", in.Node, out.Txid, out.Contents)
		default:
			return fmt.Sprintf("status(%s)@%d -> %s (fate %s)", in.Txid, in.Node, out.State, in.Fate)
		}
	},
	DescribeState: func(state any) string {
		st := state.(linState)
		return fmt.Sprintf("last committed %s %q", orNone(st.Txid), st.Contents)
	},
}

func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}

// TestLinearizabilityModelRejects proves the checker can fail: histories
// that break each guarantee are rejected, and their legal neighbours are
// accepted.
func TestLinearizabilityModelRejects(t *testing.T) {
	app := func(client int, call, ret int64, contents, txid, final string) porcupine.Operation {
		return porcupine.Operation{ClientId: client, Call: call, Return: ret,
			Input: linInput{Kind: linAppend, Client: client, Contents: contents}, Output: linOutput{Txid: txid, Final: final}}
	}
	read := func(client int, call, ret int64, txid, contents string) porcupine.Operation {
		return porcupine.Operation{ClientId: client, Call: call, Return: ret,
			Input: linInput{Kind: linRead, Client: client}, Output: linOutput{Txid: txid, Contents: contents}}
	}
	status := func(client int, call, ret int64, txid, fate, state string) porcupine.Operation {
		return porcupine.Operation{ClientId: client, Call: call, Return: ret,
			Input: linInput{Kind: linStatus, Client: client, Txid: txid, Fate: fate}, Output: linOutput{State: state}}
	}
	for _, tc := range []struct {
		name    string
		ok      bool
		history []porcupine.Operation
	}{
		{"sequential appends and reads", true, []porcupine.Operation{
			app(0, 0, 10, "a", "2.5", "2.5"), read(1, 11, 12, "2.5", "a"),
			app(0, 13, 20, "b", "2.8", "2.8"), read(1, 21, 22, "2.8", "b"),
		}},
		{"stale current read after a later committed append", false, []porcupine.Operation{
			app(0, 0, 10, "a", "2.5", "2.5"), app(0, 11, 20, "b", "2.8", "2.8"), read(1, 21, 22, "2.5", "a"),
		}},
		{"a read concurrent with the append may see either", true, []porcupine.Operation{
			app(0, 0, 10, "a", "2.5", "2.5"), app(0, 11, 20, "b", "2.8", "2.8"), read(1, 15, 22, "2.5", "a"),
		}},
		{"a read of contents other than the committed ones", false, []porcupine.Operation{
			app(0, 0, 10, "a", "2.5", "2.5"), read(1, 11, 12, "2.5", "x"),
		}},
		{"a read of a write that never committed", false, []porcupine.Operation{
			app(0, 0, 10, "a", "2.5", "2.5"), app(0, 11, 20, "b", "2.6", ""), read(1, 21, 22, "2.6", "b"),
		}},
		{"committed order against real time", false, []porcupine.Operation{
			app(0, 0, 10, "a", "3.9", "3.9"), app(1, 11, 20, "b", "3.7", "3.7"),
		}},
		{"concurrent appends commit in either order", true, []porcupine.Operation{
			app(0, 0, 10, "a", "3.9", "3.9"), app(1, 5, 20, "b", "3.7", "3.7"),
		}},
		{"answered one id, committed at another", false, []porcupine.Operation{
			app(0, 0, 10, "a", "2.5", "3.5"),
		}},
		{"a lost answer that committed", true, []porcupine.Operation{
			app(0, 0, 100, "a", "", "2.5"), app(1, 20, 30, "b", "2.7", "2.7"), read(1, 31, 32, "2.7", "b"),
		}},
		{"status flip: Committed on one node, Invalid on another", false, []porcupine.Operation{
			app(0, 0, 10, "a", "2.5", "2.5"), status(1, 11, 12, "2.5", "Committed", "Committed"), status(2, 13, 14, "2.5", "Committed", "Invalid"),
		}},
		{"a Committed write lost", false, []porcupine.Operation{
			app(0, 0, 10, "a", "2.5", ""), status(1, 11, 12, "2.5", "Invalid", "Committed"),
		}},
		{"a lagging node may say Pending or Unknown", true, []porcupine.Operation{
			app(0, 0, 10, "a", "2.5", "2.5"), status(1, 11, 12, "2.5", "Committed", "Committed"),
			status(2, 13, 14, "2.5", "Committed", "Pending"), status(2, 15, 16, "2.5", "Committed", "Unknown"),
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res, info := porcupine.CheckOperationsVerbose(linModel, tc.history, 10*time.Second)
			if (res == porcupine.Ok) != tc.ok {
				path := filepath.Join(t.ArtifactDir(), "linearizability.html")
				porcupine.VisualizePath(linModel, info, path)
				t.Fatalf("porcupine says %s, want ok=%v (visualisation: %s)", res, tc.ok, path)
			}
		})
	}
}

// linRecord is one operation as a client saw it.
type linRecord struct {
	client, node int
	kind         linKind
	call, ret    int64 // nanoseconds since the history began
	answered     bool  // a definite answer (200)
	contents     string
	txid         string
	state        string
	incarnation  int // status: the node's process, counted from 0; -1 if it was restarted during the call
}

// linLoad is the clients of the linearizability test.
type linLoad struct {
	addrs  [3]string
	writes [3]*http.Client // appends (a backup forwards them; the session then sticks to the primary)
	reads  [3]*http.Client // reads only: never forwarded, served by the node itself
	start  time.Time
	stop   chan struct{}
	wg     sync.WaitGroup

	mu          sync.Mutex
	known       []string // ids answered to appends, for status reads
	records     [][]linRecord
	incarnation [3]int // each node's restarts
}

func (l *linLoad) incarnationOf(i int) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.incarnation[i]
}

const linCollection = "lin"

func (l *linLoad) now() int64 { return int64(time.Since(l.start)) }

// client g works on node g%3: append, read the current entry, read the
// status of a known id on some node, and again until stopped.
func (l *linLoad) client(g int) {
	defer l.wg.Done()
	rng := rand.New(rand.NewPCG(uint64(g), 11))
	node := g % 3
	var recs []linRecord
	defer func() {
		l.mu.Lock()
		l.records[g] = recs
		l.mu.Unlock()
	}()
	for n := 0; ; n++ {
		select {
		case <-l.stop:
			return
		default:
		}
		base := "https://" + l.addrs[node]
		// Append.
		r := linRecord{client: g, node: node, kind: linAppend, contents: fmt.Sprintf("c%d-%d", g, n), call: l.now()}
		status, h, _, err := try(l.writes[node], "POST", base+"/app/transactions?api-version=2022-05-13&collectionId="+linCollection,
			`{"contents":"`+r.contents+`"}`)
		r.ret = l.now()
		if err == nil && status == 200 {
			r.answered, r.txid = true, h.Get("x-ms-ccf-transaction-id")
			l.mu.Lock()
			l.known = append(l.known, r.txid)
			l.mu.Unlock()
		}
		recs = append(recs, r)
		// Read the current entry.
		r = linRecord{client: g, node: node, kind: linRead, call: l.now()}
		status, _, body, err := try(l.reads[node], "GET", base+"/app/transactions/current?api-version=2022-05-13&collectionId="+linCollection, "")
		r.ret = l.now()
		if err == nil && status == 200 {
			r.answered = true
			r.txid, _ = body["transactionId"].(string)
			r.contents, _ = body["contents"].(string)
		}
		recs = append(recs, r)
		// The status of a known id, on any node.
		l.mu.Lock()
		var id string
		if len(l.known) > 0 {
			id = l.known[rng.IntN(len(l.known))]
		}
		l.mu.Unlock()
		if id != "" {
			sn := rng.IntN(3)
			r = linRecord{client: g, node: sn, kind: linStatus, txid: id, incarnation: l.incarnationOf(sn), call: l.now()}
			status, _, body, err := try(l.reads[sn], "GET", "https://"+l.addrs[sn]+"/node/tx?transaction_id="+id, "")
			r.ret = l.now()
			if l.incarnationOf(sn) != r.incarnation {
				r.incarnation = -1
			}
			if s, _ := body["status"].(string); err == nil && status == 200 && s != "" {
				r.answered, r.state = true, s
			}
			recs = append(recs, r)
		}
		if err != nil || status != 200 {
			time.Sleep(20 * time.Millisecond) // a node down or electing: do not spin
		}
	}
}

// TestLinearizability (issue 11): clients on all three nodes append to one
// collection, read its current entry and read statuses on every node while
// the primary is killed and restarted and nodes are stopped and resumed;
// the history is checked with porcupine against the model above. On
// failure the visualisation is written to the test's artifact directory
// (kept with go test -artifacts).
func TestLinearizability(t *testing.T) {
	if testing.Short() {
		t.Skip("starts three ledgerd processes and kills them")
	}
	w := startNetwork(t)
	l := &linLoad{stop: make(chan struct{}), records: make([][]linRecord, 6)}
	var nodeIDs [3]string
	for i := range w.procs {
		l.addrs[i] = w.procs[i].addr
		for _, c := range []**http.Client{&l.writes[i], &l.reads[i]} {
			tr := w.admin[i].Transport.(*http.Transport).Clone()
			*c = &http.Client{Timeout: 5 * time.Second, Transport: tr}
			t.Cleanup(tr.CloseIdleConnections)
		}
		_, _, self := call(t, w.admin[i], "GET", "https://"+w.procs[i].addr+"/node/network/nodes/self", "")
		nodeIDs[i], _ = self["node_id"].(string)
		if nodeIDs[i] == "" {
			t.Fatalf("node %d has no id: %v", i, self)
		}
	}
	restart := func(i int) {
		l.mu.Lock()
		l.incarnation[i]++
		l.mu.Unlock()
		w.procs[i] = startLedgerd(t, w.bin, "--data", w.dirs[i], "--election-timeout", "500ms",
			"--listen", l.addrs[i], "--peer-listen", w.peers[i])
	}
	stopped := map[int]bool{}
	defer func() {
		for i := range stopped {
			w.procs[i].cmd.Process.Signal(syscall.SIGCONT)
		}
	}()
	primary := func() int {
		for deadline := time.Now().Add(15 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
			for i := range w.procs {
				if !stopped[i] && w.isPrimary(t, i) {
					return i
				}
			}
		}
		t.Fatal("no primary")
		return 0
	}
	// caughtUp waits until every node has committed as far as the primary
	// had when called.
	caughtUp := func() {
		p := primary()
		target := commitSeqno(w.admin[p], "https://"+l.addrs[p])
		for i := range w.procs {
			for deadline := time.Now().Add(20 * time.Second); commitSeqno(w.admin[i], "https://"+l.addrs[i]) < target; time.Sleep(20 * time.Millisecond) {
				if time.Now().After(deadline) {
					t.Fatalf("node %d did not catch up to seqno %d", i, target)
				}
			}
		}
	}
	signal := func(i int, s syscall.Signal) {
		if err := w.procs[i].cmd.Process.Signal(s); err != nil {
			t.Fatal(err)
		}
		stopped[i] = s == syscall.SIGSTOP
	}
	l.start = time.Now()
	for g := range 6 {
		l.wg.Add(1)
		go l.client(g)
	}
	loadStopped := false
	stopLoad := func() {
		if !loadStopped {
			loadStopped = true
			close(l.stop)
			l.wg.Wait()
		}
	}
	defer stopLoad()

	// The faults, with load between them (these sleeps are the load's
	// duration, not synchronisation).
	const between = 2 * time.Second
	rounds := 2
	if v := os.Getenv("LEDGERD_LIN_ROUNDS"); v != "" { // more faults, to hunt bugs outside CI
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			t.Fatalf("LEDGERD_LIN_ROUNDS=%q: want a positive number", v)
		}
		rounds = n
	}
	var faults []string
	for k := range rounds {
		time.Sleep(between)
		p := primary()
		w.procs[p].cmd.Process.Signal(syscall.SIGKILL)
		<-w.procs[p].done
		faults = append(faults, fmt.Sprintf("SIGKILL primary %d", p))
		time.Sleep(between / 2)
		restart(p)
		caughtUp()

		time.Sleep(between)
		if k%2 == 0 {
			p = primary() // the primary, resumed after a new one is elected: deposed
		} else {
			p = (primary() + 1) % 3 // a backup
		}
		signal(p, syscall.SIGSTOP)
		faults = append(faults, fmt.Sprintf("SIGSTOP node %d", p))
		time.Sleep(between)
		signal(p, syscall.SIGCONT)
		delete(stopped, p)
		caughtUp()
	}
	time.Sleep(between)
	stopLoad()
	end := l.now()
	t.Logf("faults: %s", strings.Join(faults, ", "))

	// Converge: a last write committed on every node, the same commit point.
	marker, _ := w.appendOnPrimary(t, "linearizability done", func(int) bool { return true })
	for i := range w.procs {
		w.waitReadable(t, i, marker, "linearizability done")
	}
	caughtUp()
	// The final committed history of the collection, the same on every node.
	var final []linEntry
	for i := range w.procs {
		got := committedEntries(t, w.admin[i], "https://"+l.addrs[i], linCollection)
		if i == 0 {
			final = got
		} else if !slices.Equal(got, final) {
			t.Fatalf("node %d's committed history of %q differs from node 0's: %d vs %d entries", i, linCollection, len(got), len(final))
		}
	}
	for i := range w.procs {
		w.procs[i].stop(t)
	}
	leaders := viewLeaders(t, w.dirs)

	for _, e := range finalStatusFlips(l.records) {
		t.Error(e)
	}
	history, stats := buildLinHistory(t, l.records, final, leaders, nodeIDs, end)
	t.Logf("history: %d operations (%s), %d committed appends in the final history", len(history), stats, len(final))
	if stats.fenced == 0 {
		t.Fatal("no fenced read: the history checks no read")
	}
	began := time.Now()
	res, info := porcupine.CheckOperationsVerbose(linModel, history, time.Duration(rounds)*15*time.Second)
	t.Logf("porcupine: %s in %s", res, time.Since(began).Round(time.Millisecond))
	if res != porcupine.Ok {
		path := filepath.Join(t.ArtifactDir(), "linearizability.html")
		if err := porcupine.VisualizePath(linModel, info, path); err != nil {
			t.Errorf("visualisation: %v", err)
		}
		t.Fatalf("the history is not linearizable (porcupine: %s); visualisation: %s", res, path)
	}
}

// linEntry is an entry of the final committed history.
type linEntry struct{ txid, contents string }

// committedEntries pages through the committed entries of collection on a
// node (GET /app/transactions).
func committedEntries(t *testing.T, c *http.Client, base, collection string) []linEntry {
	t.Helper()
	var out []linEntry
	next := "/app/transactions?api-version=2022-05-13&collectionId=" + url.QueryEscape(collection)
	deadline := time.Now().Add(30 * time.Second)
	for next != "" {
		status, _, body := call(t, c, "GET", base+next, "")
		if status != 200 || time.Now().After(deadline) {
			t.Fatalf("GET %s: %d %v", next, status, body)
		}
		if body["state"] == "Loading" {
			time.Sleep(20 * time.Millisecond) // polling another process, bounded by the deadline
			continue
		}
		entries, _ := body["entries"].([]any)
		for _, e := range entries {
			m, _ := e.(map[string]any)
			id, _ := m["transactionId"].(string)
			contents, _ := m["contents"].(string)
			out = append(out, linEntry{id, contents})
		}
		next, _ = body["nextLink"].(string)
	}
	return out
}

// viewLeaders reads the nodes' ledgers: the node that signed each view's
// signature transactions, the only node that sequences in that view.
func viewLeaders(t *testing.T, dirs [3]string) map[uint64]string {
	t.Helper()
	leaders := map[uint64]string{}
	for _, dir := range dirs {
		err := ledger.Walk(filepath.Join(dir, "ledger"), func(seqno uint64, raw []byte) error {
			e, err := ledger.ParseEntry(raw)
			if err != nil || !e.HasPublicMaps() {
				return err
			}
			d, err := e.PublicDomain()
			if err != nil {
				return err
			}
			ps, ok, err := tables.ParseSignature(d)
			if err != nil || !ok {
				return err
			}
			if other, seen := leaders[ps.View]; seen && other != ps.Node {
				return fmt.Errorf("view %d has signatures of two nodes, %s and %s", ps.View, other, ps.Node)
			}
			leaders[ps.View] = ps.Node
			return nil
		}, ledger.WalkOptions{AllowTornTail: true})
		if err != nil {
			t.Fatalf("walking %s: %v", dir, err)
		}
	}
	return leaders
}

type linStats struct {
	appends, lostAnswers, fenced, unfenced int
	statuses                               map[string]int // by answer
}

func (s linStats) String() string {
	return fmt.Sprintf("%d appends of which %d committed without an answer, %d fenced reads (%d other reads checked for contents only), status reads %v",
		s.appends, s.lostAnswers, s.fenced, s.unfenced, s.statuses)
}

// buildLinHistory turns the clients' records into porcupine operations,
// with each append's and status read's fate from the final history, and
// only the fenced reads (see the doc comment at the top). Reads that are
// not fenced are checked here for contents.
func buildLinHistory(t *testing.T, records [][]linRecord, final []linEntry, leaders map[uint64]string, nodeIDs [3]string, end int64) ([]porcupine.Operation, linStats) {
	t.Helper()
	byTxid := map[string]string{}
	byContents := map[string]string{}
	for _, e := range final {
		if prev, dup := byContents[e.contents]; dup {
			t.Errorf("%q is committed twice, at %s and %s", e.contents, prev, e.txid)
		}
		byContents[e.contents] = e.txid
		byTxid[e.txid] = e.contents
	}
	var ops []porcupine.Operation
	st := linStats{statuses: map[string]int{}}
	for _, recs := range records {
		for k, r := range recs {
			switch r.kind {
			case linAppend:
				fin := byContents[r.contents]
				if !r.answered && fin == "" {
					continue // never committed and never answered: no effect
				}
				ret := r.ret
				if !r.answered {
					ret = end // the answer was lost: it may take effect until the end
					st.lostAnswers++
				}
				st.appends++
				ops = append(ops, porcupine.Operation{ClientId: r.client, Call: r.call, Return: ret,
					Input: linInput{Kind: linAppend, Client: r.client, Node: r.node, Contents: r.contents}, Output: linOutput{Txid: r.txid, Final: fin}})
			case linRead:
				if !r.answered {
					continue
				}
				if c, ok := byTxid[r.txid]; ok && c != r.contents {
					t.Errorf("node %d's current entry %s has %q, the committed history %q", r.node, r.txid, r.contents, c)
				}
				if !fenced(recs, k, byTxid, leaders, nodeIDs[r.node]) {
					st.unfenced++
					continue
				}
				st.fenced++
				ops = append(ops, porcupine.Operation{ClientId: r.client, Call: r.call, Return: r.ret,
					Input: linInput{Kind: linRead, Client: r.client, Node: r.node}, Output: linOutput{Txid: r.txid, Contents: r.contents}})
			case linStatus:
				if !r.answered {
					continue
				}
				fate := "Invalid"
				if _, ok := byTxid[r.txid]; ok {
					fate = "Committed"
				}
				st.statuses[r.state]++
				ops = append(ops, porcupine.Operation{ClientId: r.client, Call: r.call, Return: r.ret,
					Input: linInput{Kind: linStatus, Client: r.client, Node: r.node, Txid: r.txid, Fate: fate}, Output: linOutput{State: r.state}})
			}
		}
	}
	return ops, st
}

// fenced says whether the read recs[k] was served by the primary of one
// view throughout: the client's appends just before and just after it were
// answered with ids of the same view v, the later one is committed, and
// node, which served the read, is the node that signed in view v.
func fenced(recs []linRecord, k int, byTxid map[string]string, leaders map[uint64]string, node string) bool {
	before, after := -1, -1
	for j := k - 1; j >= 0 && before < 0; j-- {
		if recs[j].kind == linAppend {
			before = j
		}
	}
	for j := k + 1; j < len(recs) && after < 0; j++ {
		if recs[j].kind == linAppend {
			after = j
		}
	}
	if before < 0 || after < 0 || !recs[before].answered || !recs[after].answered {
		return false
	}
	v := viewOf(recs[before].txid)
	if v == 0 || viewOf(recs[after].txid) != v {
		return false
	}
	if c, ok := byTxid[recs[after].txid]; !ok || c != recs[after].contents {
		return false
	}
	return leaders[v] == node
}

// finalStatusFlips checks CCF's rule for one node: once it has answered
// Committed or Invalid for an id, it answers the same from then on. A
// restarted node is a new process, whose view may lag (it recovers its
// commit point from disk and catches up), so the rule is checked per
// process. It returns the violations.
func finalStatusFlips(records [][]linRecord) []string {
	var flips []string
	type key struct {
		node, incarnation int
		txid              string
	}
	answers := map[key][]linRecord{}
	for _, recs := range records {
		for _, r := range recs {
			if r.kind == linStatus && r.answered && r.incarnation >= 0 {
				k := key{r.node, r.incarnation, r.txid}
				answers[k] = append(answers[k], r)
			}
		}
	}
	for k, rs := range answers {
		for _, a := range rs {
			if a.state != "Committed" && a.state != "Invalid" {
				continue
			}
			for _, b := range rs {
				if b.call > a.ret && b.state != a.state {
					flips = append(flips, fmt.Sprintf("node %d (process %d) answered %s for %s, then %s", k.node, k.incarnation, a.state, k.txid, b.state))
				}
			}
		}
	}
	return flips
}

// TestFinalStatusFlips: a node that answers Committed then Pending for one
// id in one process is caught; across a restart, or before a final status,
// it is not.
func TestFinalStatusFlips(t *testing.T) {
	st := func(node, inc int, call, ret int64, state string) linRecord {
		return linRecord{kind: linStatus, node: node, incarnation: inc, call: call, ret: ret, answered: true, txid: "2.5", state: state}
	}
	for _, tc := range []struct {
		name  string
		recs  []linRecord
		flips int
	}{
		{"Committed then Pending", []linRecord{st(0, 0, 0, 1, "Committed"), st(0, 0, 2, 3, "Pending")}, 1},
		{"Invalid then Committed", []linRecord{st(1, 2, 0, 1, "Invalid"), st(1, 2, 2, 3, "Committed")}, 1},
		{"Pending then Committed", []linRecord{st(0, 0, 0, 1, "Pending"), st(0, 0, 2, 3, "Committed")}, 0},
		{"a restarted node lags", []linRecord{st(0, 0, 0, 1, "Committed"), st(0, 1, 2, 3, "Pending")}, 0},
		{"another node lags", []linRecord{st(0, 0, 0, 1, "Committed"), st(1, 0, 2, 3, "Unknown")}, 0},
		{"concurrent answers", []linRecord{st(0, 0, 0, 5, "Committed"), st(0, 0, 2, 3, "Pending")}, 0},
	} {
		if got := finalStatusFlips([][]linRecord{tc.recs}); len(got) != tc.flips {
			t.Errorf("%s: %d violations, want %d: %v", tc.name, len(got), tc.flips, got)
		}
	}
}
