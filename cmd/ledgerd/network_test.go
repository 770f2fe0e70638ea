package main

import (
	"context"
	"crypto/tls"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ledgerd/ledgerd/client"
	"github.com/ledgerd/ledgerd/internal/identity"
	"github.com/ledgerd/ledgerd/internal/testbin"
)

// network3 is a three-node service of real ledgerd processes.
type network3 struct {
	bin   string
	dirs  [3]string
	peers [3]string // node-to-node addresses
	procs [3]*process
	admin [3]*http.Client
}

// startNetwork founds a service on node 0 (Opening, so that joiners are
// trusted at once), joins nodes 1 and 2 to it, and opens the service.
// extra are flags given to every node.
func startNetwork(t *testing.T, extra ...string) *network3 {
	t.Helper()
	w := &network3{bin: testbin.Command(t, "", "github.com/ledgerd/ledgerd/cmd/ledgerd")}
	base := t.TempDir()
	for i := range w.dirs {
		w.dirs[i] = filepath.Join(base, string(rune('a'+i)))
	}
	for i := range w.peers {
		w.peers[i] = freeAddr(t)
	}
	w.procs[0] = startLedgerd(t, w.bin, append([]string{"--data", w.dirs[0], "--peer-listen", w.peers[0], "--start-opening", "--election-timeout", "500ms"}, extra...)...)
	for i := 1; i < 3; i++ {
		w.procs[i] = startLedgerd(t, w.bin, append([]string{"--data", w.dirs[i], "--peer-listen", w.peers[i], "--election-timeout", "500ms",
			"--join", "https://" + w.procs[0].addr, "--service-cert", filepath.Join(w.dirs[0], "service.pem")}, extra...)...)
	}
	// The joined nodes hold the service's certificate; the administrator's
	// credentials are the founder's.
	for i := range w.dirs {
		w.admin[i] = httpsClientWith(t, filepath.Join(w.dirs[0], "service.pem"), filepath.Join(w.dirs[0], "admin.pem"))
	}
	// Open the service: a proposal of member0, voted at once.
	c, err := client.New("https://"+w.procs[0].addr, client.CertificateFile(filepath.Join(w.dirs[0], "member0.pem")),
		&client.Options{ServiceCertFile: filepath.Join(w.dirs[0], "service.pem")})
	if err != nil {
		t.Fatal(err)
	}
	cert, err := os.ReadFile(filepath.Join(w.dirs[0], "service.pem"))
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
	return w
}

// freeAddr returns a loopback address with a port that was free a moment
// ago.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

func httpsClientWith(t *testing.T, serviceCert, credPEM string) *http.Client {
	t.Helper()
	dir := t.TempDir()
	for _, f := range []string{"service.pem", "admin.pem"} {
		src := serviceCert
		if f == "admin.pem" {
			src = credPEM
		}
		b, err := os.ReadFile(src)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, f), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return httpsClient(t, dir)
}

