package client_test

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"net/http"
	"os"
	"strings"
	"testing"

	"github.com/ledgerd/ledgerd/client"
)

// TestGovernanceReadSide reads the consortium, the service and the
// constitution through CCF's governance API (/gov/service/*).
func TestGovernanceReadSide(t *testing.T) {
	l := newLedger(t, ledgerOptions{})
	ctx := testContext(t)
	c := connect(t, l, l.MemberPEM)
	before := l.requests.len()

	memberPEM, err := os.ReadFile(l.MemberPEM)
	if err != nil {
		t.Fatal(err)
	}
	der, _ := certDER(memberPEM)
	sum := sha256.Sum256(der)
	memberID := hex.EncodeToString(sum[:])
	if s := c.MemberSigner(); s == nil || s.MemberID() != memberID {
		t.Fatalf("the member credential's signer is %v, want member %s", s, memberID)
	}

	members, err := c.ListMembers(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(members) != 1 || members[0].MemberID != memberID || members[0].Status == "" {
		t.Fatalf("members %+v", members)
	}
	if got, err := certDER([]byte(members[0].Certificate)); err != nil || string(got) != string(der) {
		t.Fatalf("member certificate %q", members[0].Certificate)
	}
	m, err := c.GetMember(ctx, memberID)
	if err != nil || m.MemberID != memberID {
		t.Fatalf("member %+v, %v", m, err)
	}

	info, err := c.GetServiceInfo(ctx)
	if err != nil {
		t.Fatal(err)
	}
	service, err := os.ReadFile(l.ServicePEM)
	if err != nil {
		t.Fatal(err)
	}
	if info.Status != "Open" || strings.TrimSpace(info.Certificate) != strings.TrimSpace(string(service)) {
		t.Fatalf("service info %+v", info)
	}

	script, err := c.GetServiceConstitution(ctx)
	if err != nil {
		t.Fatal(err)
	}
	con, err := connect(t, l, l.ReaderPEM).GetConstitution(ctx) // /app needs a ledger user
	if err != nil {
		t.Fatal(err)
	}
	if script == "" || script != con.Script {
		t.Fatalf("/gov/service/constitution %q differs from /app/governance/constitution %q", script, con.Script)
	}

	// The governance requests carry the governance api-version.
	for _, r := range l.requests.since(before) {
		if strings.HasPrefix(r, "GET /gov/") && !strings.Contains(r, "api-version="+client.GovAPIVersion) {
			t.Errorf("request %s without api-version %s", r, client.GovAPIVersion)
		}
	}

	// The governance errors come with their code.
	_, err = c.GetMember(ctx, strings.Repeat("0", 64))
	expectResponseError(t, err, http.StatusNotFound, "ResourceNotFound", client.ErrNotFound)
	_, err = c.GetMember(ctx, "not-hex")
	expectResponseError(t, err, http.StatusBadRequest, "InvalidResourceName", client.ErrBadRequest)
}

// TestGovernanceWritesNeedAMemberSigner: a client whose credential cannot
// sign refuses governance writes before sending anything.
func TestGovernanceWritesNeedAMemberSigner(t *testing.T) {
	l := newLedger(t, ledgerOptions{})
	ctx := testContext(t)
	c := connectWith(t, l, client.FromTokenSource(staticTokens("t")))
	before := l.requests.len()
	if _, err := c.CreateProposal(ctx, client.Action{Name: "set_user"}); !errors.Is(err, client.ErrNoMemberSigner) {
		t.Fatalf("CreateProposal: %v", err)
	}
	if _, err := c.Vote(ctx, "p", true); !errors.Is(err, client.ErrNoMemberSigner) {
		t.Fatalf("Vote: %v", err)
	}
	if _, err := c.WithdrawProposal(ctx, "p"); !errors.Is(err, client.ErrNoMemberSigner) {
		t.Fatalf("WithdrawProposal: %v", err)
	}
	if _, err := c.UpdateStateDigest(ctx); !errors.Is(err, client.ErrNoMemberSigner) {
		t.Fatalf("UpdateStateDigest: %v", err)
	}
	if err := c.AckStateDigest(ctx, "00"); !errors.Is(err, client.ErrNoMemberSigner) {
		t.Fatalf("AckStateDigest: %v", err)
	}
	if n := l.requests.len() - before; n != 0 {
		t.Fatalf("%d requests sent", n)
	}
	// An explicit signer signs for a token client.
	signer, err := client.LoadMemberSigner(l.MemberPEM)
	if err != nil {
		t.Fatal(err)
	}
	c2 := connectWith(t, l, client.FromTokenSource(staticTokens("t")), func(o *client.Options) { o.MemberSigner = signer })
	if c2.MemberSigner() != signer {
		t.Fatal("Options.MemberSigner is not the client's signer")
	}
}
