package client

import (
	"bytes"
	"context"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"mime"
	"net/http"
	"net/url"
)

// GovAPIVersion is the version of CCF's governance API that the governance
// operations speak (/gov/..., whatever Options.APIVersion says).
const GovAPIVersion = "2024-07-01"

const mediaCOSE = "application/cose"

// ErrNoMemberSigner is the error of a governance write on a client without
// a member signer (see Options.MemberSigner).
var ErrNoMemberSigner = errors.New("no member signer: governance writes are signed with a member's certificate and ECDSA key (Options.MemberSigner, or a CertificateFile credential holding them)")

// Proposal states (CCF's ProposalState).
const (
	ProposalOpen      = "Open"
	ProposalAccepted  = "Accepted"
	ProposalWithdrawn = "Withdrawn"
	ProposalRejected  = "Rejected"
	ProposalFailed    = "Failed"
	ProposalDropped   = "Dropped"
)

// Ballots of SubmitBallot: a ballot is a JavaScript module exporting
// vote(proposal, proposerId), which returns true to vote for the proposal.
const (
	// BallotYes votes for the proposal.
	BallotYes = "export function vote (proposal, proposerId) { return true; }"
	// BallotNo votes against it.
	BallotNo = "export function vote (proposal, proposerId) { return false; }"
)

// Action is one action of a proposal: the name of an action of the
// constitution (such as "set_user") and its arguments.
type Action struct {
	Name string `json:"name"`
	// Args is encoded as JSON (a json.RawMessage is sent as it is); nil is
	// sent as {}.
	Args any `json:"args"`
}

// ProposalFailure says why a proposal, or a member's ballot, failed.
type ProposalFailure struct {
	Reason string `json:"reason"`
	Trace  string `json:"trace,omitempty"`
}

// Proposal is the state of a proposal (CCF's ProposalInfo).
type Proposal struct {
	// ProposalID is the hex proposal id the service assigned.
	ProposalID string `json:"proposalId"`
	// ProposerID is the member id of the proposer.
	ProposerID string `json:"proposerId"`
	// State is ProposalOpen, ProposalAccepted, ...
	State string `json:"proposalState"`
	// BallotCount is the number of ballots submitted.
	BallotCount int `json:"ballotCount"`
	// FinalVotes are the votes (member id: for) that decided a proposal
	// that is no longer Open.
	FinalVotes map[string]bool `json:"finalVotes,omitempty"`
	// VoteFailures are the ballots that failed to run, by member id.
	VoteFailures map[string]ProposalFailure `json:"voteFailures,omitempty"`
	// Failure says why a Failed proposal failed.
	Failure *ProposalFailure `json:"failure,omitempty"`
}

// StateDigest is a member's state digest: what it acks to become Active.
type StateDigest struct {
	MemberID    string `json:"memberId"`
	StateDigest string `json:"stateDigest"`
}

// Member is a consortium member as the governance API describes it.
type Member struct {
	MemberID string `json:"memberId"`
	// Status is "Accepted" (not yet acked) or "Active".
	Status string `json:"status"`
	// MemberData is the member's data, as set_member_data set it.
	MemberData json.RawMessage `json:"memberData,omitempty"`
	// Certificate is the member's PEM certificate.
	Certificate string `json:"certificate"`
	// PublicEncryptionKey is the PEM key of a recovery member.
	PublicEncryptionKey string `json:"publicEncryptionKey,omitempty"`
}

// ServiceInfo is the service's state (GET /gov/service/info).
type ServiceInfo struct {
	// Status is "Opening", "Open", "WaitingForRecoveryShares" or
	// "Recovering".
	Status string `json:"status"`
	// Certificate is the PEM service certificate.
	Certificate           string          `json:"certificate"`
	RecoveryCount         int             `json:"recoveryCount"`
	CreationTransactionID string          `json:"creationTransactionId,omitempty"`
	ServiceData           json.RawMessage `json:"serviceData,omitempty"`
	Configuration         json.RawMessage `json:"configuration,omitempty"`
}

// MemberSigner returns the client's member signer, nil if it has none.
func (c *Client) MemberSigner() *MemberSigner { return c.member }

// govRequest is a request of the governance API.
func govRequest(method, path string) *request {
	return &request{method: method, path: path, apiVersion: GovAPIVersion}
}

