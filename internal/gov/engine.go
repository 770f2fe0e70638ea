package gov

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"sort"
	"strings"
	"sync"

	"github.com/ledgerd/ledgerd/internal/constitution"
	"github.com/ledgerd/ledgerd/internal/cose"
	"github.com/ledgerd/ledgerd/internal/ledger"
	"github.com/ledgerd/ledgerd/internal/tables"
)

// Error is a governance request refused, with CCF's HTTP status and error
// code. The engine refuses before it writes anything.
type Error struct {
	Status  int
	Code    string
	Message string
}

func (e *Error) Error() string { return e.Code + ": " + e.Message }

func refuse(status int, code, format string, args ...any) *Error {
	return &Error{Status: status, Code: code, Message: fmt.Sprintf(format, args...)}
}

// CCF's governance error codes (CCF include/ccf/odata_error.h).
const (
	CodeInvalidInput              = "InvalidInput"
	CodeInternalError             = "InternalError"
	CodeProposalNotFound          = "ProposalNotFound"
	CodeProposalNotOpen           = "ProposalNotOpen"
	CodeProposalFailedToValidate  = "ProposalFailedToValidate"
	CodeProposalReplay            = "ProposalReplay"
	CodeProposalCreatedTooLongAgo = "ProposalCreatedTooLongAgo"
	CodeVoteAlreadyExists         = "VoteAlreadyExists"
	CodeVoteNotFound              = "VoteNotFound"
	CodeAuthorizationFailed       = "AuthorizationFailed"
	CodeStateDigestMismatch       = "StateDigestMismatch"
	CodeResourceNotFound          = "ResourceNotFound"
)

// DefaultRecentProposalsWindow is CCF's default
// recent_cose_proposals_window_size.
const DefaultRecentProposalsWindow = 100

// EffectFunc carries out one effect an apply asked of the node
// (constitution.Effect: "node.triggerLedgerRekey",
// "setJwtPublicSigningKeys", ...): it returns the writes that do it, in
// the proposal's transaction. st is the state as apply left it.
type EffectFunc func(st State, args []any) ([]ledger.MapWrites, error)

// Effect names that the engine itself calls outside apply.
const (
	// EffectRecoverySharesRefresh is asked after a recovery member's ack.
	EffectRecoverySharesRefresh = "node.triggerRecoverySharesRefresh"
)

// Engine runs CCF's governance protocol over a State: proposals, ballots,
// withdrawals and state-digest acks, judged by the JavaScript constitution
// stored in the state. Its methods are pure functions of the state and the
// request: they return the writes of one transaction (to submit through
// node.Exec, which makes the read and the write atomic) or an *Error,
// having written nothing. The caller has authenticated the request (the
// COSE signature against the member's committed certificate).
type Engine struct {
	// Limits bound every constitution and ballot call.
	Limits constitution.Limits
	// Effects carries out apply's effects; an effect without a function
	// fails the proposal.
	Effects map[string]EffectFunc
	// Host is what apply reaches through ccf.network.* (nil: those throw).
	Host constitution.Host

	mu      sync.Mutex
	loaded  *constitution.Constitution
	loadSrc string
}

// Request is an authenticated governance request.
type Request struct {
	// MemberID is the signer, whose signature has been verified.
	MemberID string
	// Envelope is the COSE_Sign1 message as received (kept in
	// tables.HistoryMap).
	Envelope []byte
	// Signature is the envelope's signature (the proposal id and the replay
	// key are derived from its digest, as in CCF).
	Signature []byte
	// CreatedAt is the envelope's ccf.gov.msg.created_at.
	CreatedAt uint64
	// Payload is the signed content.
	Payload []byte
}

// Outcome is what a governance request decided: the writes of its
// transaction (nil: nothing to write) and, for proposal requests, the
// proposal as it now stands.
type Outcome struct {
	Writes     []ledger.MapWrites
	ProposalID string
	Info       *tables.ProposalInfo
}

