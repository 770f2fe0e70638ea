package main

import (
	"encoding/json"
	"encoding/pem"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ledgerd/ledgerd/client"
	"github.com/ledgerd/ledgerd/internal/testbin"
)

// memberFlags returns the connection flags of the first member,
// DATA/member0.pem.
func (l *testLedger) memberFlags() []string {
	return []string{"--endpoint", l.endpoint, "--cert", filepath.Join(l.data, "member0.pem"), "--service-cert", l.servicePEM}
}

// TestGovReadCommands runs gov members and gov constitution (with --diff)
// against a real ledgerd.
func TestGovReadCommands(t *testing.T) {
	isolateEnv(t)
	l := startLedger(t, testbin.Command(t, "LEDGERD_BIN", "github.com/ledgerd/ledgerd/cmd/ledgerd"))
	signer, err := client.LoadMemberSigner(filepath.Join(l.data, "member0.pem"))
	if err != nil {
		t.Fatal(err)
	}
	out := ctl(append([]string{"gov", "members"}, l.memberFlags()...)...).ok(t)
	if !strings.HasPrefix(out, "member "+signer.MemberID()+" ") || !strings.Contains(out, "(you)") || !strings.Contains(out, "subject CN=") {
		t.Fatalf("gov members:\n%s", out)
	}
	var members struct{ Value []client.Member }
	ctl(append([]string{"gov", "members", "--json"}, l.memberFlags()...)...).decode(t, &members)
	if len(members.Value) != 1 || members.Value[0].MemberID != signer.MemberID() {
		t.Fatalf("gov members --json: %+v", members)
	}

	script := ctl(append([]string{"gov", "constitution"}, l.memberFlags()...)...).ok(t)
	if !strings.Contains(script, "export function") {
		t.Fatalf("gov constitution:\n%s", script)
	}
	local := filepath.Join(t.TempDir(), "constitution.js")
	if err := os.WriteFile(local, []byte(script), 0o600); err != nil {
		t.Fatal(err)
	}
	out = ctl(append([]string{"gov", "constitution", "--diff", local}, l.memberFlags()...)...).ok(t)
	if !strings.Contains(out, "identical") {
		t.Fatalf("gov constitution --diff of the same text:\n%s", out)
	}
	if err := os.WriteFile(local, []byte("// a local change\n"+script), 0o600); err != nil {
		t.Fatal(err)
	}
	r := ctl(append([]string{"gov", "constitution", "--diff", local}, l.memberFlags()...)...)
	r.fails(t, 1, "differs from "+local)
	if !strings.Contains(r.stdout, "@@ -1,4 +1,3 @@\n-// a local change\n") {
		t.Fatalf("diff:\n%s", r.stdout)
	}
}