// signed returns a governance POST carrying a COSE_Sign1 envelope of
// payload.
func (c *Client) signed(path, msgType, proposalID string, payload []byte) (*request, error) {
	if c.member == nil {
		return nil, ErrNoMemberSigner
	}
	env, err := c.member.Sign(msgType, proposalID, payload)
	if err != nil {
		return nil, err
	}
	rq := govRequest(http.MethodPost, path)
	rq.body, rq.contentType = env, mediaCOSE
	return rq, nil
}

// govID checks an id of a governance path (a proposal or member id) and
// escapes it as a path segment.
func govID(what, id string) (string, error) {
	if id == "" {
		return "", fmt.Errorf("empty %s", what)
	}
	return url.PathEscape(id), nil
}

func proposalPath(id string) (string, error) {
	esc, err := govID("proposal id", id)
	if err != nil {
		return "", err
	}
	return "/gov/members/proposals/" + esc, nil
}

func decodeProposal(resp *response) (Proposal, error) {
	var p Proposal
	if err := resp.decode(&p); err != nil {
		return Proposal{}, err
	}
	if p.ProposalID == "" || p.State == "" {
		return Proposal{}, errors.New("the service's proposal answer has no proposalId or proposalState")
	}
	return p, nil
}

// CreateProposal proposes actions to the consortium: POST
// /gov/members/proposals:create, signed as the member. The answer is the
// new proposal, already Accepted (and applied) if the proposer's vote alone
// is enough under the constitution.
func (c *Client) CreateProposal(ctx context.Context, actions ...Action) (Proposal, error) {
	if len(actions) == 0 {
		return Proposal{}, errors.New("a proposal needs at least one action")
	}
	body := struct {
		Actions []Action `json:"actions"`
	}{make([]Action, len(actions))}
	for i, a := range actions {
		if a.Name == "" {
			return Proposal{}, fmt.Errorf("action %d has no name", i)
		}
		if a.Args == nil {
			a.Args = struct{}{}
		}
		body.Actions[i] = a
	}
	data, err := govJSON(body)
	if err != nil {
		return Proposal{}, fmt.Errorf("couldn't encode the proposal: %w", err)
	}
	return c.CreateProposalJSON(ctx, data)
}

// CreateProposalJSON is CreateProposal with the proposal document as it is
// sent: JSON {"actions":[{"name":...,"args":{...}},...]}. It is checked to
// be a JSON object, and signed as given.
func (c *Client) CreateProposalJSON(ctx context.Context, proposal []byte) (Proposal, error) {
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(proposal, &obj); err != nil {
		return Proposal{}, fmt.Errorf("the proposal is not a JSON object: %w", err)
	}
	rq, err := c.signed("/gov/members/proposals:create", MsgProposal, "", proposal)
	if err != nil {
		return Proposal{}, err
	}
	resp, err := c.do(ctx, rq)
	if err != nil {
		return Proposal{}, err
	}
	return decodeProposal(resp)
}

// ListProposals returns the proposals the service keeps: GET
// /gov/members/proposals.
func (c *Client) ListProposals(ctx context.Context) ([]Proposal, error) {
	var ps []Proposal
	err := c.govList(ctx, "/gov/members/proposals", func(raw json.RawMessage) error {
		var p Proposal
		if err := json.Unmarshal(raw, &p); err != nil {
			return err
		}
		ps = append(ps, p)
		return nil
	})
	return ps, err
}

// GetProposal returns a proposal: GET /gov/members/proposals/{id}. An
// unknown proposal is ErrNotFound.
func (c *Client) GetProposal(ctx context.Context, proposalID string) (Proposal, error) {
	path, err := proposalPath(proposalID)
	if err != nil {
		return Proposal{}, err
	}
	resp, err := c.do(ctx, govRequest(http.MethodGet, path))
	if err != nil {
		return Proposal{}, err
	}
	return decodeProposal(resp)
}

// GetProposalActions returns the proposal document itself, the JSON its
// proposer signed: GET /gov/members/proposals/{id}/actions.
func (c *Client) GetProposalActions(ctx context.Context, proposalID string) (json.RawMessage, error) {
	path, err := proposalPath(proposalID)
	if err != nil {
		return nil, err
	}
	resp, err := c.do(ctx, govRequest(http.MethodGet, path+"/actions"))
	if err != nil {
		return nil, err
	}
	if !json.Valid(resp.body) {
		return nil, errors.New("the service's proposal actions are not JSON")
	}
	return json.RawMessage(resp.body), nil
}

