package api

import (
	"cmp"
	"context"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/ledgerd/ledgerd/internal/cose"
	"github.com/ledgerd/ledgerd/internal/gov"
	"github.com/ledgerd/ledgerd/internal/ledger"
	"github.com/ledgerd/ledgerd/internal/node"
	"github.com/ledgerd/ledgerd/internal/tables"
)

// The write side of CCF's governance API, version 2024-07-01 (CCF
// src/node/gov/handlers/proposals.h and acks.h): members' signed requests
// (COSE_Sign1, application/cose), judged by the constitution (gov.Engine)
// and written through the node's executor, plus the reads of proposals,
// ballots and state digests (unauthenticated, as in CCF).

// mediaCOSE is the Content-Type of a signed governance request.
const mediaCOSE = "application/cose"

// Governance clock bounds: a signed request whose created_at is further in
// the past or the future than these is refused (CCF bounds only proposals,
// by its replay window; ledgerd bounds every signed request by the clock
// too, so that a captured ballot, withdrawal or ack cannot be replayed
// later than this).
const (
	GovMaxAge  = time.Hour
	GovMaxSkew = 5 * time.Minute
)

// signed is a verified governance request.
type signed struct {
	msg *cose.Sign1
	req gov.Request
}

// govSigned wraps a signed governance write: api-version, the COSE
// envelope (Content-Type, size, shape, msg type), the signer (a member in
// the committed state, with the status the message type needs), the
// signature against the member's committed certificate, and the clock.
// Every refusal happens before anything is written.
func govSigned(msgType string, h func(*Server, *call, *signed) error) func(*Server, *call) error {
	return func(s *Server, c *call) error {
		if err := checkGovVersion(c.r.URL.Query()[apiVersionParam]); err != nil {
			return err
		}
		if c.r.Header.Get("Content-Type") == "" {
			return newError(http.StatusUnsupportedMediaType, codeUnsupportedType,
				"A signed governance request needs Content-Type: %s.", mediaCOSE)
		}
		body, err := readBody(c, mediaCOSE)
		if err != nil {
			return err
		}
		sg, err := s.verifyMember(body, msgType, time.Now())
		if err != nil {
			return err
		}
		return h(s, c, sg)
	}
}

// unauthenticated is CCF's answer to a COSE request that fails
// authentication.
func unauthenticated(format string, args ...any) error {
	return newError(http.StatusUnauthorized, codeUnauthenticated, format, args...)
}

func (s *Server) verifyMember(body []byte, msgType string, now time.Time) (*signed, error) {
	msg, err := cose.Parse(body)
	if err != nil {
		return nil, unauthenticated("The request is not a valid COSE_Sign1 governance message: %v.", err)
	}
	if err := msg.CheckGovernance(msgType); err != nil {
		return nil, unauthenticated("%v.", err)
	}
	if msg.HasProposalID != cose.RequiresProposalID(msgType) {
		return nil, unauthenticated("ccf.gov.msg.proposal_id is required on %s messages and only on them.", msgType)
	}
	id := string(msg.KID)
	st := s.reads.State()
	certPEM, ok := st.GetCommitted(tables.MembersCertsMap, msg.KID)
	if !ok {
		return nil, unauthenticated("Signer %q is not a member of this service.", clip(id))
	}
	cert, err := parseMemberCert(certPEM)
	if err != nil {
		return nil, fmt.Errorf("member %s's certificate: %w", id, err)
	}
	if err := msg.Verify(cert.PublicKey); err != nil {
		return nil, unauthenticated("The signature does not verify with member %s's certificate.", id)
	}
	status := committedMemberStatus(st, id)
	switch {
	case status == gov.MemberActive:
	case status == gov.MemberAccepted && (msgType == cose.MsgAck || msgType == cose.MsgStateDigest):
	default:
		return nil, newError(http.StatusForbidden, gov.CodeAuthorizationFailed,
			"Member %s is %s; only an Active member may send a %s.", id, cmp.Or(status, "unknown"), msgType)
	}
	if err := cose.CheckCreatedAt(msg.CreatedAt, now, GovMaxAge, GovMaxSkew); err != nil {
		return nil, newError(http.StatusBadRequest, "InvalidCreatedAt", "%s.", strings.TrimPrefix(err.Error(), "cose: "))
	}
	return &signed{msg: msg, req: gov.Request{
		MemberID: id, Envelope: body, Signature: msg.Signature, CreatedAt: msg.CreatedAt, Payload: msg.Payload,
	}}, nil
}

