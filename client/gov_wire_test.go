package client_test

import (
	"crypto/ecdsa"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/ledgerd/ledgerd/client"
	"github.com/ledgerd/ledgerd/internal/cose"
	"github.com/ledgerd/ledgerd/internal/identity"
)

// govWire is a governance endpoint stand-in that checks each signed request
// as a node does, with internal/cose: the path, api-version, content type,
// message type, signature, kid and proposal id. It answers canned bodies.
type govWire struct {
	t      *testing.T
	member *ecdsa.PublicKey
	id     string

	mu       sync.Mutex
	got      []string // "METHOD path msgtype payload"
	failures []string
}

const wireProposal = `{"proposalId":"p1","proposerId":"m","proposalState":"Open","ballotCount":0}`

func (g *govWire) fail(format string, args ...any) {
	g.mu.Lock()
	g.failures = append(g.failures, fmt.Sprintf(format, args...))
	g.mu.Unlock()
}

func (g *govWire) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if v := r.URL.Query().Get("api-version"); v != client.GovAPIVersion {
		g.fail("%s %s: api-version %q", r.Method, r.URL.Path, v)
	}
	path := r.URL.Path
	entry := r.Method + " " + path
	var msgType, proposalID, memberID string
	switch {
	case r.Method == http.MethodGet:
	case path == "/gov/members/proposals:create":
		msgType = cose.MsgProposal
	case strings.HasSuffix(path, ":withdraw"):
		msgType, proposalID = cose.MsgWithdrawal, strings.TrimSuffix(strings.TrimPrefix(path, "/gov/members/proposals/"), ":withdraw")
	case strings.HasSuffix(path, ":submit"):
		msgType = cose.MsgBallot
		rest := strings.TrimPrefix(path, "/gov/members/proposals/")
		proposalID, memberID, _ = strings.Cut(strings.TrimSuffix(rest, ":submit"), "/ballots/")
	case strings.HasSuffix(path, ":update"):
		msgType, memberID = cose.MsgStateDigest, strings.TrimSuffix(strings.TrimPrefix(path, "/gov/members/state-digests/"), ":update")
	case strings.HasSuffix(path, ":ack"):
		msgType, memberID = cose.MsgAck, strings.TrimSuffix(strings.TrimPrefix(path, "/gov/members/state-digests/"), ":ack")
	default:
		g.fail("unexpected %s", entry)
	}
	if msgType != "" {
		body, _ := io.ReadAll(r.Body)
		if ct := r.Header.Get("Content-Type"); ct != "application/cose" {
			g.fail("%s: content type %q", entry, ct)
		}
		m, err := cose.Parse(body)
		switch {
		case err != nil:
			g.fail("%s: %v", entry, err)
		case m.CheckGovernance(msgType) != nil:
			g.fail("%s: %v", entry, m.CheckGovernance(msgType))
		case m.Verify(g.member) != nil:
			g.fail("%s: %v", entry, m.Verify(g.member))
		case string(m.KID) != g.id:
			g.fail("%s: kid %s", entry, m.KID)
		case proposalID != "" && m.CheckProposalID(proposalID) != nil:
			g.fail("%s: proposal id header %q", entry, m.ProposalID)
		case memberID != "" && m.CheckMemberID(memberID) != nil:
			g.fail("%s: member id %s in the path", entry, memberID)
		}
		if m != nil {
			entry += " " + m.MsgType + " " + string(m.Payload)
		}
	}
	g.mu.Lock()
	g.got = append(g.got, entry)
	g.mu.Unlock()

	w.Header().Set("Content-Type", "application/json")
	switch {
	case strings.HasSuffix(path, ":ack"):
		w.WriteHeader(http.StatusNoContent)
	case strings.HasSuffix(path, "p-gone:withdraw"):
		w.WriteHeader(http.StatusNoContent)
	case strings.HasPrefix(path, "/gov/members/state-digests/"):
		fmt.Fprintf(w, `{"memberId":%q,"stateDigest":"abcd"}`, g.id)
	case path == "/gov/members/proposals":
		fmt.Fprintf(w, `{"value":[%s]}`, wireProposal)
	case strings.HasSuffix(path, "/actions"):
		io.WriteString(w, `{"actions":[{"name":"set_user","args":{}}]}`)
	case strings.Contains(path, "/ballots/") && r.Method == http.MethodGet:
		w.Header().Set("Content-Type", "text/javascript")
		io.WriteString(w, client.BallotNo)
	case path == "/gov/members/proposals/p-closed:withdraw":
	default:
		io.WriteString(w, wireProposal)
	}
}