// appendOnPrimary appends through the node that says it is the primary
// (/node/network/nodes/self; a backup would forward the write) and returns
// its transaction id and the node's index.
func (w *network3) appendOnPrimary(t *testing.T, contents string, alive func(int) bool) (string, int) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		for i, p := range w.procs {
			if !alive(i) || !w.isPrimary(t, i) {
				continue
			}
			status, h, _ := call(t, w.admin[i], "POST", "https://"+p.addr+"/app/transactions?api-version=2022-05-13",
				`{"contents":"`+contents+`"}`)
			if status == 200 {
				return h.Get("x-ms-ccf-transaction-id"), i
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("no node took the write %q", contents)
	return "", 0
}

// waitReadable waits until node i serves txid's entry, committed.
func (w *network3) waitReadable(t *testing.T, i int, txid, contents string) {
	t.Helper()
	base := "https://" + w.procs[i].addr
	waitCommittedHTTP(t, w.admin[i], base, txid)
	readEntry(t, w.admin[i], base, txid, contents)
}

// TestThreeNodeNetwork: two nodes join a founder; a write on the primary
// is committed and read on every node; after the primary is killed, the
// others elect one that commits a write; the killed node restarts on its
// directory, rejoins and catches up.
func TestThreeNodeNetwork(t *testing.T) {
	if testing.Short() {
		t.Skip("starts three ledgerd processes")
	}
	w := startNetwork(t)
	all := func(int) bool { return true }
	txid, primary := w.appendOnPrimary(t, "replicated", all)
	for i := range w.procs {
		w.waitReadable(t, i, txid, "replicated")
	}
	// Every node lists the three nodes' quotes, for the same code.
	for i := range w.procs {
		_, _, body := call(t, w.admin[i], "GET", "https://"+w.procs[i].addr+"/app/enclaveQuotes?api-version=2022-05-13", "")
		quotes, _ := body["enclaveQuotes"].(map[string]any)
		if len(quotes) != 3 {
			t.Fatalf("node %d lists %d quotes: %v", i, len(quotes), body)
		}
		var measurement any
		for id, q := range quotes {
			m := q.(map[string]any)["mrenclave"]
			if measurement != nil && m != measurement || m == "" {
				t.Fatalf("node %d: quote of %s has mrenclave %v, another %v", i, id, m, measurement)
			}
			measurement = m
		}
	}
	// Kill the primary.
	w.procs[primary].cmd.Process.Signal(syscall.SIGKILL)
	<-w.procs[primary].done
	killed := time.Now()
	alive := func(i int) bool { return i != primary }
	// A survivor takes writes again once a new primary is elected (as the
	// primary, or forwarding to it); until then it answers 503, never
	// anything else, and never hangs.
	s := (primary + 1) % 3
	for deadline := time.Now().Add(15 * time.Second); ; {
		status, h, body := call(t, w.admin[s], "POST", "https://"+w.procs[s].addr+"/app/transactions?api-version=2022-05-13", `{"contents":"survivor"}`)
		if status == 200 {
			w.waitReadable(t, s, h.Get("x-ms-ccf-transaction-id"), "survivor")
			break
		}
		if e, _ := body["error"].(map[string]any); status != 503 || e["code"] != "ServiceUnavailable" || time.Now().After(deadline) {
			t.Fatalf("a write on survivor %d after the primary's death: %d %v", s, status, body)
		}
		time.Sleep(20 * time.Millisecond) // polling another process, bounded by the deadline
	}
	after, newPrimary := w.appendOnPrimary(t, "after failover", alive)
	for i := range w.procs {
		if alive(i) {
			w.waitReadable(t, i, after, "after failover")
		}
	}
	t.Logf("node %d killed; node %d committed a write %s later", primary, newPrimary, time.Since(killed).Round(time.Millisecond))
	// Restart it on its directory and addresses: it rejoins by itself and
	// catches up.
	args := []string{"--data", w.dirs[primary], "--election-timeout", "500ms",
		"--listen", w.procs[primary].addr, "--peer-listen", w.peers[primary]}
	w.procs[primary] = startLedgerd(t, w.bin, args...)
	w.waitReadable(t, primary, after, "after failover")
	w.waitReadable(t, primary, txid, "replicated")
	if !strings.Contains(strings.Join(w.procs[primary].stdout, "\n"), "listening on") {
		t.Fatal("no announcement")
	}
}

// oneConnection returns a client like w.admin[i] that keeps a single
// connection (one client session, in CCF's terms).
func (w *network3) oneConnection(t *testing.T, i int) *http.Client {
	t.Helper()
	tr := w.admin[i].Transport.(*http.Transport).Clone()
	tr.MaxConnsPerHost = 1
	c := &http.Client{Timeout: 10 * time.Second, Transport: tr}
	t.Cleanup(tr.CloseIdleConnections)
	return c
}

// answeringNode returns the node id that answered /app/enclaveQuotes
// (its currentNodeId) through c on node i.
func (w *network3) answeringNode(t *testing.T, c *http.Client, i int) string {
	t.Helper()
	status, _, body := call(t, c, "GET", "https://"+w.procs[i].addr+"/app/enclaveQuotes?api-version=2022-05-13", "")
	id, _ := body["currentNodeId"].(string)
	if status != 200 || id == "" {
		t.Fatalf("enclaveQuotes on node %d: %d %v", i, status, body)
	}
	return id
}

// primaryID is the primary's node id as node i knows it.
func (w *network3) primaryID(t *testing.T, i int) string {
	t.Helper()
	status, _, body := call(t, w.admin[i], "GET", "https://"+w.procs[i].addr+"/node/network", "")
	id, _ := body["primary_id"].(string)
	if status != 200 || id == "" {
		t.Fatalf("/node/network on node %d: %d %v", i, status, body)
	}
	return id
}

// expectStatus polls txid's status through c on node i until Committed;
// every answer must be 200 Pending or Committed, never 404.
func expectStatus(t *testing.T, c *http.Client, base, txid string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		status, _, st := call(t, c, "GET", base+"/app/transactions/"+txid+"/status?api-version=2022-05-13", "")
		if status != 200 || (st["state"] != "Pending" && st["state"] != "Committed") {
			t.Fatalf("status of %s on %s: %d %v", txid, base, status, st)
		}
		if st["state"] == "Committed" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s never committed on %s", txid, base)
		}
		time.Sleep(5 * time.Millisecond) // polling another process, bounded by the deadline
	}
}