// WithdrawProposal withdraws an Open proposal of the member's: POST
// /gov/members/proposals/{id}:withdraw, signed. It returns the withdrawn
// proposal; for a proposal the service does not know, it answers 204 and
// WithdrawProposal returns a Proposal with only ProposalID set, and no
// error.
func (c *Client) WithdrawProposal(ctx context.Context, proposalID string) (Proposal, error) {
	path, err := proposalPath(proposalID)
	if err != nil {
		return Proposal{}, err
	}
	rq, err := c.signed(path+":withdraw", MsgWithdrawal, proposalID, nil)
	if err != nil {
		return Proposal{}, err
	}
	resp, err := c.do(ctx, rq)
	if err != nil {
		return Proposal{}, err
	}
	if resp.status == http.StatusNoContent || len(resp.body) == 0 {
		return Proposal{ProposalID: proposalID}, nil
	}
	return decodeProposal(resp)
}

// SubmitBallot votes on an Open proposal with ballot, a JavaScript module
// exporting vote(proposal, proposerId) (BallotYes, BallotNo, or one of the
// member's own): POST /gov/members/proposals/{id}/ballots/{memberId}:submit,
// signed. It returns the proposal after the vote: Accepted (and applied)
// if the vote decided it.
func (c *Client) SubmitBallot(ctx context.Context, proposalID, ballot string) (Proposal, error) {
	path, err := proposalPath(proposalID)
	if err != nil {
		return Proposal{}, err
	}
	if c.member == nil {
		return Proposal{}, ErrNoMemberSigner
	}
	if ballot == "" {
		return Proposal{}, errors.New("empty ballot")
	}
	body, _ := govJSON(struct {
		Ballot string `json:"ballot"`
	}{ballot})
	rq, err := c.signed(path+"/ballots/"+url.PathEscape(c.member.MemberID())+":submit", MsgBallot, proposalID, body)
	if err != nil {
		return Proposal{}, err
	}
	resp, err := c.do(ctx, rq)
	if err != nil {
		return Proposal{}, err
	}
	return decodeProposal(resp)
}

// Vote votes for (yes) or against a proposal: SubmitBallot with BallotYes
// or BallotNo.
func (c *Client) Vote(ctx context.Context, proposalID string, yes bool) (Proposal, error) {
	if yes {
		return c.SubmitBallot(ctx, proposalID, BallotYes)
	}
	return c.SubmitBallot(ctx, proposalID, BallotNo)
}

// GetBallot returns the ballot a member submitted on a proposal, its
// JavaScript: GET /gov/members/proposals/{id}/ballots/{memberId}. No such
// ballot is ErrNotFound.
func (c *Client) GetBallot(ctx context.Context, proposalID, memberID string) (string, error) {
	path, err := proposalPath(proposalID)
	if err != nil {
		return "", err
	}
	mid, err := govID("member id", memberID)
	if err != nil {
		return "", err
	}
	rq := govRequest(http.MethodGet, path+"/ballots/"+mid)
	rq.accept = "text/javascript, application/json"
	resp, err := c.do(ctx, rq)
	if err != nil {
		return "", err
	}
	if mt, _, _ := mime.ParseMediaType(resp.header.Get("Content-Type")); mt == mediaJSON {
		var b struct {
			Ballot *string `json:"ballot"`
		}
		if json.Unmarshal(resp.body, &b) == nil && b.Ballot != nil {
			return *b.Ballot, nil
		}
	}
	return string(resp.body), nil
}

func (c *Client) stateDigestPath(memberID string) (string, error) {
	if memberID == "" {
		if c.member == nil {
			return "", ErrNoMemberSigner
		}
		memberID = c.member.MemberID()
	}
	mid, err := govID("member id", memberID)
	if err != nil {
		return "", err
	}
	return "/gov/members/state-digests/" + mid, nil
}

func decodeStateDigest(resp *response) (StateDigest, error) {
	var d StateDigest
	if err := resp.decode(&d); err != nil {
		return StateDigest{}, err
	}
	if d.StateDigest == "" {
		return StateDigest{}, errors.New("the service's answer has no stateDigest")
	}
	return d, nil
}

// GetStateDigest returns the state digest recorded for a member (memberID
// "": the signer's): GET /gov/members/state-digests/{memberId}.
func (c *Client) GetStateDigest(ctx context.Context, memberID string) (StateDigest, error) {
	path, err := c.stateDigestPath(memberID)
	if err != nil {
		return StateDigest{}, err
	}
	resp, err := c.do(ctx, govRequest(http.MethodGet, path))
	if err != nil {
		return StateDigest{}, err
	}
	return decodeStateDigest(resp)
}

