package api_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/ledgerd/ledgerd/internal/constitution"
	"github.com/ledgerd/ledgerd/internal/gov"
	"github.com/ledgerd/ledgerd/internal/tables"
)

const govV = "?api-version=2024-07-01"

const (
	yesBallot = "export function vote (proposal, proposerId) { return true; }"
	noBallot  = "export function vote (proposal, proposerId) { return false; }"
)

// govProposal is the API's Proposal.
type govProposal struct {
	ProposalID    string          `json:"proposalId"`
	ProposerID    string          `json:"proposerId"`
	ProposalState string          `json:"proposalState"`
	BallotCount   int             `json:"ballotCount"`
	FinalVotes    map[string]bool `json:"finalVotes"`
	VoteFailures  map[string]struct {
		Reason string `json:"reason"`
	} `json:"voteFailures"`
	Failure *struct {
		Reason string `json:"reason"`
	} `json:"failure"`
}

// gov sends a signed governance request.
func (e *env) govPost(path string, envelope []byte) *response {
	e.t.Helper()
	return e.anonymous.do("POST", path+govV, envelope, "Content-Type", "application/cose")
}

// propose signs and submits a proposal as member i.
func (e *env) propose(i int, proposal string) *response {
	e.t.Helper()
	key, kid := e.members[i].memberKey()
	return e.govPost("/gov/members/proposals:create", govMsg{key: key, kid: kid, msgType: "proposal", payload: []byte(proposal)}.sign(e.t))
}

func (e *env) proposeOK(i int, proposal string) govProposal {
	e.t.Helper()
	var p govProposal
	e.propose(i, proposal).expect(200, "").decode(&p)
	return p
}

// vote signs and submits member i's ballot.
func (e *env) vote(i int, id, ballot string) *response {
	e.t.Helper()
	key, kid := e.members[i].memberKey()
	body, _ := json.Marshal(map[string]string{"ballot": ballot})
	return e.govPost("/gov/members/proposals/"+id+"/ballots/"+kid+":submit",
		govMsg{key: key, kid: kid, msgType: "ballot", proposalID: id, payload: body}.sign(e.t))
}

func (e *env) voteOK(i int, id, ballot string) govProposal {
	e.t.Helper()
	var p govProposal
	e.vote(i, id, ballot).expect(200, "").decode(&p)
	return p
}

func (e *env) proposal(id string) govProposal {
	e.t.Helper()
	var p govProposal
	e.anonymous.get("/gov/members/proposals/"+id+govV).expect(200, "").decode(&p)
	return p
}

func setUserProposal(cred credential, role string) string {
	b, _ := json.Marshal(map[string]any{"actions": []any{map[string]any{
		"name": "set_user", "args": map[string]any{"cert": string(cred.pem), "role": role}}}})
	return string(b)
}

// governanceTrail returns the governance tables a refused request must
// not have changed.
func (e *env) governanceTrail() string {
	e.t.Helper()
	st := e.node.State()
	var b strings.Builder
	for _, m := range []string{tables.ProposalsMap, tables.ProposalsInfoMap, tables.HistoryMap, tables.RecentProposalsMap,
		tables.MemberAcksMap, tables.MembersInfoMap, tables.UsersMap} {
		st.Range(m, func(k, v []byte) bool {
			fmt.Fprintf(&b, "%s %q %q\n", m, k, v)
			return true
		})
	}
	return b.String()
}