// TestWritesOnEveryNode: an append sent to any node of a three-node network
// succeeds (a backup forwards it to the primary and answers with the
// primary's transaction id); the client reads it back at once on the same
// connection, whose later requests a backup forwards too (CCF's session
// consistency: the answers come from the primary); a fresh connection to a
// backup is served by the backup; a backup answers the status of an id
// fresh from the primary Pending, then Committed, never 404.
func TestWritesOnEveryNode(t *testing.T) {
	if testing.Short() {
		t.Skip("starts three ledgerd processes")
	}
	w := startNetwork(t)
	ids := make([]string, 3)
	for i := range w.procs {
		ids[i] = w.answeringNode(t, w.oneConnection(t, i), i)
	}
	for i, p := range w.procs {
		base := "https://" + p.addr
		c := w.oneConnection(t, i)
		contents := "written on node " + string(rune('0'+i))
		status, h, body := call(t, c, "POST", base+"/app/transactions?api-version=2022-05-13", `{"contents":"`+contents+`"}`)
		txid := h.Get("x-ms-ccf-transaction-id")
		if status != 200 || txid == "" || body["collectionId"] != "subledger:0" {
			t.Fatalf("append on node %d: %d %q %v", i, status, txid, body)
		}
		expectStatus(t, c, base, txid)
		readEntry(t, c, base, txid, contents)
		primary := w.primaryID(t, i)
		if ids[i] != primary {
			if got := w.answeringNode(t, c, i); got != primary {
				t.Fatalf("after a forwarded write, node %d's connection is answered by %s, not the primary %s", i, got, primary)
			}
			if got := w.answeringNode(t, w.oneConnection(t, i), i); got != ids[i] {
				t.Fatalf("a fresh connection to backup %d is answered by %s", i, got)
			}
		}
		for j := range w.procs {
			w.waitReadable(t, j, txid, contents)
		}
	}
	// A backup's status of an id the primary has just handed out.
	var p int
	for i := range ids {
		if ids[i] == w.primaryID(t, 0) {
			p = i
		}
	}
	b1, b2 := (p+1)%3, (p+2)%3
	// Governance through a backup: member0 proposes a new user and votes
	// for it on b1; the administrator raises its role on b2 and reads it
	// back on the same connection; the new user appends through b1.
	certPEM, keyPEM, err := identity.NewClientIdentity("forwarded user", nil)
	if err != nil {
		t.Fatal(err)
	}
	gc, err := client.New("https://"+w.procs[b1].addr, client.CertificateFile(filepath.Join(w.dirs[0], "member0.pem")),
		&client.Options{ServiceCertFile: filepath.Join(w.dirs[0], "service.pem")})
	if err != nil {
		t.Fatal(err)
	}
	prop, err := gc.CreateProposal(t.Context(), client.Action{Name: "set_user", Args: map[string]any{"cert": string(certPEM), "role": "Reader"}})
	if err != nil {
		t.Fatalf("proposal through a backup: %v", err)
	}
	if prop, err = gc.Vote(t.Context(), prop.ProposalID, true); err != nil || prop.State != "Accepted" {
		t.Fatalf("vote through a backup: %+v %v", prop, err)
	}
	tlsCert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	userID := identity.Fingerprint(tlsCert.Certificate[0])
	c2 := w.oneConnection(t, b2)
	base2 := "https://" + w.procs[b2].addr
	userURL := base2 + "/app/users/" + userID + "?api-version=2022-05-13"
	if status, _, body := call(t, c2, "PATCH", userURL, `{"assignedRole":"Contributor"}`); status != 200 || body["assignedRole"] != "Contributor" {
		t.Fatalf("PATCH user through backup %d: %d %v", b2, status, body)
	}
	if status, _, body := call(t, c2, "GET", userURL, ""); status != 200 || body["assignedRole"] != "Contributor" {
		t.Fatalf("GET user on the same connection to backup %d: %d %v", b2, status, body)
	}
	tr := w.admin[b1].Transport.(*http.Transport).Clone()
	tr.TLSClientConfig.Certificates = []tls.Certificate{tlsCert}
	t.Cleanup(tr.CloseIdleConnections)
	uc := &http.Client{Timeout: 10 * time.Second, Transport: tr}
	base1 := "https://" + w.procs[b1].addr
	deadline := time.Now().Add(20 * time.Second)
	for {
		// b1 learns of the new role once it has the PATCH's commit.
		status, h, body := call(t, uc, "POST", base1+"/app/transactions?api-version=2022-05-13", `{"contents":"by the new user"}`)
		if status == 200 {
			expectStatus(t, uc, base1, h.Get("x-ms-ccf-transaction-id"))
			break
		}
		if status != 403 || time.Now().After(deadline) {
			t.Fatalf("append by the new Contributor through backup %d: %d %v", b1, status, body)
		}
		time.Sleep(10 * time.Millisecond) // polling another process, bounded by the deadline
	}
	for k := range 20 {
		_, h, _ := call(t, w.admin[p], "POST", "https://"+w.procs[p].addr+"/app/transactions?api-version=2022-05-13", `{"contents":"fresh"}`)
		txid := h.Get("x-ms-ccf-transaction-id")
		b := []int{b1, b2}[k%2]
		expectStatus(t, w.oneConnection(t, b), "https://"+w.procs[b].addr, txid)
	}
}

