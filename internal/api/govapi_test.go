package api_test

import (
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/ledgerd/ledgerd/internal/gov"
	"github.com/ledgerd/ledgerd/internal/node"
)

// vGov is the governance API's version (CCF's 2024-07-01).
const vGov = "2024-07-01"

// keys returns the sorted keys of a JSON object.
func keys(t *testing.T, v any) []string {
	t.Helper()
	m, ok := v.(map[string]any)
	if !ok {
		t.Fatalf("%v is not an object", v)
	}
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	return ks
}

// expectKeys checks that a JSON object has exactly the given fields.
func expectKeys(t *testing.T, what string, v any, want ...string) {
	t.Helper()
	slices.Sort(want)
	if got := keys(t, v); !slices.Equal(got, want) {
		t.Fatalf("%s: fields %v, want %v (%v)", what, got, want, v)
	}
}

// expectGovError checks a governance error answer: status, CCF's code in
// the body and the same code in x-ms-error-code.
func expectGovError(t *testing.T, r *response, status int, code string) {
	t.Helper()
	r.expect(status, code)
	if got := r.header.Get("x-ms-error-code"); got != code {
		t.Fatalf("x-ms-error-code %q, want %q", got, code)
	}
}

func TestGovServiceReads(t *testing.T) {
	e := newEnv(t, envOptions{})
	c := e.anonymous // CCF's governance reads need no authentication

	info := c.get(q("/gov/service/info", vGov)).expect(200, "").object()
	expectKeys(t, "service info", info, "status", "certificate", "recoveryCount", "serviceData", "configuration")
	if info["status"] != "Open" || info["certificate"] != string(e.ids.Service.CertPEM) ||
		info["recoveryCount"] != float64(0) || info["serviceData"] != nil {
		t.Fatalf("service info %v", info)
	}
	config := info["configuration"].(map[string]any)
	expectKeys(t, "service configuration", config, "recoveryThreshold", "maximumNodeCertificateValidityDays",
		"maximumServiceCertificateValidityDays", "recentCoseProposalsWindowSize")
	if config["recoveryThreshold"] != 1.0 || config["maximumNodeCertificateValidityDays"] != 365.0 ||
		config["maximumServiceCertificateValidityDays"] != 365.0 || config["recentCoseProposalsWindowSize"] != 100.0 {
		t.Fatalf("service configuration %v", config)
	}

	r := c.get(q("/gov/service/constitution", vGov)).expect(200, "")
	if ct := r.header.Get("Content-Type"); ct != "text/javascript" || string(r.body) != gov.DefaultConstitution {
		t.Fatalf("constitution: Content-Type %q, body %.60q", ct, r.body)
	}

	memberID := gov.MemberID(e.memberDER)
	members := c.get(q("/gov/service/members", vGov)).expect(200, "").object()
	expectKeys(t, "members", members, "value")
	list := members["value"].([]any)
	if len(list) != 1 {
		t.Fatalf("members %v", members)
	}
	one := c.get(q("/gov/service/members/"+memberID, vGov)).expect(200, "").object()
	for _, m := range []any{list[0], one} {
		expectKeys(t, "member", m, "memberId", "status", "memberData", "certificate")
		mm := m.(map[string]any)
		if mm["memberId"] != memberID || mm["status"] != "Active" || mm["certificate"] != certPEM(e.memberDER) || mm["memberData"] != nil {
			t.Fatalf("member %v", mm)
		}
	}

	nodeID := e.ids.Node.ID
	nodes := c.get(q("/gov/service/nodes", vGov)).expect(200, "").object()
	expectKeys(t, "nodes", nodes, "value")
	nlist := nodes["value"].([]any)
	if len(nlist) != 1 {
		t.Fatalf("nodes %v", nodes)
	}
	nd := c.get(q("/gov/service/nodes/"+nodeID, vGov)).expect(200, "").object()
	for _, n := range []any{nlist[0], nd} {
		expectKeys(t, "node", n, "nodeId", "status", "nodeData", "certificate", "retiredCommitted", "quoteInfo", "rpcInterfaces")
		nm := n.(map[string]any)
		if nm["nodeId"] != nodeID || nm["status"] != "Trusted" || nm["certificate"] != string(e.ids.Node.CertPEM) ||
			nm["retiredCommitted"] != false || nm["nodeData"] != nil {
			t.Fatalf("node %v", nm)
		}
		expectKeys(t, "quoteInfo", nm["quoteInfo"], "format")
		if nm["quoteInfo"].(map[string]any)["format"] != "Insecure_Virtual" {
			t.Fatalf("quoteInfo %v", nm["quoteInfo"])
		}
		expectKeys(t, "rpcInterfaces", nm["rpcInterfaces"])
	}

	jp := c.get(q("/gov/service/join-policy", vGov)).expect(200, "").object()
	expectKeys(t, "join policy", jp, "sgx", "snp", "virtual")
	expectKeys(t, "sgx policy", jp["sgx"], "measurements")
	expectKeys(t, "snp policy", jp["snp"], "measurements", "hostData", "uvmEndorsements", "tcbVersions")
	expectKeys(t, "virtual policy", jp["virtual"], "measurements", "hostData")
	if got := jp["virtual"].(map[string]any)["measurements"]; got == nil || len(got.([]any)) != 0 {
		t.Fatalf("virtual measurements %v", got)
	}

	jwk := c.get(q("/gov/service/jwk", vGov)).expect(200, "").object()
	expectKeys(t, "jwk", jwk, "issuers", "caCertBundles", "keys")
	for _, k := range []string{"issuers", "caCertBundles", "keys"} {
		expectKeys(t, "jwk "+k, jwk[k])
	}

	for _, path := range []string{q("/gov/service/javascript-app", vGov), q("/gov/service/javascript-app", vGov, "case", "original")} {
		app := c.get(path).expect(200, "").object()
		expectKeys(t, "javascript app", app, "endpoints")
		expectKeys(t, "endpoints", app["endpoints"])
	}
	expectGovError(t, c.get(q("/gov/service/javascript-app", vGov, "case", "camel")), 400, "InvalidQueryParameterValue")

	// Authenticated callers get the same answers.
	e.member.get(q("/gov/service/members/"+memberID, vGov)).expect(200, "")
	e.reader.get(q("/gov/service/info", vGov)).expect(200, "")
}