func TestGovProposalAcceptedThenApplied(t *testing.T) {
	e := newEnv(t, envOptions{})
	newcomer := newCredential(t, "newcomer")
	c := e.client(&newcomer)
	c.post(q("/app/transactions", v2022), map[string]string{"contents": "before"}).expect(403, "")

	proposal := setUserProposal(newcomer, "Contributor")
	p := e.proposeOK(0, proposal)
	_, kid := e.members[0].memberKey()
	if p.ProposalState != "Open" || p.ProposerID != kid || p.BallotCount != 0 || len(p.ProposalID) != 64 {
		t.Fatalf("created: %+v", p)
	}
	// Until it is accepted, nothing is applied.
	c.post(q("/app/transactions", v2022), map[string]string{"contents": "before"}).expect(403, "")

	p = e.voteOK(0, p.ProposalID, yesBallot)
	if p.ProposalState != "Accepted" || p.BallotCount != 1 || !p.FinalVotes[kid] {
		t.Fatalf("after the vote: %+v", p)
	}
	// The new user may append at once.
	c.post(q("/app/transactions", v2022), map[string]string{"contents": "after"}).expect(200, "")

	// The reads: the proposal, its actions, the ballot, the list.
	if got := e.proposal(p.ProposalID); got.ProposalState != "Accepted" {
		t.Fatalf("GET: %+v", got)
	}
	actions := e.anonymous.get("/gov/members/proposals/"+p.ProposalID+"/actions"+govV).expect(200, "")
	if string(actions.body) != proposal {
		t.Fatalf("actions %s", actions.body)
	}
	ballot := e.anonymous.get("/gov/members/proposals/"+p.ProposalID+"/ballots/"+kid+govV).expect(200, "")
	if string(ballot.body) != yesBallot || ballot.header.Get("Content-Type") != "text/javascript" {
		t.Fatalf("ballot %q %q", ballot.body, ballot.header.Get("Content-Type"))
	}
	var list struct{ Value []govProposal }
	e.anonymous.get("/gov/members/proposals"+govV).expect(200, "").decode(&list)
	if len(list.Value) != 1 || list.Value[0].ProposalID != p.ProposalID {
		t.Fatalf("list %+v", list)
	}
	// The signed ballot is the member's last entry in the history.
	if h, ok := e.node.State().Get(tables.HistoryMap, []byte(kid)); !ok || len(h) == 0 || h[0] != 0xd2 {
		t.Fatalf("history %x", h)
	}
	// A closed proposal takes no more votes.
	e.vote(0, p.ProposalID, noBallot).expect(400, gov.CodeProposalNotOpen)
	e.anonymous.get("/gov/members/proposals/"+strings.Repeat("0", 64)+govV).expect(404, gov.CodeProposalNotFound)
	e.anonymous.get("/gov/members/proposals/"+p.ProposalID+"/ballots/"+strings.Repeat("0", 64)+govV).expect(404, gov.CodeVoteNotFound)
}