// TestGovCommands governs a real one-member ledgerd with ledgerctl gov:
// propose set_user --vote makes a user that can then append; withdraw;
// list; show; ack.
func TestGovCommands(t *testing.T) {
	isolateEnv(t)
	l := startLedger(t, testbin.Command(t, "LEDGERD_BIN", "github.com/ledgerd/ledgerd/cmd/ledgerd"))
	mf := l.memberFlags()
	userFile, userID := newUserCert(t, "newuser")
	userFlags := []string{"--endpoint", l.endpoint, "--cert", userFile, "--service-cert", l.servicePEM}
	ctl(append([]string{"append", "before"}, userFlags...)...).fails(t, 1, "403")

	certPEM := certPEMOfFile(t, userFile)
	args, _ := json.Marshal(map[string]string{"cert": certPEM, "role": "Contributor"})
	var p client.Proposal
	ctl(append([]string{"gov", "propose", "--action", "set_user", "--args", string(args), "--vote", "--json"}, mf...)...).decode(t, &p)
	if p.State != client.ProposalAccepted || len(p.ProposalID) != 64 {
		t.Fatalf("propose --vote: %+v", p)
	}
	ctl(append([]string{"append", "--wait", "after set_user"}, userFlags...)...).ok(t)

	// show: the state, the vote and the signed actions.
	out := ctl(append([]string{"gov", "show", p.ProposalID}, mf...)...).ok(t)
	if !strings.HasPrefix(out, "proposal "+p.ProposalID+" Accepted\n") || !strings.Contains(out, " yes\n") || !strings.Contains(out, `"name": "set_user"`) {
		t.Fatalf("gov show:\n%s", out)
	}

	// A proposal file, then withdraw it.
	file := filepath.Join(t.TempDir(), "remove.json")
	doc := `{"actions":[{"name":"remove_user","args":{"user_id":"` + userID + `"}}]}`
	if err := os.WriteFile(file, []byte(doc), 0o600); err != nil {
		t.Fatal(err)
	}
	var open client.Proposal
	ctl(append([]string{"gov", "propose", "--json", file}, mf...)...).decode(t, &open)
	if open.State != client.ProposalOpen {
		t.Fatalf("propose FILE: %+v", open)
	}
	out = ctl(append([]string{"gov", "withdraw", open.ProposalID}, mf...)...).ok(t)
	if !strings.HasPrefix(out, "proposal "+open.ProposalID+" Withdrawn\n") {
		t.Fatalf("gov withdraw:\n%s", out)
	}
	ctl(append([]string{"gov", "vote", open.ProposalID, "--yes"}, mf...)...).fails(t, 1, "400")

	// The service keeps the last closed proposal (CCF removes the others
	// when the next is created).
	out = ctl(append([]string{"gov", "list"}, mf...)...).ok(t)
	if !strings.HasPrefix(out, open.ProposalID+" Withdrawn proposer ") || strings.Count(out, "\n") != 1 {
		t.Fatalf("gov list:\n%s", out)
	}

	// A second member, added by set_member, acks and becomes Active.
	secondFile, _ := newUserCert(t, "member1")
	margs, _ := json.Marshal(map[string]string{"cert": certPEMOfFile(t, secondFile)})
	ctl(append([]string{"gov", "propose", "--action", "set_member", "--args", string(margs), "--vote"}, mf...)...).ok(t)
	secondFlags := []string{"--endpoint", l.endpoint, "--cert", secondFile, "--service-cert", l.servicePEM}
	if out := ctl(append([]string{"gov", "members"}, secondFlags...)...).ok(t); !strings.Contains(out, "Accepted (you)") {
		t.Fatalf("gov members before ack:\n%s", out)
	}
	out = ctl(append([]string{"gov", "ack"}, secondFlags...)...).ok(t)
	if !strings.Contains(out, "acked state digest") || !strings.Contains(out, "status Active") {
		t.Fatalf("gov ack:\n%s", out)
	}
	// A custom ballot: the second member's JavaScript votes against.
	ballot := filepath.Join(t.TempDir(), "no.js")
	if err := os.WriteFile(ballot, []byte("export function vote (proposal, proposerId) { return proposerId === 'nobody'; }"), 0o600); err != nil {
		t.Fatal(err)
	}
	var two client.Proposal
	ctl(append([]string{"gov", "propose", "--json", "--vote", file}, mf...)...).decode(t, &two)
	if two.State != client.ProposalOpen {
		t.Fatalf("one yes of two Active members: %+v", two)
	}
	ctl(append([]string{"gov", "vote", two.ProposalID, "--ballot", ballot}, secondFlags...)...).ok(t)
	ctl(append([]string{"gov", "show", "--json", two.ProposalID}, mf...)...).decode(t, &two)
	if two.State == client.ProposalAccepted || two.BallotCount != 2 {
		t.Fatalf("after a no: %+v", two)
	}
	ctl(append([]string{"append", "--wait", "still a user"}, userFlags...)...).ok(t)
}

// certPEMOfFile returns the certificate of a PEM file of certificate and
// key.
func certPEMOfFile(t *testing.T, path string) string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	block, _ := pem.Decode(data)
	if block == nil || block.Type != "CERTIFICATE" {
		t.Fatalf("%s holds no certificate first", path)
	}
	return string(pem.EncodeToMemory(block))
}