// UpdateStateDigest asks the service to record the current state digest
// for the signing member, and returns it: POST
// /gov/members/state-digests/{memberId}:update, signed.
func (c *Client) UpdateStateDigest(ctx context.Context) (StateDigest, error) {
	path, err := c.stateDigestPath("")
	if err != nil {
		return StateDigest{}, err
	}
	rq, err := c.signed(path+":update", MsgStateDigest, "", nil)
	if err != nil {
		return StateDigest{}, err
	}
	resp, err := c.do(ctx, rq)
	if err != nil {
		return StateDigest{}, err
	}
	return decodeStateDigest(resp)
}

// AckStateDigest acks a state digest (from UpdateStateDigest or
// GetStateDigest) as the signing member: POST
// /gov/members/state-digests/{memberId}:ack, signed. An Accepted member
// becomes Active.
func (c *Client) AckStateDigest(ctx context.Context, digest string) error {
	path, err := c.stateDigestPath("")
	if err != nil {
		return err
	}
	if digest == "" {
		return errors.New("empty state digest")
	}
	body := jsonBody(struct {
		StateDigest string `json:"stateDigest"`
	}{digest})
	rq, err := c.signed(path+":ack", MsgAck, "", body)
	if err != nil {
		return err
	}
	_, err = c.do(ctx, rq)
	return err
}

// GetServiceInfo returns the service's state: GET /gov/service/info.
func (c *Client) GetServiceInfo(ctx context.Context) (ServiceInfo, error) {
	resp, err := c.do(ctx, govRequest(http.MethodGet, "/gov/service/info"))
	if err != nil {
		return ServiceInfo{}, err
	}
	var info ServiceInfo
	if err := resp.decode(&info); err != nil {
		return ServiceInfo{}, err
	}
	return info, nil
}

// ListMembers returns the consortium members with their status: GET
// /gov/service/members.
func (c *Client) ListMembers(ctx context.Context) ([]Member, error) {
	var ms []Member
	err := c.govList(ctx, "/gov/service/members", func(raw json.RawMessage) error {
		var m Member
		if err := json.Unmarshal(raw, &m); err != nil {
			return err
		}
		ms = append(ms, m)
		return nil
	})
	return ms, err
}

// GetMember returns a consortium member: GET /gov/service/members/{id}. An
// unknown member is ErrNotFound.
func (c *Client) GetMember(ctx context.Context, memberID string) (Member, error) {
	mid, err := govID("member id", memberID)
	if err != nil {
		return Member{}, err
	}
	resp, err := c.do(ctx, govRequest(http.MethodGet, "/gov/service/members/"+mid))
	if err != nil {
		return Member{}, err
	}
	var m Member
	if err := resp.decode(&m); err != nil {
		return Member{}, err
	}
	return m, nil
}

// GetServiceConstitution returns the constitution's JavaScript, as the
// governance API serves it: GET /gov/service/constitution.
func (c *Client) GetServiceConstitution(ctx context.Context) (string, error) {
	rq := govRequest(http.MethodGet, "/gov/service/constitution")
	rq.accept = "text/javascript, application/json"
	resp, err := c.do(ctx, rq)
	if err != nil {
		return "", err
	}
	if mt, _, _ := mime.ParseMediaType(resp.header.Get("Content-Type")); mt == mediaJSON {
		var b struct {
			Constitution *string `json:"constitution"`
		}
		if json.Unmarshal(resp.body, &b) == nil && b.Constitution != nil {
			return *b.Constitution, nil
		}
	}
	return string(resp.body), nil
}

// govJSON encodes a signed payload: JSON without HTML escaping, so that
// JavaScript and PEM are signed as written (no \u003c for <).
func govJSON(v any) ([]byte, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(b.Bytes(), []byte("\n")), nil
}