func TestGovSignedRequestRefusals(t *testing.T) {
	e := newEnv(t, envOptions{})
	key, kid := e.members[0].memberKey()
	strangerKey, strangerKID := newCredential(t, "stranger").memberKey()
	proposal := []byte(setUserProposal(newCredential(t, "u"), "Reader"))
	before := e.governanceTrail()
	create := "/gov/members/proposals:create"
	for name, tc := range map[string]struct {
		msg    govMsg
		status int
		code   string
	}{
		"forged (member's kid, other key)": {govMsg{key: strangerKey, kid: kid, msgType: "proposal", payload: proposal}, 401, "InvalidAuthenticationInfo"},
		"unknown member":                   {govMsg{key: strangerKey, kid: strangerKID, msgType: "proposal", payload: proposal}, 401, "InvalidAuthenticationInfo"},
		"wrong kid":                        {govMsg{key: key, kid: strangerKID, msgType: "proposal", payload: proposal}, 401, "InvalidAuthenticationInfo"},
		"no kid":                           {govMsg{key: key, msgType: "proposal", payload: proposal}, 401, "InvalidAuthenticationInfo"},
		"no msg type":                      {govMsg{key: key, kid: kid, payload: proposal}, 401, "InvalidAuthenticationInfo"},
		"wrong msg type":                   {govMsg{key: key, kid: kid, msgType: "ballot", proposalID: strings.Repeat("a", 64), payload: proposal}, 401, "InvalidAuthenticationInfo"},
		"no created_at":                    {govMsg{key: key, kid: kid, msgType: "proposal", payload: proposal, noCreated: true}, 401, "InvalidAuthenticationInfo"},
		"untagged":                         {govMsg{key: key, kid: kid, msgType: "proposal", payload: proposal, noTag: true}, 401, "InvalidAuthenticationInfo"},
		"stale":                            {govMsg{key: key, kid: kid, msgType: "proposal", payload: proposal, createdAt: time.Now().Add(-2 * time.Hour).Unix()}, 400, "InvalidCreatedAt"},
		"from the future":                  {govMsg{key: key, kid: kid, msgType: "proposal", payload: proposal, createdAt: time.Now().Add(time.Hour).Unix()}, 400, "InvalidCreatedAt"},
		"not a proposal":                   {govMsg{key: key, kid: kid, msgType: "proposal", payload: []byte(`{"actions":"x"}`)}, 400, gov.CodeInvalidInput},
		"invalid action":                   {govMsg{key: key, kid: kid, msgType: "proposal", payload: []byte(`{"actions":[{"name":"set_user","args":{"role":"King"}}]}`)}, 400, gov.CodeProposalFailedToValidate},
		"unknown action":                   {govMsg{key: key, kid: kid, msgType: "proposal", payload: []byte(`{"actions":[{"name":"open_sesame"}]}`)}, 400, gov.CodeProposalFailedToValidate},
	} {
		r := e.govPost(create, tc.msg.sign(t))
		if r.status != tc.status || r.errorCode() != tc.code || r.header.Get("x-ms-error-code") != tc.code {
			t.Errorf("%s: %d %s %s", name, r.status, r.header.Get("x-ms-error-code"), r.body)
		}
	}
	// Bytes that are not COSE, the wrong Content-Type, no api-version.
	e.govPost(create, []byte("not cose")).expect(401, "InvalidAuthenticationInfo")
	good := govMsg{key: key, kid: kid, msgType: "proposal", payload: proposal}.sign(t)
	e.anonymous.do("POST", create+govV, good, "Content-Type", "application/json").expect(415, "UnsupportedContentType")
	e.anonymous.do("POST", create, good, "Content-Type", "application/cose").expect(400, "MissingApiVersionParameter")
	if after := e.governanceTrail(); after != before {
		t.Fatalf("refused requests changed the state:\n%s\n---\n%s", before, after)
	}

	// A replayed proposal is refused and writes nothing.
	var p govProposal
	e.govPost(create, good).expect(200, "").decode(&p)
	before = e.governanceTrail()
	r := e.govPost(create, good).expect(400, gov.CodeProposalReplay)
	if !strings.Contains(r.errorMessage(), p.ProposalID) {
		t.Errorf("replay message %q does not name %s", r.errorMessage(), p.ProposalID)
	}
	// A ballot whose signed proposal id is not the URL's, or whose signer is not the URL's member.
	_, otherKID := e.members[0].memberKey()
	ballot, _ := json.Marshal(map[string]string{"ballot": yesBallot})
	e.govPost("/gov/members/proposals/"+p.ProposalID+"/ballots/"+otherKID+":submit",
		govMsg{key: key, kid: kid, msgType: "ballot", proposalID: strings.Repeat("b", 64), payload: ballot}.sign(t)).expect(401, "InvalidAuthenticationInfo")
	e.govPost("/gov/members/proposals/"+p.ProposalID+"/ballots/"+strangerKID+":submit",
		govMsg{key: key, kid: kid, msgType: "ballot", proposalID: p.ProposalID, payload: ballot}.sign(t)).expect(401, "InvalidAuthenticationInfo")
	// Every other message type: forged, stale, from an unknown member.
	ackBody, _ := json.Marshal(map[string]string{"stateDigest": strings.Repeat("0", 64)})
	for _, m := range []struct {
		path    string
		msgType string
		pid     string
		payload []byte
	}{
		{"/gov/members/proposals/" + p.ProposalID + "/ballots/" + kid + ":submit", "ballot", p.ProposalID, ballot},
		{"/gov/members/proposals/" + p.ProposalID + ":withdraw", "withdrawal", p.ProposalID, nil},
		{"/gov/members/state-digests/" + kid + ":update", "state_digest", "", nil},
		{"/gov/members/state-digests/" + kid + ":ack", "ack", "", ackBody},
	} {
		forged := govMsg{key: strangerKey, kid: kid, msgType: m.msgType, proposalID: m.pid, payload: m.payload}
		e.govPost(m.path, forged.sign(t)).expect(401, "InvalidAuthenticationInfo")
		stale := govMsg{key: key, kid: kid, msgType: m.msgType, proposalID: m.pid, payload: m.payload, createdAt: time.Now().Add(-2 * time.Hour).Unix()}
		e.govPost(m.path, stale.sign(t)).expect(400, "InvalidCreatedAt")
		unknown := govMsg{key: strangerKey, kid: strangerKID, msgType: m.msgType, proposalID: m.pid, payload: m.payload}
		e.govPost(strings.Replace(m.path, kid, strangerKID, 1), unknown.sign(t)).expect(401, "InvalidAuthenticationInfo")
	}
	if after := e.governanceTrail(); after != before {
		t.Fatalf("refused requests changed the state:\n%s\n---\n%s", before, after)
	}
}

