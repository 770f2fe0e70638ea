package client_test

import (
	"encoding/json"
	"encoding/pem"
	"errors"
	"net/http"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"github.com/ledgerd/ledgerd/client"
)

// TestGovernanceAgainstLedgerdProcess governs a real one-member ledgerd
// over HTTPS with signed requests: a set_user proposal, voted by its
// proposer, is Accepted and the new user can then append; a proposal is
// withdrawn; proposals are listed and read back; a member added by
// set_member acks the state digest and becomes Active.
func TestGovernanceAgainstLedgerdProcess(t *testing.T) {
	endpoint, data := startLedgerd(t)
	ctx := testContext(t)
	opts := func() *client.Options {
		return &client.Options{ServiceCertFile: filepath.Join(data, "service.pem"), PollInterval: 10 * time.Millisecond, PollAttempts: -1}
	}
	member, err := client.New(endpoint, client.CertificateFile(filepath.Join(data, "member0.pem")), opts())
	if err != nil {
		t.Fatal(err)
	}
	defer member.Close()
	me := member.MemberSigner().MemberID()

	// A new certificate is no user yet.
	userFile, userCert := newMemberFile(t)
	user, err := client.New(endpoint, client.CertificateFile(userFile), opts())
	if err != nil {
		t.Fatal(err)
	}
	defer user.Close()
	if _, err := user.AppendToLedger(ctx, "before"); !errors.Is(err, client.ErrForbidden) {
		t.Fatalf("append before set_user: %v", err)
	}

	userPEM := certPEMOf(userCert.Raw)
	p, err := member.CreateProposal(ctx, client.Action{Name: "set_user", Args: map[string]string{"cert": userPEM, "role": "Contributor"}})
	if err != nil {
		t.Fatal(err)
	}
	if p.ProposerID != me || len(p.ProposalID) != 64 {
		t.Fatalf("proposal %+v", p)
	}
	if p.State == client.ProposalOpen {
		if p, err = member.Vote(ctx, p.ProposalID, true); err != nil {
			t.Fatal(err)
		}
	}
	if p.State != client.ProposalAccepted {
		t.Fatalf("set_user proposal after the only member's yes: %+v", p)
	}
	res, err := user.AppendToLedger(ctx, "after set_user", client.WaitForCommit())
	if err != nil {
		t.Fatalf("append after set_user: %v", err)
	}
	if e, err := user.GetLedgerEntry(ctx, res.TransactionID, ""); err != nil || e.Contents != "after set_user" {
		t.Fatalf("entry %+v, %v", e, err)
	}
	accepted := p.ProposalID
	if ps, err := member.ListProposals(ctx); err != nil || len(ps) != 1 || ps[0].ProposalID != accepted || ps[0].State != client.ProposalAccepted {
		t.Fatalf("ListProposals: %+v, %v", ps, err)
	}
	got, err := member.GetProposal(ctx, accepted)
	if err != nil || got.State != client.ProposalAccepted || got.FinalVotes[me] != true {
		t.Fatalf("GetProposal: %+v, %v", got, err)
	}
	if b, err := member.GetBallot(ctx, accepted, me); err != nil || b != client.BallotYes {
		t.Fatalf("GetBallot: %q, %v", b, err)
	}
	actions, err := member.GetProposalActions(ctx, accepted)
	if err != nil {
		t.Fatal(err)
	}
	if !jsonEqual(t, actions, `{"actions":[{"name":"set_user","args":{"cert":`+jsonString(userPEM)+`,"role":"Contributor"}}]}`) {
		t.Fatalf("actions %s", actions)
	}

	// Withdraw an Open proposal: it is then Withdrawn and takes no votes.
	p, err = member.CreateProposal(ctx, client.Action{Name: "remove_user", Args: map[string]string{"user_id": client.CertificateUserID(userCert.Raw)}})
	if err != nil || p.State != client.ProposalOpen {
		t.Fatalf("remove_user proposal: %+v, %v", p, err)
	}
	withdrawn := p.ProposalID
	if p, err = member.WithdrawProposal(ctx, withdrawn); err != nil || p.State != client.ProposalWithdrawn {
		t.Fatalf("withdraw: %+v, %v", p, err)
	}
	if _, err := member.Vote(ctx, withdrawn, true); !errors.Is(err, client.ErrBadRequest) {
		t.Fatalf("a vote on a withdrawn proposal: %v", err)
	}
	if _, err := user.AppendToLedger(ctx, "still a user", client.WaitForCommit()); err != nil {
		t.Fatalf("the withdrawn remove_user applied: %v", err)
	}

	// A new proposal removed the closed ones before it, as CCF does; the
	// withdrawn one stays until the next.
	ps, err := member.ListProposals(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(ps) != 1 || ps[0].ProposalID != withdrawn || ps[0].State != client.ProposalWithdrawn {
		t.Fatalf("ListProposals: %+v", ps)
	}
	if _, err := member.GetProposal(ctx, accepted); !errors.Is(err, client.ErrNotFound) {
		t.Fatalf("the accepted proposal after the next one: %v", err)
	}

	// A second member: Accepted by set_member, Active once it acks.
	secondFile, secondCert := newMemberFile(t)
	p, err = member.CreateProposal(ctx, client.Action{Name: "set_member", Args: map[string]string{"cert": certPEMOf(secondCert.Raw)}})
	if err == nil && p.State == client.ProposalOpen {
		p, err = member.Vote(ctx, p.ProposalID, true)
	}
	if err != nil || p.State != client.ProposalAccepted {
		t.Fatalf("set_member: %+v, %v", p, err)
	}
	second, err := client.New(endpoint, client.CertificateFile(secondFile), opts())
	if err != nil {
		t.Fatal(err)
	}
	defer second.Close()
	secondID := second.MemberSigner().MemberID()
	if m, err := second.GetMember(ctx, secondID); err != nil || m.Status != "Accepted" {
		t.Fatalf("new member %+v, %v", m, err)
	}
	d, err := second.UpdateStateDigest(ctx)
	if err != nil || d.MemberID != secondID || d.StateDigest == "" {
		t.Fatalf("UpdateStateDigest: %+v, %v", d, err)
	}
	if got, err := second.GetStateDigest(ctx, ""); err != nil || got.StateDigest != d.StateDigest {
		t.Fatalf("GetStateDigest: %+v, %v", got, err)
	}
	if err := second.AckStateDigest(ctx, "00"+d.StateDigest[2:]); err == nil {
		t.Fatal("a wrong digest was acked")
	}
	if err := second.AckStateDigest(ctx, d.StateDigest); err != nil {
		t.Fatal(err)
	}
	if m, err := second.GetMember(ctx, secondID); err != nil || m.Status != "Active" {
		t.Fatalf("member after ack %+v, %v", m, err)
	}
	// Two Active members: one yes is no longer a strict majority.
	p, err = member.CreateProposal(ctx, client.Action{Name: "remove_user", Args: map[string]string{"user_id": client.CertificateUserID(userCert.Raw)}})
	if err == nil && p.State == client.ProposalOpen {
		p, err = member.Vote(ctx, p.ProposalID, true)
	}
	if err != nil || p.State != client.ProposalOpen {
		t.Fatalf("one of two votes: %+v, %v", p, err)
	}
	if p, err = second.Vote(ctx, p.ProposalID, true); err != nil || p.State != client.ProposalAccepted {
		t.Fatalf("two of two votes: %+v, %v", p, err)
	}
	if _, err := user.AppendToLedger(ctx, "removed"); !errors.Is(err, client.ErrForbidden) {
		t.Fatalf("append after remove_user: %v", err)
	}

	// A signer that is no member is refused, and nothing is proposed.
	strangerFile, _ := newMemberFile(t)
	stranger, err := client.New(endpoint, client.CertificateFile(strangerFile), opts())
	if err != nil {
		t.Fatal(err)
	}
	defer stranger.Close()
	before, _ := member.ListProposals(ctx)
	_, err = stranger.CreateProposal(ctx, client.Action{Name: "set_user", Args: map[string]string{"user_id": "x", "role": "Reader"}})
	var re *client.ResponseError
	if !errors.As(err, &re) || (re.StatusCode != http.StatusUnauthorized && re.StatusCode != http.StatusForbidden) || re.Code == "" {
		t.Fatalf("a stranger's proposal: %v", err)
	}
	after, _ := member.ListProposals(ctx)
	if len(after) != len(before) {
		t.Fatalf("a stranger's proposal was recorded: %d proposals, then %d", len(before), len(after))
	}
}

func certPEMOf(der []byte) string {
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
}

func jsonString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

// jsonEqual reports whether two JSON texts hold the same value.
func jsonEqual(t *testing.T, a []byte, b string) bool {
	t.Helper()
	var va, vb any
	if err := json.Unmarshal(a, &va); err != nil {
		t.Fatalf("%s: %v", a, err)
	}
	if err := json.Unmarshal([]byte(b), &vb); err != nil {
		t.Fatalf("%s: %v", b, err)
	}
	return reflect.DeepEqual(va, vb)
}
