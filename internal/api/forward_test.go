package api_test

import (
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"go.etcd.io/raft/v3/raftpb"

	"github.com/ledgerd/ledgerd/internal/api"
	"github.com/ledgerd/ledgerd/internal/identity"
	"github.com/ledgerd/ledgerd/internal/node"
	"github.com/ledgerd/ledgerd/internal/transport"
)

// forwardingPeer connects a second node of e's service (a backup, Raft id
// 2) to e's node (the primary, Raft id 1) over the node-to-node transport,
// with e's ForwardedHandler on the primary's peer interface. It returns the
// backup's transport, which sends forwarded requests with Do(ctx, 1, req).
func forwardingPeer(t *testing.T, e *env) *transport.Transport {
	t.Helper()
	dir := t.TempDir()
	for _, f := range []string{identity.ServiceCertFile, identity.ServiceKeyFile, identity.LedgerSecretFile} {
		b, err := os.ReadFile(filepath.Join(e.dir, f))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, f), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	backup, err := identity.LoadOrCreate(dir, identity.Options{DNSNames: []string{"localhost"}, IPs: []net.IP{net.IPv4(127, 0, 0, 1)}})
	if err != nil {
		t.Fatal(err)
	}
	nodes := map[string]bool{e.ids.Node.ID: true, backup.Node.ID: true}
	newTransport := func(raftID uint64, ids *identity.Identities) *transport.Transport {
		tr, err := transport.New(transport.Config{RaftID: raftID, Cert: ids.Node.TLSCertificate(ids.Service), ServiceCert: ids.Service.Cert,
			Allowed: func(id string) bool { return nodes[id] }, Deliver: func(raftpb.Message) {},
			Logger: slog.New(slog.DiscardHandler)})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { tr.Close() })
		return tr
	}
	primary, b := newTransport(1, e.ids), newTransport(2, backup)
	primary.Handle(api.ForwardedPrefix+"/", e.srv.ForwardedHandler())
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go primary.Serve(ln)
	if err := b.AddPeer(1, e.ids.Node.ID, ln.Addr().String()); err != nil {
		t.Fatal(err)
	}
	return b
}

// forwardAs sends a forwarded append to the primary as principal (JSON,
// "" for none) and returns the status, transaction id and error code.
func forwardAs(t *testing.T, b *transport.Transport, principal string) (int, string, string) {
	t.Helper()
	req, err := http.NewRequest("POST", api.ForwardedPrefix+"/app/transactions?api-version="+v2022, strings.NewReader(`{"contents":"forwarded"}`))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	if principal != "" {
		req.Header.Set("X-Ledgerd-Forwarded-Principal", principal)
	}
	resp, err := b.Do(t.Context(), 1, req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	var e struct {
		Error struct{ Code string } `json:"error"`
	}
	json.Unmarshal(body, &e)
	return resp.StatusCode, resp.Header.Get("x-ms-ccf-transaction-id"), e.Error.Code
}

// TestForwardedRequests: the primary runs a write a node forwarded as the
// principal the node authenticated, re-checking that principal's role in
// its own state: a Contributor's append is made, a stranger's is refused
// (403), and a forwarded request without a principal is unauthenticated
// (401): the forwarding node's own certificate is never taken for the
// caller's.
func TestForwardedRequests(t *testing.T) {
	e := newEnv(t, envOptions{})
	b := forwardingPeer(t, e)
	principal := func(id string) string { return `{"kind":"certificate","id":"` + id + `"}` }

	status, txid, code := forwardAs(t, b, principal(e.contributor.id))
	if status != 200 || txid == "" {
		t.Fatalf("forwarded append of a Contributor: %d %q %s", status, txid, code)
	}
	id, err := node.ParseTxID(txid)
	if err != nil {
		t.Fatal(err)
	}
	e.commit(id)
	var got struct {
		Entry struct{ Contents string } `json:"entry"`
	}
	e.reader.get(q("/app/transactions/"+txid, v2022)).expect(200, "").decode(&got)
	if got.Entry.Contents != "forwarded" {
		t.Fatalf("the forwarded append holds %q", got.Entry.Contents)
	}
	if status, _, code := forwardAs(t, b, principal(e.stranger.id)); status != 403 || code != "NotAllowed" {
		t.Fatalf("forwarded append of a stranger: %d %s", status, code)
	}
	if status, _, code := forwardAs(t, b, principal(e.reader.id)); status != 403 {
		t.Fatalf("forwarded append of a Reader: %d %s", status, code)
	}
	if status, _, code := forwardAs(t, b, ""); status != 401 {
		t.Fatalf("forwarded append without a principal: %d %s", status, code)
	}
	if status, _, _ := forwardAs(t, b, `{"kind":"node","id":"x"}`); status != 400 {
		t.Fatalf("forwarded append with a malformed principal: %d", status)
	}
}

// TestForwardedPrincipalNotForgeable: a client cannot pass for another
// principal: the principal header means nothing on the client interface,
// the forwarded route is not on it, and ForwardedHandler refuses a request
// that did not come over the node-to-node transport.
func TestForwardedPrincipalNotForgeable(t *testing.T) {
	e := newEnv(t, envOptions{})
	forged := `{"kind":"certificate","id":"` + e.admin.id + `"}`
	e.stranger.do("POST", q("/app/transactions", v2022), map[string]string{"contents": "x"},
		"X-Ledgerd-Forwarded-Principal", forged).expect(403, "NotAllowed")
	e.admin.do("POST", api.ForwardedPrefix+q("/app/transactions", v2022), map[string]string{"contents": "x"}).expect(404, "")

	req := httptest.NewRequest("POST", api.ForwardedPrefix+"/app/transactions?api-version="+v2022, strings.NewReader(`{"contents":"x"}`))
	req.Header.Set("X-Ledgerd-Forwarded-Principal", forged)
	rec := httptest.NewRecorder()
	e.srv.ForwardedHandler().ServeHTTP(rec, req)
	if rec.Code != 403 {
		t.Fatalf("ForwardedHandler outside the transport: %d %s", rec.Code, rec.Body)
	}
}