func TestGovWithdraw(t *testing.T) {
	e := newEnv(t, envOptions{extraMembers: 1})
	p := e.proposeOK(0, setUserProposal(newCredential(t, "u"), "Reader"))
	withdraw := func(i int, id string) *response {
		key, kid := e.members[i].memberKey()
		return e.govPost("/gov/members/proposals/"+id+":withdraw", govMsg{key: key, kid: kid, msgType: "withdrawal", proposalID: id}.sign(t))
	}
	withdraw(1, p.ProposalID).expect(403, gov.CodeAuthorizationFailed)
	var w govProposal
	withdraw(0, p.ProposalID).expect(200, "").decode(&w)
	if w.ProposalState != "Withdrawn" || e.proposal(p.ProposalID).ProposalState != "Withdrawn" {
		t.Fatalf("withdrawn: %+v", w)
	}
	e.vote(1, p.ProposalID, yesBallot).expect(400, gov.CodeProposalNotOpen)
	withdraw(0, p.ProposalID).expect(200, "")                     // idempotent
	withdraw(0, strings.Repeat("c", 64)).expect(204, "")          // unknown: no content, as CCF
	e.govPost("/gov/members/proposals/"+p.ProposalID+":withdraw", // a withdrawal needs the proposal id signed
		func() []byte {
			key, kid := e.members[0].memberKey()
			return govMsg{key: key, kid: kid, msgType: "withdrawal"}.sign(t)
		}()).expect(401, "InvalidAuthenticationInfo")
}

func TestGovMajorityOfThree(t *testing.T) {
	e := newEnv(t, envOptions{extraMembers: 2})
	newcomer := newCredential(t, "newcomer")
	p := e.proposeOK(1, setUserProposal(newcomer, "Reader"))
	if got := e.voteOK(0, p.ProposalID, yesBallot); got.ProposalState != "Open" {
		t.Fatalf("one vote of three accepted it: %+v", got)
	}
	e.client(&newcomer).get(q("/app/collections", v2022)).expect(403, "")
	// The same ballot again changes nothing; a different one is refused.
	if got := e.voteOK(0, p.ProposalID, yesBallot); got.ProposalState != "Open" || got.BallotCount != 1 {
		t.Fatalf("repeated ballot: %+v", got)
	}
	e.vote(0, p.ProposalID, noBallot).expect(400, gov.CodeVoteAlreadyExists)
	if got := e.voteOK(2, p.ProposalID, yesBallot); got.ProposalState != "Accepted" || len(got.FinalVotes) != 2 {
		t.Fatalf("two votes of three: %+v", got)
	}
	e.client(&newcomer).get(q("/app/collections", v2022)).expect(200, "")

	// Two noes of three reject.
	r := e.proposeOK(0, setUserProposal(newCredential(t, "other"), "Reader"))
	e.voteOK(1, r.ProposalID, noBallot)
	if got := e.voteOK(2, r.ProposalID, noBallot); got.ProposalState != "Rejected" {
		t.Fatalf("two noes: %+v", got)
	}
}

