package audit_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ledgerd/ledgerd/internal/audit"
	"github.com/ledgerd/ledgerd/internal/cose"
	"github.com/ledgerd/ledgerd/internal/gov"
	"github.com/ledgerd/ledgerd/internal/identity"
	"github.com/ledgerd/ledgerd/internal/ledger"
	"github.com/ledgerd/ledgerd/internal/node"
	"github.com/ledgerd/ledgerd/internal/tables"
	"github.com/ledgerd/ledgerd/receipt"
)

type govMember struct {
	id  string
	key *ecdsa.PrivateKey
	pem []byte
}

func newGovMember(t *testing.T, cn string) govMember {
	t.Helper()
	certPEM, keyPEM, err := identity.NewClientIdentity(cn, nil)
	if err != nil {
		t.Fatal(err)
	}
	c, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	return govMember{id: cose.MemberID(c.Certificate[0]), key: c.PrivateKey.(*ecdsa.PrivateKey), pem: certPEM}
}

// govLedger builds a ledger whose genesis makes member its one member and
// then commits each of txs (written with the node's Submit, so that every
// entry is validly included and signed), and returns the data directory.
func govLedger(t *testing.T, member govMember, txs ...[]ledger.MapWrites) string {
	t.Helper()
	dir := t.TempDir()
	ids, err := identity.LoadOrCreate(dir, identity.Options{})
	if err != nil {
		t.Fatal(err)
	}
	genesis, err := gov.Genesis{Members: [][]byte{member.pem}, LedgerSecret: ids.LedgerSecret}.Writes()
	if err != nil {
		t.Fatal(err)
	}
	n, err := node.Open(node.Config{Dir: dir, Identities: ids, Genesis: genesis,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, ws := range txs {
		f, err := n.Submit(ws)
		if err != nil {
			t.Fatal(err)
		}
		id, err := f.Wait(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if err := n.WaitCommitted(ctx, id); err != nil {
			t.Fatal(err)
		}
	}
	if err := n.Close(); err != nil {
		t.Fatal(err)
	}
	return dir
}

func envelope(t *testing.T, key *ecdsa.PrivateKey, kid, msgType, proposalID string, payload []byte) []byte {
	t.Helper()
	b, err := cose.Sign(key, cose.Headers{KID: kid, MsgType: msgType, ProposalID: proposalID, CreatedAt: uint64(time.Now().Unix())}, payload, nil)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func historyWrite(member string, env []byte, more ...ledger.MapWrites) []ledger.MapWrites {
	return append([]ledger.MapWrites{{Name: tables.HistoryMap, Writes: []ledger.KV{{Key: []byte(member), Value: env}}}}, more...)
}

// auditBoth runs the integrity audit, which must pass, and the governance
// audit, returning its events and error.
func auditBoth(t *testing.T, dir string) ([]audit.GovEvent, error) {
	t.Helper()
	cert, err := receipt.ParseCertificatePEM(mustRead(t, filepath.Join(dir, "service.pem")))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := audit.Dir(filepath.Join(dir, "ledger"), audit.Options{ServiceCert: cert}); err != nil {
		t.Fatalf("the ledger itself must audit: %v", err)
	}
	var evs []audit.GovEvent
	_, err = audit.Governance(filepath.Join(dir, "ledger"), audit.GovOptions{}, func(ev audit.GovEvent) { evs = append(evs, ev) })
	return evs, err
}

func TestGovernanceHistoryVerified(t *testing.T) {
	m := newGovMember(t, "member0")
	pid := strings.Repeat("ab", 32)
	proposal := []byte(`{"actions":[{"name":"set_user","args":{}},{"name":"set_member_data","args":{}}]}`)
	info, _ := json.Marshal(tables.ProposalInfo{ProposerID: m.id, State: tables.ProposalOpen})
	accepted, _ := json.Marshal(tables.ProposalInfo{ProposerID: m.id, State: tables.ProposalAccepted})
	ballot, _ := json.Marshal(map[string]string{"ballot": "export function vote (proposal, proposerId) {\n  return true;\n}"})
	dir := govLedger(t, m,
		historyWrite(m.id, envelope(t, m.key, m.id, cose.MsgProposal, "", proposal),
			ledger.MapWrites{Name: tables.ProposalsMap, Writes: []ledger.KV{{Key: []byte(pid), Value: proposal}}},
			ledger.MapWrites{Name: tables.ProposalsInfoMap, Writes: []ledger.KV{{Key: []byte(pid), Value: info}}}),
		historyWrite(m.id, envelope(t, m.key, m.id, cose.MsgBallot, pid, ballot),
			ledger.MapWrites{Name: tables.ProposalsInfoMap, Writes: []ledger.KV{{Key: []byte(pid), Value: accepted}}}),
	)
	evs, err := auditBoth(t, dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(evs) != 4 {
		t.Fatalf("events %+v", evs)
	}
	p, open, b, acc := evs[0], evs[1], evs[2], evs[3]
	if p.Kind != "request" || p.MsgType != "proposal" || p.MemberID != m.id || p.ProposalID != pid ||
		strings.Join(p.Actions, ",") != "set_user,set_member_data" || p.CreatedAt == 0 {
		t.Errorf("proposal event %+v", p)
	}
	if open.Kind != "state" || open.State != "Open" || open.Seqno != p.Seqno || open.ProposalID != pid {
		t.Errorf("open event %+v", open)
	}
	if b.MsgType != "ballot" || b.ProposalID != pid || b.Seqno <= p.Seqno || audit.BallotSummary(b.Ballot) != "yes" {
		t.Errorf("ballot event %+v (%s)", b, audit.BallotSummary(b.Ballot))
	}
	if acc.State != "Accepted" || acc.Seqno != b.Seqno {
		t.Errorf("accepted event %+v", acc)
	}
}

// A history envelope that is validly included in the ledger (the
// integrity audit passes) but not signed by the member it names is a
// governance audit failure at its seqno.
func TestGovernanceHistoryWrongKey(t *testing.T) {
	m := newGovMember(t, "member0")
	other, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	payload := []byte(`{"actions":[{"name":"set_user","args":{}}]}`)
	dir := govLedger(t, m,
		historyWrite(m.id, envelope(t, m.key, m.id, cose.MsgProposal, "", payload)),
		historyWrite(m.id, envelope(t, other, m.id, cose.MsgProposal, "", payload)),
	)
	evs, err := auditBoth(t, dir)
	var f *audit.Failure
	if !errors.As(err, &f) || !strings.Contains(f.Reason, "does not verify with the member's certificate") {
		t.Fatalf("got %v, want a failure: the envelope is signed by another key", err)
	}
	if len(evs) != 1 || evs[0].Seqno >= f.Seqno {
		t.Fatalf("the good request before it: %+v, failure at %d", evs, f.Seqno)
	}
}

// The certificate is the member's as of the request's seqno: a request
// recorded after the member was removed, or under another member's id, or
// that is not an envelope at all, fails.
func TestGovernanceHistorySignerAsOfItsSeqno(t *testing.T) {
	m, m2 := newGovMember(t, "member0"), newGovMember(t, "member1")
	payload := []byte(`{"actions":[]}`)
	addM2 := ledger.MapWrites{Name: tables.MembersCertsMap, Writes: []ledger.KV{{Key: []byte(m2.id), Value: m2.pem}}}
	removeM2 := ledger.MapWrites{Name: tables.MembersCertsMap, Removes: [][]byte{[]byte(m2.id)}}
	for name, txs := range map[string][][]ledger.MapWrites{
		"before added": {historyWrite(m2.id, envelope(t, m2.key, m2.id, cose.MsgProposal, "", payload), addM2)},
		"after removed": {{addM2}, historyWrite(m2.id, envelope(t, m2.key, m2.id, cose.MsgProposal, "", payload)),
			{removeM2}, historyWrite(m2.id, envelope(t, m2.key, m2.id, cose.MsgProposal, "", payload))},
		"under another id": {historyWrite(m.id, envelope(t, m2.key, m2.id, cose.MsgProposal, "", payload))},
		"not an envelope":  {historyWrite(m.id, []byte("not cose"))},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := auditBoth(t, govLedger(t, m, txs...))
			var f *audit.Failure
			if !errors.As(err, &f) {
				t.Fatalf("got %v, want a governance failure", err)
			}
			t.Log(f)
		})
	}
}

func TestBallotSummary(t *testing.T) {
	for in, want := range map[string]string{
		"export function vote (proposal, proposerId) { return true; }":    "yes",
		"export function vote(proposal,proposerId){\n  return false\n}\n": "no",
		"export function vote (proposal, proposerId) { return 1 === 1; }": `"export function vote (proposal, proposerId) { return 1 === 1; }"`,
	} {
		if got := audit.BallotSummary(in); got != want {
			t.Errorf("%q: %s, want %s", in, got, want)
		}
	}
}

func mustRead(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