// committedMemberStatus is a member's status in the committed state.
func committedMemberStatus(st *node.State, id string) string {
	raw, ok := st.GetCommitted(tables.MembersInfoMap, []byte(id))
	if !ok {
		return ""
	}
	var info tables.MemberInfo
	if json.Unmarshal(raw, &info) != nil {
		return ""
	}
	return info.Status
}

func parseMemberCert(certPEM []byte) (*x509.Certificate, error) {
	for rest := certPEM; ; {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			return nil, errors.New("no PEM certificate")
		}
		if b.Type == "CERTIFICATE" {
			return x509.ParseCertificate(b.Bytes)
		}
	}
}

// govExec runs one governance decision through the node's executor:
// decide returns the engine's outcome, whose writes are the transaction.
// It answers once the transaction is executed (wait UntilExecuted: a
// proposal's creation or withdrawal, as CCF answers every governance
// write; the next governance request sees it) or committed (UntilCommitted:
// a ballot, which may apply the proposal, and a member's state digest and
// ack, because members, users and JWT issuers are authenticated against
// what they wrote from the next request on, and members against the
// committed state).
func (s *Server) govExec(ctx context.Context, wait node.Wait, decide func(st *node.State) (*gov.Outcome, error)) (*gov.Outcome, node.TxID, error) {
	var out *gov.Outcome
	var decided error
	txid, err := s.node.Exec(ctx, wait, func(st *node.State) ([]ledger.MapWrites, error) {
		o, err := decide(st)
		if err != nil {
			decided = err
			return nil, err
		}
		out = o
		if len(o.Writes) == 0 {
			return nil, nil
		}
		return o.Writes, nil
	})
	switch {
	case err != nil && err == decided:
		return nil, node.TxID{}, err
	case err != nil:
		return nil, node.TxID{}, fmt.Errorf("governance transaction %s: %w", txid, err)
	}
	return out, txid, nil
}

// govProposal is CCF's Proposal in the 2024-07-01 API.
type govProposal struct {
	ProposalID    string                            `json:"proposalId"`
	ProposerID    string                            `json:"proposerId"`
	ProposalState string                            `json:"proposalState"`
	BallotCount   int                               `json:"ballotCount"`
	FinalVotes    map[string]bool                   `json:"finalVotes,omitempty"`
	VoteFailures  map[string]tables.ProposalFailure `json:"voteFailures,omitempty"`
	Failure       *tables.ProposalFailure           `json:"failure,omitempty"`
}

func proposalOf(id string, info *tables.ProposalInfo) govProposal {
	p := govProposal{ProposalID: id, ProposerID: info.ProposerID, ProposalState: info.State,
		BallotCount: len(info.Ballots), FinalVotes: info.FinalVotes, VoteFailures: info.VoteFailures, Failure: info.Failure}
	if info.State != tables.ProposalOpen && p.FinalVotes == nil && info.FinalVotes != nil {
		p.FinalVotes = map[string]bool{}
	}
	return p
}

func (c *call) replyGov(id node.TxID, body any) error {
	if id == (node.TxID{}) {
		id = c.served
	}
	return c.reply(http.StatusOK, id, body)
}

// createProposal serves POST /gov/members/proposals:create.
func (s *Server) createProposal(c *call, sg *signed) error {
	out, txid, err := s.govExec(c.r.Context(), node.UntilExecuted, func(st *node.State) (*gov.Outcome, error) {
		root, err := s.reads.StateRoot()
		if err != nil {
			return nil, err
		}
		return s.gov.Propose(judging(c), st, sg.req, root)
	})
	if err != nil {
		return err
	}
	s.log.Info("proposal created", "proposal_id", out.ProposalID, "member_id", sg.req.MemberID,
		"state", out.Info.State, "transaction_id", txid.String())
	return c.replyGov(txid, proposalOf(out.ProposalID, out.Info))
}

// proposalIDParam checks a proposal id path parameter (64 hex characters,
// as CCF's ids are).
func proposalIDParam(s string) (string, error) {
	return parseHexID(s, "proposal")
}