func TestGovCustomBallot(t *testing.T) {
	e := newEnv(t, envOptions{extraMembers: 1})
	// A ballot that reads the proposal: yes only for Reader users.
	const readersOnly = `export function vote (proposal, proposerId) {
  return JSON.parse(proposal).actions.every(a => a.name === "set_user" && a.args.role === "Reader");
}`
	const throws = `export function vote (proposal, proposerId) { throw new Error("ballot exploded"); }`
	_, kid0 := e.members[0].memberKey()
	_, kid1 := e.members[1].memberKey()
	admin := e.proposeOK(0, setUserProposal(newCredential(t, "a"), "Administrator"))
	if got := e.voteOK(1, admin.ProposalID, throws); got.ProposalState != "Open" || got.BallotCount != 1 {
		t.Fatalf("a failing ballot counts as no vote: %+v", got)
	}
	if got := e.voteOK(0, admin.ProposalID, readersOnly); got.ProposalState != "Rejected" ||
		got.FinalVotes[kid0] || !strings.Contains(got.VoteFailures[kid1].Reason, "ballot exploded") {
		t.Fatalf("custom ballots on an Administrator: %+v", got)
	}
	reader := e.proposeOK(1, setUserProposal(newCredential(t, "r"), "Reader"))
	e.voteOK(0, reader.ProposalID, readersOnly)
	if got := e.voteOK(1, reader.ProposalID, readersOnly); got.ProposalState != "Accepted" || !got.FinalVotes[kid0] || !got.FinalVotes[kid1] {
		t.Fatalf("custom ballots on a Reader: %+v", got)
	}
}

// constitutionProposal proposes a new constitution: the default with
// apply replaced by body.
func constitutionProposal(applyBody string) string {
	src := gov.DefaultConstitution
	i := strings.Index(src, "export function apply(")
	script := src[:i] + "export function apply(proposal, proposalId) {\n" + applyBody + "\n}\n"
	b, _ := json.Marshal(map[string]any{"actions": []any{map[string]any{
		"name": "set_constitution", "args": map[string]any{"constitution": script}}}})
	return string(b)
}

func TestGovConstitutionChangeDropsOpenProposals(t *testing.T) {
	e := newEnv(t, envOptions{extraMembers: 2})
	open := e.proposeOK(0, setUserProposal(newCredential(t, "u"), "Reader"))
	change := e.proposeOK(1, constitutionProposal(`for (const a of JSON.parse(proposal).actions) actions.get(a.name).apply(a.args, proposalId);`))
	e.voteOK(0, change.ProposalID, yesBallot)
	if got := e.voteOK(1, change.ProposalID, yesBallot); got.ProposalState != "Accepted" {
		t.Fatalf("constitution change: %+v", got)
	}
	if got := e.proposal(open.ProposalID); got.ProposalState != "Dropped" {
		t.Fatalf("the open proposal is %s, want Dropped", got.ProposalState)
	}
	e.vote(2, open.ProposalID, yesBallot).expect(400, gov.CodeProposalNotOpen)
	var constitution struct{}
	_ = constitution
	if script := string(e.anonymous.get("/gov/service/constitution"+govV).expect(200, "").body); script == gov.DefaultConstitution {
		t.Fatal("the constitution did not change")
	}
}

