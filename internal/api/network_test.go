package api_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/ledgerd/ledgerd/internal/api"
	"github.com/ledgerd/ledgerd/internal/attest"
	"github.com/ledgerd/ledgerd/internal/ledger"
	"github.com/ledgerd/ledgerd/internal/node"
	"github.com/ledgerd/ledgerd/internal/tables"
)

// nodeItem is CCF's GetNode::Out.
type nodeItem struct {
	NodeID        string                      `json:"node_id"`
	Status        string                      `json:"status"`
	Primary       bool                        `json:"primary"`
	RPCInterfaces map[string]api.NetInterface `json:"rpc_interfaces"`
	NodeData      json.RawMessage             `json:"node_data"`
	NodeToNode    *api.NetInterface           `json:"node_to_node_interface"`
}

type nodeList struct {
	Nodes []nodeItem `json:"nodes"`
}

var testPeer = api.NetInterface{BindAddress: "127.0.0.1:0", PublishedAddress: "127.0.0.1:9444"}

// putRecord writes a node record straight to the node table and waits
// until it is committed, as joining will.
func putRecord(e *env, id string, record any) {
	e.t.Helper()
	raw, err := json.Marshal(record)
	if err != nil {
		e.t.Fatal(err)
	}
	f, err := e.node.Submit([]ledger.MapWrites{{Name: tables.NodesInfoMap, Writes: []ledger.KV{{Key: []byte(id), Value: raw}}}})
	if err != nil {
		e.t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	txid, err := f.Wait(ctx)
	if err != nil {
		e.t.Fatal(err)
	}
	e.commit(txid)
}

// TestNodeNetworkEndpoints: on a single node, CCF's unauthenticated node
// endpoints describe the service, the node (Trusted, primary, its client
// interface), filter by host, port and status, and other nodes' records as
// joining writes them (CCF's fields) appear with primary false.
func TestNodeNetworkEndpoints(t *testing.T) {
	e := newEnv(t, envOptions{peer: testPeer})
	self := e.ids.Node.ID
	base := strings.TrimPrefix(e.base, "https://")
	host, port, _ := net.SplitHostPort(base)

	// /node/network
	var network struct {
		ServiceStatus      string          `json:"service_status"`
		ServiceCertificate string          `json:"service_certificate"`
		CurrentView        uint64          `json:"current_view"`
		PrimaryID          string          `json:"primary_id"`
		RecoveryCount      *uint64         `json:"recovery_count"`
		ServiceData        json.RawMessage `json:"service_data"`
	}
	e.anonymous.get("/node/network").expect(200, "").decode(&network)
	if network.ServiceStatus != "Open" || network.ServiceCertificate != string(e.ids.Service.CertPEM) || network.CurrentView < 1 ||
		network.PrimaryID != self || network.RecoveryCount == nil || *network.RecoveryCount != 0 || string(network.ServiceData) != "null" {
		t.Fatalf("/node/network %+v", network)
	}

	// /node/network/nodes and its filters
	want := nodeItem{NodeID: self, Status: "Trusted", Primary: true,
		RPCInterfaces: map[string]api.NetInterface{"primary_rpc_interface": {BindAddress: "127.0.0.1:0", PublishedAddress: base,
			Protocol: "tcp", AppProtocol: "HTTP2", Endorsement: &api.Endorsement{Authority: "Service"}}},
		NodeData: json.RawMessage("null"), NodeToNode: &testPeer}
	checkNodes := func(path string, want ...nodeItem) {
		t.Helper()
		var got nodeList
		e.anonymous.get(path).expect(200, "").decode(&got)
		if len(got.Nodes) != len(want) {
			t.Fatalf("%s: %d nodes %+v, want %d", path, len(got.Nodes), got.Nodes, len(want))
		}
		for i := range want {
			g, _ := json.Marshal(got.Nodes[i])
			w, _ := json.Marshal(want[i])
			if !bytes.Equal(g, w) {
				t.Fatalf("%s: node %d\n got %s\nwant %s", path, i, g, w)
			}
		}
	}
	checkNodes("/node/network/nodes", want)
	checkNodes("/node/network/nodes?status=Trusted", want)
	checkNodes("/node/network/nodes?status=Pending")
	checkNodes("/node/network/nodes?host="+host+"&port="+port, want)
	checkNodes("/node/network/nodes?port="+port, want)
	checkNodes("/node/network/nodes?host=example.com")
	checkNodes("/node/network/nodes?port=1")
	r := e.anonymous.get("/node/network/nodes?status=trusted").expect(400, "InvalidQueryParameterValue")
	if msg := r.errorMessage(); msg != "Query parameter 'trusted' is not a valid node status" {
		t.Errorf("bad status message %q", msg)
	}
	e.anonymous.get("/node/network/nodes?status=Trusted&status=Pending").expect(400, "InvalidQueryParameterValue")

	// One node by id, self and primary.
	for _, path := range []string{"/node/network/nodes/" + self, "/node/network/nodes/self", "/node/network/nodes/primary"} {
		var got nodeItem
		e.anonymous.get(path).expect(200, "").decode(&got)
		g, _ := json.Marshal(got)
		w, _ := json.Marshal(want)
		if !bytes.Equal(g, w) {
			t.Fatalf("%s\n got %s\nwant %s", path, g, w)
		}
	}
	for _, id := range []string{strings.Repeat("ab", 32), "nope", "%20"} {
		r := e.anonymous.get("/node/network/nodes/"+id).expect(404, "ResourceNotFound")
		if r.errorMessage() != "Node not found" {
			t.Errorf("unknown node %q: message %q", id, r.errorMessage())
		}
	}
	e.anonymous.do("POST", "/node/network/nodes", nil).expect(405, "UnsupportedHttpVerb")

	// Records of other nodes, in CCF's shape (as joining writes them): a
	// Pending one and a Trusted one with a quote. They are not primary.
	other, pending := strings.Repeat("0", 63)+"1", strings.Repeat("f", 64)
	otherIface := api.NetInterface{BindAddress: "0.0.0.0:8543", PublishedAddress: "10.0.0.2:8543"}
	putRecord(e, other, map[string]any{"cert": "x", "status": "Trusted", "node_data": map[string]any{"name": "n2"},
		"rpc_interfaces": map[string]any{"primary_rpc_interface": otherIface},
		"quote_info":     map[string]any{"format": "Insecure_Virtual", "quote": "cXVvdGU=", "endorsements": ""},
		"code_digest":    "abcd", "raft_id": 2})
	putRecord(e, pending, map[string]any{"cert": "y", "status": "Pending"})
	otherItem := nodeItem{NodeID: other, Status: "Trusted", RPCInterfaces: map[string]api.NetInterface{"primary_rpc_interface": otherIface},
		NodeData: json.RawMessage(`{"name":"n2"}`)}
	pendingItem := nodeItem{NodeID: pending, Status: "Pending", RPCInterfaces: map[string]api.NetInterface{}, NodeData: json.RawMessage("null")}
	// The node table is in key order.
	checkNodes("/node/network/nodes", otherItem, want, pendingItem)
	checkNodes("/node/network/nodes?status=Pending", pendingItem)
	checkNodes("/node/network/nodes?host=10.0.0.2", otherItem)
	checkNodes("/node/network/nodes?host=10.0.0.2&port=" + port)
	var got nodeItem
	e.anonymous.get("/node/network/nodes/"+other).expect(200, "").decode(&got)
	if got.NodeID != other || got.Primary || got.Status != "Trusted" {
		t.Fatalf("other node %+v", got)
	}

	// /node/quotes: the Trusted nodes' quotes, this node's from itself.
	var quotes struct {
		Quotes []map[string]string `json:"quotes"`
	}
	e.anonymous.get("/node/quotes").expect(200, "").decode(&quotes)
	if len(quotes.Quotes) != 2 || quotes.Quotes[0]["node_id"] != other || quotes.Quotes[0]["raw"] != "cXVvdGU=" ||
		quotes.Quotes[0]["measurement"] != "abcd" || quotes.Quotes[1]["node_id"] != self {
		t.Fatalf("/node/quotes %v", quotes)
	}
	// /app/enclaveQuotes: the same nodes' quotes, in the ACL's shape.
	var acl struct {
		CurrentNodeID string `json:"currentNodeId"`
		EnclaveQuotes map[string]struct {
			MREnclave    string `json:"mrenclave"`
			NodeID       string `json:"nodeId"`
			QuoteVersion string `json:"quoteVersion"`
			Raw          string `json:"raw"`
		} `json:"enclaveQuotes"`
	}
	e.reader.get(q2("/app/enclaveQuotes")).expect(200, "").decode(&acl)
	if o := acl.EnclaveQuotes[other]; acl.CurrentNodeID != self || len(acl.EnclaveQuotes) != 2 || o.NodeID != other ||
		o.Raw != hex.EncodeToString([]byte("quote")) || o.MREnclave != "abcd" || o.QuoteVersion != "Insecure_Virtual" ||
		acl.EnclaveQuotes[self].MREnclave != e.platform.Measurement() {
		t.Fatalf("/app/enclaveQuotes %+v", acl)
	}
	selfQuote := e.anonymous.get("/node/quotes/self").expect(200, "").object()
	if g, w := selfQuote, quotes.Quotes[1]; len(g) != len(w) || g["raw"] != w["raw"] || g["measurement"] != w["measurement"] {
		t.Fatalf("/node/quotes/self %v and in /node/quotes %v", g, w)
	}
}

// TestNodeQuoteSelfVerifies: /node/quotes/self is CCF's Quote of this node:
// a virtual quote (base64) binding the node's public key, with the
// measurement of the running code, the same quote as /app/enclaveQuotes.
func TestNodeQuoteSelfVerifies(t *testing.T) {
	e := newEnv(t, envOptions{})
	var q struct {
		NodeID       string  `json:"node_id"`
		Raw          string  `json:"raw"`
		Endorsements *string `json:"endorsements"`
		Format       string  `json:"format"`
		Measurement  string  `json:"measurement"`
	}
	e.anonymous.get("/node/quotes/self").expect(200, "").decode(&q)
	raw, err := base64.StdEncoding.DecodeString(q.Raw)
	if err != nil {
		t.Fatal(err)
	}
	rd, err := attest.ReportData(&e.ids.Node.Key.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := attest.VerifyVirtual(raw, rd, e.platform.Measurement()); err != nil {
		t.Fatalf("the quote does not verify: %v", err)
	}
	if q.NodeID != e.ids.Node.ID || q.Format != "Insecure_Virtual" || q.Measurement != e.platform.Measurement() || q.Endorsements == nil {
		t.Fatalf("quote %+v", q)
	}
	var acl struct {
		EnclaveQuotes map[string]struct{ Raw string } `json:"enclaveQuotes"`
	}
	e.reader.get(q2("/app/enclaveQuotes")).expect(200, "").decode(&acl)
	if acl.EnclaveQuotes[e.ids.Node.ID].Raw != hex.EncodeToString(raw) {
		t.Fatalf("/app/enclaveQuotes has another quote")
	}
}

func q2(path string) string { return q(path, v2022) }

// TestNodeCommitAndTx: /node/commit is the last committed id; /node/tx
// evaluates an id as CCF's evaluate_tx_status does, and refuses a missing
// or malformed id as CCF does.
func TestNodeCommitAndTx(t *testing.T) {
	e := newEnv(t, envOptions{})
	id := e.write(e.contributor, v2022, "", "x")
	e.commit(id)
	last := e.quiesce()

	r := e.anonymous.get("/node/commit").expect(200, "")
	var commit struct {
		TransactionID string `json:"transaction_id"`
	}
	r.decode(&commit)
	committed, err := node.ParseTxID(commit.TransactionID)
	if err != nil || committed.Seqno != last || committed.Seqno < id.Seqno || commit.TransactionID != r.header.Get("x-ms-ccf-transaction-id") {
		t.Fatalf("/node/commit %s (last %d, header %s)", commit.TransactionID, last, r.header.Get("x-ms-ccf-transaction-id"))
	}

	status := func(txid string) string {
		t.Helper()
		var got struct {
			Status        string `json:"status"`
			TransactionID string `json:"transaction_id"`
		}
		e.anonymous.get("/node/tx?transaction_id="+txid).expect(200, "").decode(&got)
		if got.TransactionID != txid {
			t.Fatalf("/node/tx?transaction_id=%s answers for %s", txid, got.TransactionID)
		}
		return got.Status
	}
	later := node.TxID{View: committed.View, Seqno: committed.Seqno + 1000}
	wrongView := node.TxID{View: id.View + 1, Seqno: id.Seqno}
	for txid, want := range map[string]string{
		id.String():        "Committed",
		later.String():     "Unknown",
		wrongView.String(): "Invalid",
	} {
		if got := status(txid); got != want {
			t.Errorf("status of %s: %s, want %s", txid, got, want)
		}
	}
	// The same answers as the governance API's status.
	var gov struct{ Status string }
	e.anonymous.get("/gov/service/transactions/"+id.String()+"?api-version=2024-07-01").expect(200, "").decode(&gov)
	if gov.Status != "Committed" {
		t.Fatalf("gov status %s", gov.Status)
	}

	r = e.anonymous.get("/node/tx").expect(400, "InvalidQueryParameterValue")
	if r.errorMessage() != "Missing query parameter 'transaction_id'" {
		t.Errorf("missing id: %q", r.errorMessage())
	}
	for _, bad := range []string{"abc", "2", "2.", ".5", "-1.2", "2.x"} {
		r := e.anonymous.get("/node/tx?transaction_id="+bad).expect(400, "InvalidQueryParameterValue")
		want := "The value '" + bad + "' passed as query parameter 'transaction_id' could not be converted to a valid Transaction ID."
		if r.errorMessage() != want {
			t.Errorf("bad id %q: %q", bad, r.errorMessage())
		}
	}
}

// TestNodeVersionStateAndConsensus: /node/version names ledgerd;
// /node/state is public (CCF's shape); /node/consensus is refused without
// credentials and describes the single node's Raft group to a user or member.
func TestNodeVersionStateAndConsensus(t *testing.T) {
	e := newEnv(t, envOptions{peer: testPeer, version: "v1.2.3"})
	v := e.anonymous.get("/node/version").expect(200, "").object()
	if v["ccf_version"] != "ledgerd-v1.2.3" || !strings.HasPrefix(v["quickjs_version"].(string), "goja-") || v["unsafe"] != false || len(v) != 3 {
		t.Fatalf("/node/version %v", v)
	}

	st := e.anonymous.get("/node/state").expect(200, "").object()
	for _, field := range []string{"node_id", "state", "last_signed_seqno", "startup_seqno"} {
		if _, ok := st[field]; !ok {
			t.Errorf("/node/state lacks %s: %v", field, st)
		}
	}
	if st["node_id"] != e.ids.Node.ID || st["state"] != "PartOfNetwork" {
		t.Fatalf("/node/state %v", st)
	}

	e.anonymous.get("/node/consensus").expect(401, "InvalidAuthenticationInfo")
	e.stranger.get("/node/consensus").expect(403, "NotAllowed")
	e.member.get("/node/consensus").expect(200, "")
	var c struct {
		Details struct {
			Configs []struct {
				Idx   uint64                       `json:"idx"`
				Nodes map[string]map[string]string `json:"nodes"`
				RID   uint64                       `json:"rid"`
			} `json:"configs"`
			Acks            map[string]any `json:"acks"`
			MembershipState string         `json:"membership_state"`
			LeadershipState string         `json:"leadership_state"`
			PrimaryID       string         `json:"primary_id"`
			CurrentView     uint64         `json:"current_view"`
			RaftID          uint64         `json:"raft_id"`
		} `json:"details"`
	}
	e.reader.get("/node/consensus").expect(200, "").decode(&c)
	d := c.Details
	var network struct {
		CurrentView uint64 `json:"current_view"`
	}
	e.anonymous.get("/node/network").expect(200, "").decode(&network)
	if len(d.Configs) != 1 || len(d.Configs[0].Nodes) != 1 || d.Configs[0].Nodes[e.ids.Node.ID]["address"] != testPeer.PublishedAddress ||
		d.Acks == nil || d.MembershipState != "Active" || d.LeadershipState != "Leader" || d.PrimaryID != e.ids.Node.ID ||
		d.CurrentView != network.CurrentView || d.RaftID != 1 {
		t.Fatalf("/node/consensus %+v", d)
	}
}