// voters is node i's Raft configuration as /node/consensus reports it: the
// node ids of its last configuration.
func (w *network3) voters(t *testing.T, i int) map[string]any {
	t.Helper()
	status, _, body := call(t, w.admin[i], "GET", "https://"+w.procs[i].addr+"/node/consensus", "")
	if status != 200 {
		t.Fatalf("/node/consensus on node %d: %d %v", i, status, body)
	}
	details, _ := body["details"].(map[string]any)
	configs, _ := details["configs"].([]any)
	if len(configs) == 0 {
		t.Fatalf("no configuration: %v", body)
	}
	last, _ := configs[len(configs)-1].(map[string]any)
	nodes, _ := last["nodes"].(map[string]any)
	return nodes
}

// TestRetiredNodeLeavesTheNetwork: remove_node retires a backup; the
// primary removes it from the Raft configuration, its peers stop talking
// to it, and the two others go on committing.
func TestRetiredNodeLeavesTheNetwork(t *testing.T) {
	if testing.Short() {
		t.Skip("starts three ledgerd processes")
	}
	w := startNetwork(t)
	all := func(int) bool { return true }
	txid, primary := w.appendOnPrimary(t, "three", all)
	for i := range w.procs {
		w.waitReadable(t, i, txid, "three")
	}
	victim := (primary + 1) % 3
	_, _, self := call(t, w.admin[victim], "GET", "https://"+w.procs[victim].addr+"/node/network/nodes/self", "")
	victimID, _ := self["node_id"].(string)
	if len(victimID) != 64 {
		t.Fatalf("node %d's id: %v", victim, self)
	}
	c, err := client.New("https://"+w.procs[primary].addr, client.CertificateFile(filepath.Join(w.dirs[0], "member0.pem")),
		&client.Options{ServiceCertFile: filepath.Join(w.dirs[0], "service.pem")})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	p, err := c.CreateProposal(ctx, client.Action{Name: "remove_node", Args: map[string]any{"node_id": victimID}})
	if err != nil {
		t.Fatal(err)
	}
	if p, err = c.Vote(ctx, p.ProposalID, true); err != nil || p.State != "Accepted" {
		t.Fatalf("remove_node: %+v %v", p, err)
	}
	deadline := time.Now().Add(15 * time.Second)
	for {
		if _, still := w.voters(t, primary)[victimID]; !still {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the retired node is still a voter: %v", w.voters(t, primary))
		}
		time.Sleep(50 * time.Millisecond)
	}
	if n := len(w.voters(t, primary)); n != 2 {
		t.Fatalf("%d voters after the removal", n)
	}
	// The two others commit; the retired node gets nothing new.
	alive := func(i int) bool { return i != victim }
	after, _ := w.appendOnPrimary(t, "two", alive)
	for i := range w.procs {
		if alive(i) {
			w.waitReadable(t, i, after, "two")
		}
	}
	status, _, _ := call(t, w.admin[victim], "GET", "https://"+w.procs[victim].addr+"/app/transactions/"+after+"?api-version=2022-05-13", "")
	if status == 200 {
		_, _, body := call(t, w.admin[victim], "GET", "https://"+w.procs[victim].addr+"/app/transactions/"+after+"?api-version=2022-05-13", "")
		if body["state"] == "Ready" {
			t.Fatalf("the retired node serves %s, committed after it left: %v", after, body)
		}
	}
}