func TestGovRunawayConstitutionFailsTheProposal(t *testing.T) {
	// The allocating apply gets a long time limit, so that only the memory
	// limit can stop it (under -race goja is slow).
	for name, tc := range map[string]struct {
		apply, reason string
		limit         time.Duration
	}{
		"throws":    {`throw new Error("apply exploded");`, "apply exploded", time.Second},
		"loops":     {`while (true) {}`, "took too long", 500 * time.Millisecond},
		"allocates": {`const a = []; for (;;) a.push(new Array(1e6));`, "memory", 30 * time.Second},
	} {
		t.Run(name, func(t *testing.T) {
			e := newEnv(t, envOptions{govLimits: constitution.Limits{Time: tc.limit, Memory: 64 << 20}})
			p := e.proposeOK(0, constitutionProposal(`
if (JSON.parse(proposal).actions[0].name === "set_user") {`+tc.apply+`}
for (const a of JSON.parse(proposal).actions) actions.get(a.name).apply(a.args, proposalId);`))
			if got := e.voteOK(0, p.ProposalID, yesBallot); got.ProposalState != "Accepted" {
				t.Fatalf("installing the constitution: %+v", got)
			}
			victim := newCredential(t, "victim")
			v := e.proposeOK(0, setUserProposal(victim, "Administrator"))
			start := time.Now()
			got := e.voteOK(0, v.ProposalID, yesBallot)
			if got.ProposalState != "Failed" || got.Failure == nil || !strings.Contains(got.Failure.Reason, tc.reason) {
				t.Fatalf("proposal: %+v (failure %+v)", got, got.Failure)
			}
			if d := time.Since(start); d > tc.limit+5*time.Second {
				t.Fatalf("the failing apply took %s", d)
			}
			// Nothing applied; the node still serves.
			e.client(&victim).get(q("/app/collections", v2022)).expect(403, "")
			e.write(e.contributor, v2022, "", "still serving")
			if got := e.proposal(v.ProposalID); got.ProposalState != "Failed" {
				t.Fatalf("GET: %+v", got)
			}
		})
	}
}

func TestGovMemberAckBecomesActive(t *testing.T) {
	e := newEnv(t, envOptions{})
	newMember := newCredential(t, "new member")
	key, kid := newMember.memberKey()
	b, _ := json.Marshal(map[string]any{"actions": []any{map[string]any{
		"name": "set_member", "args": map[string]any{"cert": string(newMember.pem)}}}})
	p := e.proposeOK(0, string(b))
	if got := e.voteOK(0, p.ProposalID, yesBallot); got.ProposalState != "Accepted" {
		t.Fatalf("set_member: %+v", got)
	}
	var m struct {
		Status string `json:"status"`
	}
	e.anonymous.get("/gov/service/members/"+kid+govV).expect(200, "").decode(&m)
	if m.Status != "Accepted" {
		t.Fatalf("new member is %q", m.Status)
	}
	// An Accepted member cannot propose yet.
	e.govPost("/gov/members/proposals:create", govMsg{key: key, kid: kid, msgType: "proposal",
		payload: []byte(setUserProposal(newCredential(t, "x"), "Reader"))}.sign(t)).expect(403, gov.CodeAuthorizationFailed)
	digestPath := "/gov/members/state-digests/" + kid
	var empty struct{ MemberID, StateDigest string }
	e.anonymous.get(digestPath+govV).expect(200, "").decode(&empty) // set_member records an empty digest, as CCF
	if empty.MemberID != kid || empty.StateDigest != "" {
		t.Fatalf("digest before :update: %+v", empty)
	}
	ack := func(digest string) *response {
		body, _ := json.Marshal(map[string]string{"stateDigest": digest})
		return e.govPost(digestPath+":ack", govMsg{key: key, kid: kid, msgType: "ack", payload: body}.sign(t))
	}
	ack("").expect(404, "ResourceNotFound")
	e.anonymous.get("/gov/members/state-digests/"+strings.Repeat("1", 64)+govV).expect(404, "ResourceNotFound")
	var d struct{ MemberID, StateDigest string }
	e.govPost(digestPath+":update", govMsg{key: key, kid: kid, msgType: "state_digest"}.sign(t)).expect(200, "").decode(&d)
	if d.MemberID != kid || len(d.StateDigest) != 64 {
		t.Fatalf("update: %+v", d)
	}
	var got struct{ MemberID, StateDigest string }
	e.anonymous.get(digestPath+govV).expect(200, "").decode(&got)
	if got != d {
		t.Fatalf("GET digest %+v, :update said %+v", got, d)
	}
	ack(strings.Repeat("0", 64)).expect(400, gov.CodeStateDigestMismatch)
	// Another member cannot ack for it.
	otherKey, otherKID := e.members[0].memberKey()
	body, _ := json.Marshal(map[string]string{"stateDigest": d.StateDigest})
	e.govPost(digestPath+":ack", govMsg{key: otherKey, kid: otherKID, msgType: "ack", payload: body}.sign(t)).expect(401, "InvalidAuthenticationInfo")
	ack(d.StateDigest).expect(204, "")
	e.anonymous.get("/gov/service/members/"+kid+govV).expect(200, "").decode(&m)
	if m.Status != "Active" {
		t.Fatalf("after the ack the member is %q", m.Status)
	}
	// Now it may propose; with two Active members one vote is not enough.
	var np govProposal
	e.govPost("/gov/members/proposals:create", govMsg{key: key, kid: kid, msgType: "proposal",
		payload: []byte(setUserProposal(newCredential(t, "y"), "Reader"))}.sign(t)).expect(200, "").decode(&np)
	if got := e.voteOK(0, np.ProposalID, yesBallot); got.ProposalState != "Open" {
		t.Fatalf("one of two: %+v", got)
	}
}