func TestGovNotFoundAndBadIDs(t *testing.T) {
	e := newEnv(t, envOptions{})
	c := e.anonymous
	unknown := strings.Repeat("ab", 32)
	r := c.get(q("/gov/service/members/"+unknown, vGov))
	expectGovError(t, r, 404, "ResourceNotFound")
	if msg := r.errorMessage(); msg != "Member "+unknown+" does not exist." {
		t.Fatalf("message %q", msg)
	}
	r = c.get(q("/gov/service/nodes/"+unknown, vGov))
	expectGovError(t, r, 404, "ResourceNotFound")
	if msg := r.errorMessage(); msg != "Node "+unknown+" does not exist." {
		t.Fatalf("message %q", msg)
	}
	// Not 64 hex characters: CCF's InvalidResourceName.
	for _, p := range []string{"/gov/service/members/abc", "/gov/service/nodes/" + strings.Repeat("g", 64)} {
		expectGovError(t, c.get(q(p, vGov)), 400, "InvalidResourceName")
	}
	// Writes are not served on these paths.
	r = c.post(q("/gov/service/members", vGov), map[string]any{})
	expectGovError(t, r, http.StatusMethodNotAllowed, "UnsupportedHttpVerb")
}

func TestGovAPIVersion(t *testing.T) {
	e := newEnv(t, envOptions{})
	c := e.anonymous
	paths := []string{"/gov/service/info", "/gov/service/constitution", "/gov/service/members",
		"/gov/service/members/" + gov.MemberID(e.memberDER), "/gov/service/nodes", "/gov/service/nodes/" + e.ids.Node.ID,
		"/gov/service/join-policy", "/gov/service/jwk", "/gov/service/javascript-app",
		"/gov/service/transactions/commit", "/gov/service/transactions/2.1"}
	for _, p := range paths {
		r := c.get(p)
		expectGovError(t, r, 400, "MissingApiVersionParameter")
		if !strings.Contains(r.errorMessage(), "The supported api-versions are: 2024-07-01") {
			t.Fatalf("%s: message %q", p, r.errorMessage())
		}
		// An ACL version is not a governance version.
		r = c.get(q(p, vNewer))
		expectGovError(t, r, 400, "UnsupportedApiVersionValue")
		if msg := r.errorMessage(); !strings.HasPrefix(msg, "Unsupported api-version '"+vNewer+"'.") {
			t.Fatalf("%s: message %q", p, msg)
		}
		expectGovError(t, c.get(q(p, "bogus")), 400, "UnsupportedApiVersionValue")
	}
	// ACL errors do not carry x-ms-error-code (only /gov's do).
	if r := c.get("/app/transactions/2.1/status"); r.header.Get("x-ms-error-code") != "" {
		t.Fatalf("ACL error with x-ms-error-code %q", r.header.Get("x-ms-error-code"))
	}
}

func TestGovTransactions(t *testing.T) {
	e := newEnv(t, envOptions{})
	c := e.anonymous
	id := e.write(e.contributor, v2022, "", "hello")
	e.commit(id)

	var commit struct{ Status, TransactionID string }
	r := c.get(q("/gov/service/transactions/commit", vGov)).expect(200, "")
	expectKeys(t, "commit", r.object(), "status", "transactionId")
	r.decode(&commit)
	committed, err := node.ParseTxID(commit.TransactionID)
	if err != nil || commit.Status != "Committed" || committed.Seqno < id.Seqno {
		t.Fatalf("commit %+v (written %s)", commit, id)
	}

	var tx struct{ Status, TransactionID string }
	r = c.get(q("/gov/service/transactions/"+id.String(), vGov)).expect(200, "")
	expectKeys(t, "transaction", r.object(), "status", "transactionId")
	r.decode(&tx)
	if tx.Status != "Committed" || tx.TransactionID != id.String() {
		t.Fatalf("transaction %s: %+v", id, tx)
	}

	// An id this node has never seen is Unknown (200, as in CCF), and one
	// with a seqno committed in another view is Invalid.
	far := node.TxID{View: id.View, Seqno: id.Seqno + 1_000_000}
	c.get(q("/gov/service/transactions/"+far.String(), vGov)).expect(200, "").decode(&tx)
	if tx.Status != "Unknown" || tx.TransactionID != far.String() {
		t.Fatalf("transaction %s: %+v", far, tx)
	}
	other := node.TxID{View: id.View + 7, Seqno: id.Seqno}
	c.get(q("/gov/service/transactions/"+other.String(), vGov)).expect(200, "").decode(&tx)
	if tx.Status != "Invalid" {
		t.Fatalf("transaction %s: %+v", other, tx)
	}

	r = c.get(q("/gov/service/transactions/not-a-txid", vGov))
	expectGovError(t, r, 400, "InvalidQueryParameterValue")
	if msg := r.errorMessage(); msg != "The value 'not-a-txid' passed as parameter 'transactionId' could not be converted to a valid Transaction ID." {
		t.Fatalf("message %q", msg)
	}
}
