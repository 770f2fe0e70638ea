package main

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/ledgerd/ledgerd/client"
	"github.com/ledgerd/ledgerd/internal/testbin"
)

// TestNodesListAndStatus runs nodes list and status (no transaction id)
// against a real single-node ledgerd, without credentials: the node is
// Trusted, primary, at the address ledgerctl talks to; --json prints the
// node's answer as it is; status shows its commit point (at least a write
// waited for) and no lag.
func TestNodesListAndStatus(t *testing.T) {
	isolateEnv(t)
	l := startLedger(t, testbin.Command(t, "LEDGERD_BIN", "github.com/ledgerd/ledgerd/cmd/ledgerd"))
	anon := []string{"--endpoint", l.endpoint, "--service-cert", l.servicePEM}
	var quotes struct{ CurrentNodeID string }
	ctl(append([]string{"quotes", "--json"}, l.flags()...)...).decode(t, &quotes)
	self := quotes.CurrentNodeID
	addr := strings.TrimPrefix(l.endpoint, "https://")

	// nodes list --json: the body of GET /node/network/nodes as it is.
	r := ctl(append([]string{"nodes", "list", "--json"}, anon...)...)
	out := r.ok(t)
	if direct := getPinned(t, l, "/node/network/nodes"); strings.TrimSpace(out) != strings.TrimSpace(direct) {
		t.Fatalf("nodes list --json printed\n%s\nthe node answers\n%s", out, direct)
	}
	var list client.NodeList
	r.decode(t, &list)
	if len(list.Nodes) != 1 || list.Nodes[0].NodeID != self || list.Nodes[0].Status != "Trusted" || !list.Nodes[0].Primary ||
		list.Nodes[0].Address() != addr {
		t.Fatalf("nodes list --json: %+v", list.Nodes)
	}
	out = ctl(append([]string{"nodes", "list"}, anon...)...).ok(t)
	if !regexp.MustCompile(`^NODE ID +STATUS +PRIMARY +ADDRESS\n` + self + ` +Trusted +yes +` + regexp.QuoteMeta(addr) + `\n$`).MatchString(out) {
		t.Fatalf("nodes list:\n%s", out)
	}

	txID := strings.Fields(ctl(append([]string{"append", "--wait", "x"}, l.flags()...)...).ok(t))[0]
	seqno, err := seqnoOf(txID)
	if err != nil {
		t.Fatal(err)
	}
	var st networkOut
	ctl(append([]string{"status", "--json"}, anon...)...).decode(t, &st)
	if st.ServiceStatus != "Open" || st.CurrentView < 1 || st.PrimaryID != self || len(st.Nodes) != 1 {
		t.Fatalf("status --json: %+v", st)
	}
	n := st.Nodes[0]
	if n.NodeID != self || !n.Primary || n.Address != addr || n.Error != "" || n.CommitSeqno < seqno || n.Lag == nil || *n.Lag != 0 ||
		!strings.HasSuffix(n.Commit, fmt.Sprintf(".%d", n.CommitSeqno)) {
		t.Fatalf("status --json node: %+v (after %s)", n, txID)
	}
	out = ctl(append([]string{"status"}, anon...)...).ok(t)
	want := `^service Open, view \d+, primary ` + self + `\nNODE ID +STATUS +PRIMARY +ADDRESS +COMMIT +LAG\n` +
		self + ` +Trusted +yes +` + regexp.QuoteMeta(addr) + ` +\d+\.\d+ +0\n$`
	if !regexp.MustCompile(want).MatchString(out) {
		t.Fatalf("status:\n%s", out)
	}
	// With a transaction id, status is still the transaction's.
	if out := ctl(append([]string{"status", txID}, l.flags()...)...).ok(t); out != txID+" Committed\n" {
		t.Fatalf("status %s: %q", txID, out)
	}
	ctl(append([]string{"status", txID, "2.1"}, l.flags()...)...).fails(t, 2, "status takes one transaction id, or none")
}

// getPinned GETs path from the ledger over TLS pinned to its service
// certificate, without credentials.
func getPinned(t *testing.T, l *testLedger, path string) string {
	t.Helper()
	pool := x509.NewCertPool()
	pool.AddCert(l.serviceCert)
	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	defer hc.CloseIdleConnections()
	resp, err := hc.Get(l.endpoint + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("GET %s: %d %v %s", path, resp.StatusCode, err, b)
	}
	return string(b)
}