// TestGovClientDisconnectDoesNotFailTheProposal: a member whose connection
// drops while the constitution runs does not turn its vote into a Failed
// proposal: the apply completes and the proposal is Accepted.
func TestGovClientDisconnectDoesNotFailTheProposal(t *testing.T) {
	e := newEnv(t, envOptions{govLimits: constitution.Limits{Time: 5 * time.Second}})
	slow := e.proposeOK(0, constitutionProposal(`
if (JSON.parse(proposal).actions[0].name === "set_user") { const end = Date.now() + 500; while (Date.now() < end) {} }
for (const a of JSON.parse(proposal).actions) actions.get(a.name).apply(a.args, proposalId);`))
	if got := e.voteOK(0, slow.ProposalID, yesBallot); got.ProposalState != "Accepted" {
		t.Fatalf("installing the constitution: %+v", got)
	}
	user := newCredential(t, "patient")
	p := e.proposeOK(0, setUserProposal(user, "Reader"))
	key, kid := e.members[0].memberKey()
	body, _ := json.Marshal(map[string]string{"ballot": yesBallot})
	envelope := govMsg{key: key, kid: kid, msgType: "ballot", proposalID: p.ProposalID, payload: body}.sign(t)
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, "POST", e.base+"/gov/members/proposals/"+p.ProposalID+"/ballots/"+kid+":submit"+govV, bytes.NewReader(envelope))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/cose")
	if resp, err := e.anonymous.hc.Do(req); err == nil {
		resp.Body.Close()
		t.Fatalf("the ballot was answered (%d) before the client gave up", resp.StatusCode)
	}
	waitFor(t, "the proposal to close", func() bool {
		info, ok, _ := gov.ProposalInfoOf(e.node.State(), p.ProposalID)
		return ok && info.State != "Open"
	})
	if got := e.proposal(p.ProposalID); got.ProposalState != "Accepted" {
		t.Fatalf("after the client went away: %+v (failure %+v)", got, got.Failure)
	}
	e.client(&user).get(q("/app/collections", v2022)).expect(200, "")
}