// govList gets a governance list, {"value":[...]}, following nextLink.
func (c *Client) govList(ctx context.Context, path string, item func(json.RawMessage) error) error {
	rq := govRequest(http.MethodGet, path)
	for range maxListPages {
		resp, err := c.do(ctx, rq)
		if err != nil {
			return err
		}
		var page struct {
			Value    *[]json.RawMessage `json:"value"`
			NextLink string             `json:"nextLink"`
		}
		if err := resp.decode(&page); err != nil {
			return err
		}
		if page.Value == nil {
			return fmt.Errorf("the service's answer to GET %s has no list \"value\"", path)
		}
		for _, raw := range *page.Value {
			if err := item(raw); err != nil {
				return fmt.Errorf("couldn't decode an item of %s: %w", path, err)
			}
		}
		if page.NextLink == "" {
			return nil
		}
		if rq, err = c.followLink(page.NextLink, ""); err != nil {
			return err
		}
		rq.apiVersion = GovAPIVersion
	}
	return fmt.Errorf("GET %s: more than %d pages", path, maxListPages)
}

// RecoveryShareResult is the answer to a submitted recovery share (CCF's
// submit_recovery_share).
type RecoveryShareResult struct {
	Message           string `json:"message"`
	SubmittedCount    int    `json:"submittedCount"`
	RecoveryThreshold int    `json:"recoveryThreshold"`
}

// GetEncryptedShare returns a recovery member's share, encrypted to its
// encryption key: GET /gov/recovery/encrypted-shares/{memberId}
// (unauthenticated, as in CCF).
func (c *Client) GetEncryptedShare(ctx context.Context, memberID string) ([]byte, error) {
	esc, err := govID("member id", memberID)
	if err != nil {
		return nil, err
	}
	resp, err := c.do(ctx, govRequest(http.MethodGet, "/gov/recovery/encrypted-shares/"+esc))
	if err != nil {
		return nil, err
	}
	var body struct {
		EncryptedShare string `json:"encryptedShare"`
	}
	if err := resp.decode(&body); err != nil {
		return nil, err
	}
	return base64.StdEncoding.DecodeString(body.EncryptedShare)
}

// DecryptRecoveryShare decrypts an encrypted recovery share with the
// member's encryption private key (PEM, PKCS #8 or PKCS #1 RSA): RSA-OAEP
// with SHA-256, as CCF encrypts shares (the equivalent of openssl pkeyutl
// -decrypt -pkeyopt rsa_padding_mode:oaep -pkeyopt rsa_oaep_md:sha256).
func DecryptRecoveryShare(encryptionKeyPEM, encrypted []byte) ([]byte, error) {
	for rest := encryptionKeyPEM; ; {
		var b *pem.Block
		if b, rest = pem.Decode(rest); b == nil {
			return nil, errors.New("no PEM PRIVATE KEY block in the encryption key")
		}
		var key *rsa.PrivateKey
		switch b.Type {
		case "PRIVATE KEY":
			k, err := x509.ParsePKCS8PrivateKey(b.Bytes)
			if err != nil {
				return nil, err
			}
			var ok bool
			if key, ok = k.(*rsa.PrivateKey); !ok {
				return nil, fmt.Errorf("the encryption key is %T, not RSA", k)
			}
		case "RSA PRIVATE KEY":
			k, err := x509.ParsePKCS1PrivateKey(b.Bytes)
			if err != nil {
				return nil, err
			}
			key = k
		default:
			continue
		}
		share, err := rsa.DecryptOAEP(sha256.New(), nil, key, encrypted, nil)
		if err != nil {
			return nil, fmt.Errorf("couldn't decrypt the recovery share (is this the member's encryption key?): %w", err)
		}
		return share, nil
	}
}

// SubmitRecoveryShare submits the signing member's decrypted recovery
// share to a recovering service waiting for shares: POST
// /gov/recovery/members/{memberId}:recover, a COSE recovery_share message
// whose payload is {"share": base64}.
func (c *Client) SubmitRecoveryShare(ctx context.Context, share []byte) (RecoveryShareResult, error) {
	if c.member == nil {
		return RecoveryShareResult{}, ErrNoMemberSigner
	}
	esc, err := govID("member id", c.member.MemberID())
	if err != nil {
		return RecoveryShareResult{}, err
	}
	body := jsonBody(struct {
		Share string `json:"share"`
	}{base64.StdEncoding.EncodeToString(share)})
	rq, err := c.signed("/gov/recovery/members/"+esc+":recover", MsgRecoveryShare, "", body)
	if err != nil {
		return RecoveryShareResult{}, err
	}
	resp, err := c.do(ctx, rq)
	if err != nil {
		return RecoveryShareResult{}, err
	}
	var out RecoveryShareResult
	err = resp.decode(&out)
	return out, err
}