// TestNodesTrustAndRemove: nodes trust of the single node (already Trusted)
// is proposed with a valid_from of now, accepted and changes nothing;
// nodes remove of a node the service does not have is accepted and changes
// nothing; both need a member's certificate; a malformed id is refused by
// the constitution.
func TestNodesTrustAndRemove(t *testing.T) {
	isolateEnv(t)
	l := startLedger(t, testbin.Command(t, "LEDGERD_BIN", "github.com/ledgerd/ledgerd/cmd/ledgerd"))
	mf := l.memberFlags()
	var list client.NodeList
	ctl(append([]string{"nodes", "list", "--json"}, mf...)...).decode(t, &list)
	self := list.Nodes[0].NodeID
	before := getPinned(t, l, "/node/network/nodes")

	out := ctl(append([]string{"nodes", "trust", self}, mf...)...).ok(t)
	if !regexp.MustCompile(`^proposal [0-9a-f]{64} Accepted\n`).MatchString(out) {
		t.Fatalf("nodes trust:\n%s", out)
	}
	id := strings.Fields(out)[1]
	var shown struct {
		Actions struct {
			Actions []struct {
				Name string
				Args map[string]string
			}
		}
	}
	ctl(append([]string{"gov", "show", "--json", id}, mf...)...).decode(t, &shown)
	if actions := shown.Actions; len(actions.Actions) != 1 || actions.Actions[0].Name != "transition_node_to_trusted" || actions.Actions[0].Args["node_id"] != self ||
		!regexp.MustCompile(`^\d{14}Z$`).MatchString(actions.Actions[0].Args["valid_from"]) {
		t.Fatalf("the trust proposal's actions: %+v", shown)
	}
	var p client.Proposal
	ctl(append([]string{"nodes", "remove", "--json", strings.Repeat("ab", 32)}, mf...)...).decode(t, &p)
	if p.State != client.ProposalAccepted || len(p.ProposalID) != 64 {
		t.Fatalf("nodes remove --json: %+v", p)
	}
	if after := getPinned(t, l, "/node/network/nodes"); after != before {
		t.Fatalf("the nodes changed:\n%s\n%s", before, after)
	}

	ctl("nodes", "trust", "--endpoint", l.endpoint, "--service-cert", l.servicePEM, self).fails(t, 2, "member's certificate")
	ctl(append([]string{"nodes", "trust", "nope"}, mf...)...).fails(t, 1, "node_id")
	ctl(append([]string{"nodes", "trust"}, mf...)...).fails(t, 2, "needs one node id")
	ctl(append([]string{"nodes", "retire"}, mf...)...).fails(t, 2, "unknown nodes command")
}

// TestNetworkStatusOfSeveralNodes runs status against fake nodes that
// answer CCF's node endpoints: the node ledgerctl talks to lists itself, a
// lagging follower, and a primary that does not answer. Each answering
// node's commit point is asked of the node itself; the lag is behind the
// highest answered, since the primary does not answer; the dead node is
// shown as not answering, and the command succeeds.
func TestNetworkStatusOfSeveralNodes(t *testing.T) {
	isolateEnv(t)
	dead, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	deadAddr := dead.Addr().String()
	dead.Close() // nothing listens there any more
	commit := func(txID string) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			fmt.Fprintf(w, `{"transaction_id":%q}`, txID)
		}
	}
	follower := httptest.NewTLSServer(commit("3.15"))
	t.Cleanup(follower.Close)
	mux := http.NewServeMux()
	entry := httptest.NewUnstartedServer(mux)
	entry.StartTLS()
	t.Cleanup(entry.Close)
	node := func(id, status string, primary bool, addr string) map[string]any {
		return map[string]any{"node_id": id, "status": status, "primary": primary, "node_data": nil,
			"rpc_interfaces": map[string]any{"primary_rpc_interface": map[string]string{"bind_address": addr, "published_address": addr}}}
	}
	ids := []string{strings.Repeat("1", 64), strings.Repeat("2", 64), strings.Repeat("3", 64)}
	mux.HandleFunc("/node/network", func(w http.ResponseWriter, r *http.Request) {
		json.NewEncoder(w).Encode(map[string]any{"service_status": "Open", "current_view": 3, "primary_id": ids[2]})
	})
	mux.HandleFunc("/node/network/nodes", func(w http.ResponseWriter, r *http.Request) {
		json.NewEncoder(w).Encode(map[string]any{"nodes": []any{
			node(ids[0], "Trusted", false, entry.Listener.Addr().String()),
			node(ids[1], "Trusted", false, follower.Listener.Addr().String()),
			node(ids[2], "Trusted", true, deadAddr),
		}})
	})
	mux.HandleFunc("/node/commit", commit("3.20"))
	// httptest's servers share one self-signed certificate: pinned as the
	// service certificate, it verifies every fake node.
	certFile := filepath.Join(t.TempDir(), "service.pem")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: entry.Certificate().Raw}), 0o600); err != nil {
		t.Fatal(err)
	}
	flags := []string{"--endpoint", entry.URL, "--service-cert", certFile, "--node-timeout", "2s"}

	var st networkOut
	ctl(append([]string{"status", "--json"}, flags...)...).decode(t, &st)
	if st.PrimaryID != ids[2] || st.CurrentView != 3 || len(st.Nodes) != 3 {
		t.Fatalf("status --json: %+v", st)
	}
	lag := func(n nodeStatus) int64 {
		if n.Lag == nil {
			return -1
		}
		return *n.Lag
	}
	if n := st.Nodes[0]; n.Commit != "3.20" || n.CommitSeqno != 20 || lag(n) != 0 || n.Error != "" {
		t.Errorf("entry node: %+v", n)
	}
	if n := st.Nodes[1]; n.Commit != "3.15" || lag(n) != 5 || n.Error != "" {
		t.Errorf("follower: %+v", n)
	}
	if n := st.Nodes[2]; n.Commit != "" || n.Lag != nil || !n.Primary || !strings.HasPrefix(n.Error, "not answering: ") {
		t.Errorf("dead primary: %+v", n)
	}
	out := ctl(append([]string{"status"}, flags...)...).ok(t)
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 5 || lines[0] != "service Open, view 3, primary "+ids[2] ||
		!regexp.MustCompile(ids[1]+` +Trusted +no +\S+ +3\.15 +5$`).MatchString(lines[3]) ||
		!regexp.MustCompile(ids[2]+` +Trusted +yes +`+regexp.QuoteMeta(deadAddr)+` +not answering: .* +-$`).MatchString(lines[4]) {
		t.Fatalf("status:\n%s", out)
	}
}