// constitutionOf loads the constitution stored in st, reusing the last one
// loaded when its text is unchanged.
func (e *Engine) constitutionOf(st State) (*constitution.Constitution, error) {
	src, ok := Constitution(st)
	if !ok {
		return nil, refuse(http.StatusInternalServerError, CodeInternalError,
			"No constitution is set - proposals cannot be evaluated")
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.loaded != nil && e.loadSrc == src {
		return e.loaded, nil
	}
	c, err := constitution.Load(src, e.Limits)
	if err != nil {
		return nil, refuse(http.StatusInternalServerError, CodeInternalError, "The constitution does not load: %v", err)
	}
	if e.Host != nil {
		c = c.WithHost(e.Host)
	}
	e.loaded, e.loadSrc = c, src
	return c, nil
}

// Propose creates a proposal (POST /gov/members/proposals:create): checks
// its shape, runs the constitution's validate, records it Open with the
// signed request in the history, checks CCF's replay window, and resolves
// it at once (a constitution may accept a proposal without votes). root is
// the Merkle root of the state the request was decided on.
func (e *Engine) Propose(ctx context.Context, st State, req Request, root [sha256.Size]byte) (*Outcome, error) {
	if _, err := DecodeProposal(req.Payload); err != nil {
		return nil, refuse(http.StatusBadRequest, CodeInvalidInput, "%v", err)
	}
	c, err := e.constitutionOf(st)
	if err != nil {
		return nil, err
	}
	id := cose.ProposalID(root, req.Signature)
	v, err := c.Validate(ctx, req.Payload)
	if err != nil {
		return nil, refuse(http.StatusInternalServerError, CodeInternalError, "Failed to execute validation: %s", scriptReason(err))
	}
	if !v.Valid {
		return nil, refuse(http.StatusBadRequest, CodeProposalFailedToValidate, "Proposal failed to validate: %s", v.Description)
	}
	tx := constitution.NewTx(KVOf(st))
	// The replay window first. The root is the Merkle tree's, which holds a
	// transaction only once it is persisted, so a request replayed right
	// after its first copy was executed can be read at the same root and
	// get the same id. CCF reads the root at the read version of its
	// transaction, so there the replay conflicts with the first copy, is
	// re-executed at a newer root and answered ProposalReplay; answering
	// it here before the collision check gives the same answer. A
	// collision left after it is a hash collision (another signature).
	if err := checkRecentWindow(tx, req, id); err != nil {
		return nil, err
	}
	if _, ok := tx.Get(tables.ProposalsMap, []byte(id)); ok {
		return nil, refuse(http.StatusInternalServerError, CodeInternalError, "Proposal ID collision.")
	}
	tx.Set(tables.ProposalsMap, []byte(id), req.Payload)
	info := &tables.ProposalInfo{ProposerID: req.MemberID, State: tables.ProposalOpen, Ballots: map[string]string{}}
	putInfo(tx, id, info)
	tx.Set(tables.HistoryMap, []byte(req.MemberID), req.Envelope)
	e.resolve(ctx, c, tx, id, req.Payload, info)
	return &Outcome{Writes: TxWrites(tx), ProposalID: id, Info: info}, nil
}

// checkRecentWindow is CCF's replay protection for proposals
// (validate_proposal_submission_time): a request whose created_at and
// signature digest are already in the window is a replay; one created
// before the median of the window is too old; otherwise it joins the
// window, which keeps the newest recent_cose_proposals_window_size.
func checkRecentWindow(tx *constitution.Tx, req Request, id string) error {
	key, err := cose.CreatedAtKey(req.CreatedAt, cose.RequestDigest(req.Signature))
	if err != nil {
		return refuse(http.StatusBadRequest, "InvalidCreatedAt", "Header parameter created_at value is too large")
	}
	if prev, ok := tx.Get(tables.RecentProposalsMap, []byte(key)); ok {
		return refuse(http.StatusBadRequest, CodeProposalReplay,
			"Proposal submission replay, already exists as proposal %s", prev)
	}
	var keys []string
	tx.ForEach(tables.RecentProposalsMap, func(k, _ []byte) bool {
		keys = append(keys, string(k))
		return true
	})
	sort.Strings(keys)
	if len(keys) > 0 {
		minTS, _, _ := strings.Cut(keys[len(keys)/2], ":")
		ts, _, _ := strings.Cut(key, ":")
		if ts < minTS {
			return refuse(http.StatusBadRequest, CodeProposalCreatedTooLongAgo,
				"Proposal created too long ago, created_at must be greater than %s", minTS)
		}
	}
	window := DefaultRecentProposalsWindow
	if raw, ok := tx.Get(tables.ServiceConfigMap, tables.SingletonKey); ok {
		var cfg struct {
			Window *int `json:"recent_cose_proposals_window_size"`
		}
		if json.Unmarshal(raw, &cfg) == nil && cfg.Window != nil && *cfg.Window > 0 {
			window = *cfg.Window
		}
	}
	tx.Set(tables.RecentProposalsMap, []byte(key), []byte(id))
	for i := 0; i < len(keys)-(window-1); i++ {
		tx.Delete(tables.RecentProposalsMap, []byte(keys[i]))
	}
	return nil
}

// Ballot submits a member's ballot (POST .../ballots/{memberId}:submit):
// payload {"ballot": "<JavaScript exporting vote>"}. As in CCF, the same
// ballot again changes nothing and answers as before; a different one is
// refused. Every ballot of the proposal is then re-run and the proposal
// resolved.
func (e *Engine) Ballot(ctx context.Context, st State, req Request, proposalID string) (*Outcome, error) {
	info, body, err := openProposal(st, proposalID, "can receive votes")
	if err != nil {
		return nil, err
	}
	var params struct {
		Ballot *string `json:"ballot"`
	}
	if json.Unmarshal(req.Payload, &params) != nil || params.Ballot == nil {
		return nil, refuse(http.StatusBadRequest, CodeInvalidInput,
			`Signed request body is not a JSON object containing required string field "ballot"`)
	}
	c, err := e.constitutionOf(st)
	if err != nil {
		return nil, err
	}
	if prev, ok := info.Ballots[req.MemberID]; ok {
		if prev == *params.Ballot {
			return &Outcome{ProposalID: proposalID, Info: info}, nil
		}
		return nil, refuse(http.StatusBadRequest, CodeVoteAlreadyExists,
			"Different ballot already submitted by %s for %s.", req.MemberID, proposalID)
	}
	if info.Ballots == nil {
		info.Ballots = map[string]string{}
	}
	info.Ballots[req.MemberID] = *params.Ballot
	tx := constitution.NewTx(KVOf(st))
	tx.Set(tables.HistoryMap, []byte(req.MemberID), req.Envelope)
	e.resolve(ctx, c, tx, proposalID, body, info)
	return &Outcome{Writes: TxWrites(tx), ProposalID: proposalID, Info: info}, nil
}

// Withdraw withdraws an Open proposal (POST .../{proposalId}:withdraw); only
// its proposer may. As in CCF, withdrawing an unknown proposal answers with
// no content (Outcome.Info nil), and withdrawing a Withdrawn one changes
// nothing.
func (e *Engine) Withdraw(st State, req Request, proposalID string) (*Outcome, error) {
	info, ok, err := ProposalInfoOf(st, proposalID)
	if err != nil {
		return nil, err
	}
	if !ok {
		return &Outcome{ProposalID: proposalID}, nil
	}
	if info.ProposerID != req.MemberID {
		return nil, refuse(http.StatusForbidden, CodeAuthorizationFailed,
			"Proposal %s can only be withdrawn by proposer %s, not caller %s.", proposalID, info.ProposerID, req.MemberID)
	}
	switch info.State {
	case tables.ProposalWithdrawn:
		return &Outcome{ProposalID: proposalID, Info: info}, nil
	case tables.ProposalOpen:
	default:
		return nil, refuse(http.StatusBadRequest, CodeProposalNotOpen,
			"Proposal %s is currently in state %s and cannot be withdrawn.", proposalID, info.State)
	}
	info.State = tables.ProposalWithdrawn
	tx := constitution.NewTx(KVOf(st))
	putInfo(tx, proposalID, info)
	removeOtherClosedProposals(tx, proposalID)
	tx.Set(tables.HistoryMap, []byte(req.MemberID), req.Envelope)
	return &Outcome{Writes: TxWrites(tx), ProposalID: proposalID, Info: info}, nil
}

// UpdateStateDigest records, for the member, the digest of the state to
// acknowledge (POST /gov/members/state-digests/{memberId}:update): the
// hex Merkle root the request was decided on, as CCF.
func (e *Engine) UpdateStateDigest(st State, req Request, root [sha256.Size]byte) (*Outcome, string) {
	digest := fmt.Sprintf("%x", root[:])
	tx := constitution.NewTx(KVOf(st))
	tx.Set(tables.MemberAcksMap, []byte(req.MemberID), tables.Value(tables.MemberAck{StateDigest: digest}))
	tx.Set(tables.HistoryMap, []byte(req.MemberID), req.Envelope)
	return &Outcome{Writes: TxWrites(tx)}, digest
}

// StateDigest returns the digest the member is to acknowledge, if any.
func StateDigest(st State, memberID string) (string, bool) {
	raw, ok := st.Get(tables.MemberAcksMap, []byte(memberID))
	if !ok {
		return "", false
	}
	var ack tables.MemberAck
	if json.Unmarshal(raw, &ack) != nil {
		return "", false
	}
	return ack.StateDigest, true
}

// Ack acknowledges the member's state digest (POST
// /gov/members/state-digests/{memberId}:ack, payload {"stateDigest":
// "<hex>"}): the digest must be the one last recorded by :update. An
// Accepted member becomes Active; an Active recovery member of an Open
// service gets the recovery shares refreshed, as in CCF.
func (e *Engine) Ack(st State, req Request) (*Outcome, error) {
	var params struct {
		StateDigest *string `json:"stateDigest"`
	}
	if json.Unmarshal(req.Payload, &params) != nil || params.StateDigest == nil {
		return nil, refuse(http.StatusBadRequest, CodeInvalidInput,
			`Signed request body is not a JSON object containing required string field "stateDigest"`)
	}
	want, ok := StateDigest(st, req.MemberID)
	if !ok || want == "" {
		return nil, refuse(http.StatusNotFound, CodeResourceNotFound,
			"No state digest found for member %s: request one with :update first.", req.MemberID)
	}
	if *params.StateDigest != want {
		return nil, refuse(http.StatusBadRequest, CodeStateDigestMismatch,
			"Submitted state digest is not valid: expected %s, got %s.", want, *params.StateDigest)
	}
	tx := constitution.NewTx(KVOf(st))
	tx.Set(tables.HistoryMap, []byte(req.MemberID), req.Envelope)
	if MemberStatus(st, req.MemberID) == MemberAccepted {
		tx.Set(tables.MembersInfoMap, []byte(req.MemberID), setStatus(st, req.MemberID, MemberActive))
		if _, recovery := st.Get(tables.MembersEncryptionKeysMap, []byte(req.MemberID)); recovery && serviceOpen(st) {
			if f := e.Effects[EffectRecoverySharesRefresh]; f != nil {
				ws, err := f(StateOf(tx), nil)
				if err != nil {
					return nil, refuse(http.StatusInternalServerError, CodeInternalError, "Refreshing the recovery shares failed: %v", err)
				}
				ApplyWrites(tx, ws)
			}
		}
	}
	return &Outcome{Writes: TxWrites(tx)}, nil
}

// setStatus returns the member's info with its status changed, keeping
// any other field (member_data...).
func setStatus(st State, id, status string) []byte {
	info := map[string]any{}
	if raw, ok := st.Get(tables.MembersInfoMap, []byte(id)); ok {
		_ = json.Unmarshal(raw, &info)
	}
	info["status"] = status
	b, _ := json.Marshal(info)
	return b
}

func serviceOpen(st State) bool {
	raw, ok := st.Get(tables.ServiceInfoMap, tables.SingletonKey)
	if !ok {
		return false
	}
	var info tables.ServiceInfo
	return json.Unmarshal(raw, &info) == nil && info.Status == tables.ServiceOpen
}

// MemberStatus returns the member's status ("" for no such member).
func MemberStatus(st State, id string) string {
	raw, ok := st.Get(tables.MembersInfoMap, []byte(id))
	if !ok {
		return ""
	}
	var info tables.MemberInfo
	if json.Unmarshal(raw, &info) != nil {
		return ""
	}
	return info.Status
}

// openProposal returns an Open proposal's info and body, or CCF's refusal.
func openProposal(st State, id, what string) (*tables.ProposalInfo, []byte, error) {
	info, ok, err := ProposalInfoOf(st, id)
	if err != nil {
		return nil, nil, err
	}
	body, hasBody := st.Get(tables.ProposalsMap, []byte(id))
	if !ok || !hasBody {
		return nil, nil, refuse(http.StatusNotFound, CodeProposalNotFound, "Could not find proposal %s.", id)
	}
	if info.State != tables.ProposalOpen {
		return nil, nil, refuse(http.StatusBadRequest, CodeProposalNotOpen,
			"Proposal %s is currently in state %s - only Open proposals %s", id, info.State, what)
	}
	return info, body, nil
}

// ProposalInfoOf reads a proposal's info.
func ProposalInfoOf(st State, id string) (*tables.ProposalInfo, bool, error) {
	raw, ok := st.Get(tables.ProposalsInfoMap, []byte(id))
	if !ok {
		return nil, false, nil
	}
	var info tables.ProposalInfo
	if err := json.Unmarshal(raw, &info); err != nil {
		return nil, false, fmt.Errorf("gov: proposal %s: %w", id, err)
	}
	return &info, true, nil
}

func putInfo(tx *constitution.Tx, id string, info *tables.ProposalInfo) {
	tx.Set(tables.ProposalsInfoMap, []byte(id), tables.Value(info))
}

// removeOtherClosedProposals removes every proposal but id that is no
// longer Open, as CCF does whenever a proposal leaves Open (the ledger
// keeps them).
func removeOtherClosedProposals(tx *constitution.Tx, id string) {
	var drop []string
	tx.ForEach(tables.ProposalsInfoMap, func(k, v []byte) bool {
		var info tables.ProposalInfo
		if string(k) != id && json.Unmarshal(v, &info) == nil && info.State != tables.ProposalOpen {
			drop = append(drop, string(k))
		}
		return true
	})
	for _, k := range drop {
		tx.Delete(tables.ProposalsMap, []byte(k))
		tx.Delete(tables.ProposalsInfoMap, []byte(k))
	}
}

// resolve re-runs every ballot, asks the constitution's resolve for the
// proposal's state and, once it is Accepted, applies it and carries out
// its effects, all in tx (CCF's resolve_proposal). A ballot that fails is
// recorded in vote_failures and counts as no vote. A resolve, apply or
// effect that fails leaves the proposal Failed with the reason, and none
// of apply's writes in tx. (CCF answers a failure of apply with a 500 and
// discards the transaction; ledgerd records the Failed proposal, so that
// the failure is in the ledger and the proposal is no longer Open.)
func (e *Engine) resolve(ctx context.Context, c *constitution.Constitution, tx *constitution.Tx, id string, body []byte, info *tables.ProposalInfo) {
	members := make([]string, 0, len(info.Ballots))
	for m := range info.Ballots {
		members = append(members, m)
	}
	sort.Strings(members)
	var votes []constitution.Vote
	failures := map[string]tables.ProposalFailure{}
	for _, m := range members {
		yes, err := constitution.RunBallot(ctx, e.Limits, tx, info.Ballots[m], body, info.ProposerID)
		if err != nil {
			failures[m] = tables.ProposalFailure{Reason: scriptReason(err)}
			continue
		}
		votes = append(votes, constitution.Vote{MemberID: m, Vote: yes})
	}
	state, err := c.Resolve(ctx, tx, body, info.ProposerID, votes)
	if err != nil {
		e.fail(tx, id, info, "Failed to resolve(): "+scriptReason(err))
		return
	}
	info.State = string(state)
	if state == constitution.Open {
		putInfo(tx, id, info)
		return
	}
	removeOtherClosedProposals(tx, id)
	info.FinalVotes = map[string]bool{}
	for _, v := range votes {
		info.FinalVotes[v.MemberID] = v.Vote
	}
	if len(failures) > 0 {
		info.VoteFailures = failures
	}
	putInfo(tx, id, info)
	if state != constitution.Accepted {
		return
	}
	applied := constitution.NewTx(tx)
	effects, err := c.Apply(ctx, applied, body, id)
	if err != nil {
		e.fail(tx, id, info, "Failed to apply(): "+scriptReason(err))
		return
	}
	for _, ef := range effects {
		f := e.Effects[ef.Name]
		if f == nil {
			e.fail(tx, id, info, fmt.Sprintf("Failed to apply(): ccf.%s is not supported by ledgerd", ef.Name))
			return
		}
		ws, err := f(StateOf(applied), ef.Args)
		if err != nil {
			e.fail(tx, id, info, fmt.Sprintf("Failed to apply(): ccf.%s: %v", ef.Name, err))
			return
		}
		ApplyWrites(applied, ws)
	}
	applied.Commit()
}

func (e *Engine) fail(tx *constitution.Tx, id string, info *tables.ProposalInfo, reason string) {
	info.State = tables.ProposalFailed
	info.Failure = &tables.ProposalFailure{Reason: reason}
	putInfo(tx, id, info)
}

// scriptReason is the reason a constitution or ballot call failed, as a
// member reads it.
func scriptReason(err error) string {
	var se *constitution.ScriptError
	switch {
	case errors.As(err, &se):
		return se.Message
	case errors.Is(err, constitution.ErrTimeLimit):
		return "Operation took too long to complete."
	}
	return err.Error()
}