// TestBackupRestartsOnNewAddresses: a backup restarted on other client and
// node-to-node addresses asks the primary to record them (it cannot write
// its own record), so that its peers reach it again: it catches up on what
// was written while it was away, and the node table names its new address.
func TestBackupRestartsOnNewAddresses(t *testing.T) {
	if testing.Short() {
		t.Skip("starts three ledgerd processes")
	}
	w := startNetwork(t)
	all := func(int) bool { return true }
	_, primary := w.appendOnPrimary(t, "before", all)
	b := (primary + 1) % 3
	w.procs[b].stop(t)
	away, _ := w.appendOnPrimary(t, "while away", func(i int) bool { return i != b })
	w.peers[b] = freeAddr(t)
	w.procs[b] = startLedgerd(t, w.bin, "--data", w.dirs[b], "--election-timeout", "500ms",
		"--listen", freeAddr(t), "--peer-listen", w.peers[b])
	w.waitReadable(t, b, away, "while away")
	_, _, self := call(t, w.admin[b], "GET", "https://"+w.procs[b].addr+"/node/network/nodes/self", "")
	id, _ := self["node_id"].(string)
	deadline := time.Now().Add(15 * time.Second)
	for {
		_, _, rec := call(t, w.admin[primary], "GET", "https://"+w.procs[primary].addr+"/node/network/nodes/"+id, "")
		n2n, _ := rec["node_to_node_interface"].(map[string]any)
		if n2n["published_address"] == w.peers[b] {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the primary's record of node %s: %v, want node-to-node address %s", id, rec, w.peers[b])
		}
		time.Sleep(50 * time.Millisecond)
	}
}