// TestGovernanceWire checks every governance operation's request as a node
// would, and the decoding of the answers.
func TestGovernanceWire(t *testing.T) {
	srv := httptest.NewUnstartedServer(nil)
	srv.EnableHTTP2 = true
	signer := memberSignerFor(t)
	g := &govWire{t: t, member: signer.Certificate().PublicKey.(*ecdsa.PublicKey), id: signer.MemberID()}
	srv.Config.Handler = g
	srv.StartTLS()
	defer srv.Close()
	servicePEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})
	c, err := client.New(srv.URL, client.FromTokenSource(staticTokens("t")), &client.Options{ServiceCertPEM: servicePEM, MemberSigner: signer})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx := testContext(t)
	id := signer.MemberID()

	p, err := c.CreateProposal(ctx, client.Action{Name: "set_user", Args: map[string]string{"cert": "PEM"}}, client.Action{Name: "transition_service_to_open"})
	if err != nil || p.ProposalID != "p1" || p.State != client.ProposalOpen {
		t.Fatalf("CreateProposal: %+v, %v", p, err)
	}
	if _, err := c.Vote(ctx, "p1", true); err != nil {
		t.Fatal(err)
	}
	if _, err := c.SubmitBallot(ctx, "p1", "export function vote () { return 1 > 0; }"); err != nil {
		t.Fatal(err)
	}
	if _, err := c.WithdrawProposal(ctx, "p1"); err != nil {
		t.Fatal(err)
	}
	if p, err := c.WithdrawProposal(ctx, "p-gone"); err != nil || p.ProposalID != "p-gone" || p.State != "" {
		t.Fatalf("withdrawing an unknown proposal: %+v, %v", p, err)
	}
	ps, err := c.ListProposals(ctx)
	if err != nil || len(ps) != 1 || ps[0].ProposalID != "p1" {
		t.Fatalf("ListProposals: %+v, %v", ps, err)
	}
	if a, err := c.GetProposalActions(ctx, "p1"); err != nil || !strings.Contains(string(a), "set_user") {
		t.Fatalf("GetProposalActions: %s, %v", a, err)
	}
	if b, err := c.GetBallot(ctx, "p1", id); err != nil || b != client.BallotNo {
		t.Fatalf("GetBallot: %q, %v", b, err)
	}
	d, err := c.UpdateStateDigest(ctx)
	if err != nil || d.StateDigest != "abcd" || d.MemberID != id {
		t.Fatalf("UpdateStateDigest: %+v, %v", d, err)
	}
	if _, err := c.GetStateDigest(ctx, ""); err != nil {
		t.Fatal(err)
	}
	if err := c.AckStateDigest(ctx, d.StateDigest); err != nil {
		t.Fatal(err)
	}
	if _, err := c.CreateProposalJSON(ctx, []byte("[]")); err == nil {
		t.Fatal("a proposal that is not a JSON object was sent")
	}

	g.mu.Lock()
	defer g.mu.Unlock()
	for _, f := range g.failures {
		t.Error(f)
	}
	want := []string{
		`POST /gov/members/proposals:create proposal {"actions":[{"name":"set_user","args":{"cert":"PEM"}},{"name":"transition_service_to_open","args":{}}]}`,
		`POST /gov/members/proposals/p1/ballots/` + id + `:submit ballot {"ballot":"export function vote (proposal, proposerId) { return true; }"}`,
		`POST /gov/members/proposals/p1/ballots/` + id + `:submit ballot {"ballot":"export function vote () { return 1 > 0; }"}`,
		`POST /gov/members/proposals/p1:withdraw withdrawal `,
		`POST /gov/members/proposals/p-gone:withdraw withdrawal `,
		`GET /gov/members/proposals`,
		`GET /gov/members/proposals/p1/actions`,
		`GET /gov/members/proposals/p1/ballots/` + id,
		`POST /gov/members/state-digests/` + id + `:update state_digest `,
		`GET /gov/members/state-digests/` + id,
		`POST /gov/members/state-digests/` + id + `:ack ack {"stateDigest":"abcd"}`,
	}
	if strings.Join(g.got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("requests:\n%s\nwant:\n%s", strings.Join(g.got, "\n"), strings.Join(want, "\n"))
	}
}

// memberSignerFor returns a signer of a fresh P-256 member.
func memberSignerFor(t *testing.T) *client.MemberSigner {
	t.Helper()
	path, _ := newMemberFile(t)
	s, err := client.LoadMemberSigner(path)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := s.Certificate().PublicKey.(*ecdsa.PublicKey); !ok {
		t.Fatal("not ECDSA")
	}
	return s
}

// newMemberFile writes a fresh member certificate and key, as ledgerd
// writes member0.pem, and returns its path and certificate.
func newMemberFile(t *testing.T) (string, *x509.Certificate) {
	t.Helper()
	certPEM, keyPEM, err := identity.NewClientIdentity("member", nil)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "member.pem")
	if err := identity.WriteCombinedPEM(path, certPEM, keyPEM); err != nil {
		t.Fatal(err)
	}
	der, err := certDER(certPEM)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return path, cert
}
