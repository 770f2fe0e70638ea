package api_test

import (
	"context"
	"strings"
	"testing"

	"github.com/ledgerd/ledgerd/internal/gov"
	"github.com/ledgerd/ledgerd/internal/ledger"
	"github.com/ledgerd/ledgerd/internal/node"
)

// openService carries out transition_service_to_open as the governance
// engine does: gov.OpenServiceWrites inside node.Exec, waited for until
// committed.
func (e *env) openService(next []byte) error {
	_, err := e.node.Exec(context.Background(), node.UntilCommitted, func(st *node.State) ([]ledger.MapWrites, error) {
		return gov.OpenServiceWrites(st, nil, next)
	})
	return err
}

// A service started Opening refuses the data plane with CCF's 404
// FrontendNotOpen, whoever asks and whatever the path, serves governance,
// and serves the data plane once its members open it.
func TestStartOpening(t *testing.T) {
	e := newEnv(t, envOptions{startOpening: true})
	status := func() any { return e.anonymous.get(q("/gov/service/info", vGov)).expect(200, "").object()["status"] }
	if got := status(); got != "Opening" {
		t.Fatalf("status %v, want Opening", got)
	}
	write := q("/app/transactions", v2022)
	for _, r := range []*response{
		e.admin.post(write, map[string]string{"contents": "too early"}),
		e.reader.get(q("/app/transactions/current", v2022)),
		e.admin.get(q("/app/users/"+e.reader.id, v2022)),
		e.anonymous.get(q("/app/enclaveQuotes", v2022)),
		e.admin.get("/app/no/such/path"),
		e.admin.do("PUT", write, nil),
	} {
		r.expect(404, "FrontendNotOpen")
		if msg := r.errorMessage(); msg != "Frontend is not open." {
			t.Fatalf("message %q", msg)
		}
	}
	// Governance and the node's own endpoints are served.
	e.anonymous.get(q("/gov/service/members", vGov)).expect(200, "")
	e.anonymous.get("/healthz").expect(200, "")
	e.admin.get("/node/state").expect(200, "")

	// Opening needs the current service certificate as the next identity.
	other := newCredential(t, "not the service")
	if err := e.openService(other.pem); err == nil || !strings.Contains(err.Error(), "service identity mismatch") {
		t.Fatalf("opened with another certificate: %v", err)
	}
	e.admin.post(write, map[string]string{"contents": "still too early"}).expect(404, "FrontendNotOpen")

	if err := e.openService(e.ids.Service.CertPEM); err != nil {
		t.Fatal(err)
	}
	if got := status(); got != "Open" {
		t.Fatalf("status %v, want Open", got)
	}
	e.write(e.admin, v2022, "", "now open")
	e.reader.get(q("/app/transactions/current", v2022)).expect(200, "")
	if err := e.openService(e.ids.Service.CertPEM); err == nil || !strings.Contains(err.Error(), "already open") {
		t.Fatalf("opened twice: %v", err)
	}
}

// Without StartOpening the service is Open from its genesis.
func TestStartsOpen(t *testing.T) {
	e := newEnv(t, envOptions{})
	e.write(e.admin, v2022, "", "open at once")
	if err := e.openService(e.ids.Service.CertPEM); err == nil {
		t.Fatal("opened an open service")
	}
}