// postProposal serves POST /gov/members/proposals/{proposalId}:withdraw
// (the mux cannot match a suffix inside a segment).
func (s *Server) postProposal(c *call) error {
	raw, ok := strings.CutSuffix(c.r.PathValue("proposalId"), ":withdraw")
	if !ok {
		return newError(http.StatusNotFound, codeResourceNotFound, "No such resource: %s.", clip(c.r.URL.Path))
	}
	id, err := proposalIDParam(raw)
	if err != nil {
		return err
	}
	return govSigned(cose.MsgWithdrawal, func(s *Server, c *call, sg *signed) error {
		if err := sg.msg.CheckProposalID(id); err != nil {
			return unauthenticated("Authenticated proposal id %q does not match the URL's %s.", clip(sg.msg.ProposalID), id)
		}
		out, txid, err := s.govExec(c.r.Context(), node.UntilExecuted, func(st *node.State) (*gov.Outcome, error) {
			return s.gov.Withdraw(st, sg.req, id)
		})
		if err != nil {
			return err
		}
		if out.Info == nil {
			return c.noContent(c.served)
		}
		s.log.Info("proposal withdrawn", "proposal_id", id, "member_id", sg.req.MemberID, "transaction_id", txid.String())
		return c.replyGov(txid, proposalOf(id, out.Info))
	})(s, c)
}

// postBallot serves POST /gov/members/proposals/{proposalId}/ballots/{memberId}:submit.
func (s *Server) postBallot(c *call) error {
	raw, ok := strings.CutSuffix(c.r.PathValue("memberId"), ":submit")
	if !ok {
		return newError(http.StatusNotFound, codeResourceNotFound, "No such resource: %s.", clip(c.r.URL.Path))
	}
	pid, err := proposalIDParam(c.r.PathValue("proposalId"))
	if err != nil {
		return err
	}
	mid, err := parseHexID(raw, "member")
	if err != nil {
		return err
	}
	return govSigned(cose.MsgBallot, func(s *Server, c *call, sg *signed) error {
		if err := sg.msg.CheckProposalID(pid); err != nil {
			return unauthenticated("Authenticated proposal id %q does not match the URL's %s.", clip(sg.msg.ProposalID), pid)
		}
		if err := sg.msg.CheckMemberID(mid); err != nil {
			return unauthenticated("Authenticated member id %s does not match the URL's %s.", sg.req.MemberID, mid)
		}
		out, txid, err := s.govExec(c.r.Context(), node.UntilCommitted, func(st *node.State) (*gov.Outcome, error) {
			return s.gov.Ballot(judging(c), st, sg.req, pid)
		})
		if err != nil {
			return err
		}
		s.log.Info("ballot submitted", "proposal_id", pid, "member_id", mid, "state", out.Info.State, "transaction_id", txid.String())
		return c.replyGov(txid, proposalOf(pid, out.Info))
	})(s, c)
}

// listProposals serves GET /gov/members/proposals.
func (s *Server) listProposals(c *call) error {
	st := s.reads.State()
	value := []govProposal{}
	var err error
	st.Range(tables.ProposalsInfoMap, func(k, _ []byte) bool {
		var info *tables.ProposalInfo
		if info, _, err = gov.ProposalInfoOf(st, string(k)); err != nil {
			return false
		}
		value = append(value, proposalOf(string(k), info))
		return true
	})
	if err != nil {
		return err
	}
	return c.ok(struct {
		Value []govProposal `json:"value"`
	}{value})
}

func (s *Server) proposalInfo(c *call) (string, *tables.ProposalInfo, error) {
	id, err := proposalIDParam(c.r.PathValue("proposalId"))
	if err != nil {
		return "", nil, err
	}
	info, ok, err := gov.ProposalInfoOf(s.reads.State(), id)
	if err != nil {
		return "", nil, err
	}
	if !ok {
		return "", nil, newError(http.StatusNotFound, gov.CodeProposalNotFound, "Could not find proposal %s.", id)
	}
	return id, info, nil
}

// getProposal serves GET /gov/members/proposals/{proposalId}.
func (s *Server) getProposal(c *call) error {
	id, info, err := s.proposalInfo(c)
	if err != nil {
		return err
	}
	return c.ok(proposalOf(id, info))
}

// getProposalActions serves GET /gov/members/proposals/{proposalId}/actions:
// the proposal body as submitted.
func (s *Server) getProposalActions(c *call) error {
	id, err := proposalIDParam(c.r.PathValue("proposalId"))
	if err != nil {
		return err
	}
	body, ok := s.reads.State().Get(tables.ProposalsMap, []byte(id))
	if !ok {
		return newError(http.StatusNotFound, gov.CodeProposalNotFound, "Could not find proposal %s.", id)
	}
	return c.replyJSON(http.StatusOK, c.served, body)
}

// getBallot serves GET /gov/members/proposals/{proposalId}/ballots/{memberId}:
// the ballot's JavaScript.
func (s *Server) getBallot(c *call) error {
	id, info, err := s.proposalInfo(c)
	if err != nil {
		return err
	}
	mid, err := parseHexID(c.r.PathValue("memberId"), "member")
	if err != nil {
		return err
	}
	ballot, ok := info.Ballots[strings.ToLower(mid)]
	if !ok {
		return newError(http.StatusNotFound, gov.CodeVoteNotFound, "Member %s has not voted for proposal %s.", mid, id)
	}
	return c.text("text/javascript", []byte(ballot))
}

// text answers 200 with a body of the given media type.
func (c *call) text(mediaType string, body []byte) error {
	h := c.w.Header()
	h.Set("Content-Type", mediaType)
	h.Set(txIDHeader, c.served.String())
	c.w.WriteHeader(http.StatusOK)
	c.w.Write(body) // an error means the client has gone
	return nil
}

type govStateDigest struct {
	MemberID    string `json:"memberId"`
	StateDigest string `json:"stateDigest"`
}

// getStateDigest serves GET /gov/members/state-digests/{memberId}.
func (s *Server) getStateDigest(c *call) error {
	mid, err := parseHexID(c.r.PathValue("memberId"), "member")
	if err != nil {
		return err
	}
	mid = strings.ToLower(mid)
	d, ok := gov.StateDigest(s.reads.State(), mid)
	if !ok {
		return newError(http.StatusNotFound, codeResourceNotFound, "No state digest found for member %s.", mid)
	}
	return c.ok(govStateDigest{MemberID: mid, StateDigest: d})
}

// postStateDigest serves POST /gov/members/state-digests/{memberId}:update
// and :ack.
func (s *Server) postStateDigest(c *call) error {
	raw := c.r.PathValue("memberId")
	var msgType string
	switch {
	case strings.HasSuffix(raw, ":update"):
		msgType, raw = cose.MsgStateDigest, strings.TrimSuffix(raw, ":update")
	case strings.HasSuffix(raw, ":ack"):
		msgType, raw = cose.MsgAck, strings.TrimSuffix(raw, ":ack")
	default:
		return newError(http.StatusNotFound, codeResourceNotFound, "No such resource: %s.", clip(c.r.URL.Path))
	}
	mid, err := parseHexID(raw, "member")
	if err != nil {
		return err
	}
	return govSigned(msgType, func(s *Server, c *call, sg *signed) error {
		if err := sg.msg.CheckMemberID(mid); err != nil {
			return unauthenticated("Authenticated member id %s does not match the URL's %s.", sg.req.MemberID, mid)
		}
		if msgType == cose.MsgStateDigest {
			var digest string
			_, txid, err := s.govExec(c.r.Context(), node.UntilCommitted, func(st *node.State) (*gov.Outcome, error) {
				root, err := s.reads.StateRoot()
				if err != nil {
					return nil, err
				}
				var out *gov.Outcome
				out, digest = s.gov.UpdateStateDigest(st, sg.req, root)
				return out, nil
			})
			if err != nil {
				return err
			}
			return c.replyGov(txid, govStateDigest{MemberID: mid, StateDigest: digest})
		}
		_, txid, err := s.govExec(c.r.Context(), node.UntilCommitted, func(st *node.State) (*gov.Outcome, error) {
			return s.gov.Ack(st, sg.req)
		})
		if err != nil {
			return err
		}
		s.log.Info("state digest acknowledged", "member_id", mid, "transaction_id", txid.String())
		return c.noContent(txid)
	})(s, c)
}

// govErrorOf maps an engine refusal to the API's error.
func govErrorOf(ge *gov.Error) *apiError {
	return &apiError{status: ge.Status, code: ge.Code, message: ge.Message}
}

// judging is the context of the constitution's calls for a request: not
// cancelled when the client goes away (the limits bound every call), so that
// a disconnect can never turn into a Failed proposal in the ledger.
func judging(c *call) context.Context { return context.WithoutCancel(c.r.Context()) }
