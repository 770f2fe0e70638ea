package cose

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"time"
)

// Governance message types, the values of ccf.gov.msg.type
// (python/src/ccf/cose.py GOV_MSG_TYPES), and the endpoint each is signed
// for (src/node/gov/handlers/*.h).
const (
	MsgProposal               = "proposal"                 // POST /gov/members/proposals:create
	MsgBallot                 = "ballot"                   // POST .../proposals/{proposalId}/ballots/{memberId}:submit
	MsgWithdrawal             = "withdrawal"               // POST .../proposals/{proposalId}:withdraw
	MsgAck                    = "ack"                      // POST /gov/members/state-digests/{memberId}:ack
	MsgStateDigest            = "state_digest"             // POST /gov/members/state-digests/{memberId}:update
	MsgRecoveryShare          = "recovery_share"           // POST /gov/recovery/members/{memberId}:recover
	MsgEncryptedRecoveryShare = "encrypted_recovery_share" // listed by CCF's signing tool
)

// MsgTypes lists every governance message type.
var MsgTypes = []string{MsgProposal, MsgBallot, MsgWithdrawal, MsgAck, MsgStateDigest, MsgRecoveryShare, MsgEncryptedRecoveryShare}

// RequiresProposalID reports whether messages of type t must carry
// ccf.gov.msg.proposal_id (cose.py GOV_MSG_TYPES_WITH_PROPOSAL_ID).
func RequiresProposalID(t string) bool { return t == MsgBallot || t == MsgWithdrawal }

// MaxCreatedAt is the largest created_at CCF accepts on a proposal: it keeps
// created_at as 10 zero-padded decimal digits so that the strings order as
// the numbers do (proposals.h, "created_at value is too large").
const MaxCreatedAt = 9_999_999_999

// Errors of the governance checks; a node answers 400 for each (CCF:
// InvalidAuthenticationInfo for the type, InvalidResourceName for the ids,
// InvalidCreatedAt for the time).
var (
	// ErrWrongType: ccf.gov.msg.type is missing or not the endpoint's.
	ErrWrongType = errors.New("cose: wrong ccf.gov.msg.type")
	// ErrProposalIDMismatch: ccf.gov.msg.proposal_id is missing or is not
	// the proposal id in the request path.
	ErrProposalIDMismatch = errors.New("cose: authenticated proposal id does not match URL")
	// ErrMemberIDMismatch: the signer (kid) is not the member id in the path.
	ErrMemberIDMismatch = errors.New("cose: authenticated member id does not match URL")
	// ErrCreatedAt: created_at is outside the accepted window or too large.
	ErrCreatedAt = errors.New("cose: invalid ccf.gov.msg.created_at")
	// ErrUntagged: governance requires the COSE_Sign1 tag (18).
	ErrUntagged = errors.New("cose: COSE_Sign1 is not tagged")
)

// CheckGovernance applies what CCF's MemberCOSESign1AuthnPolicy checks
// before looking the signer up: the message is tagged (18) and, if
// msgType is not empty, ccf.gov.msg.type is present and equals it. The
// signature is checked separately with Verify, against the certificate of
// the member named by KID.
func (m *Sign1) CheckGovernance(msgType string) error {
	if !m.Tagged {
		return ErrUntagged
	}
	if msgType == "" {
		return nil
	}
	if !m.HasMsgType {
		return fmt.Errorf("%w: missing ccf.gov.msg.type, expected ccf.gov.msg.type to be %s", ErrWrongType, msgType)
	}
	if m.MsgType != msgType {
		return fmt.Errorf("%w: found ccf.gov.msg.type set to %s, expected ccf.gov.msg.type to be %s", ErrWrongType, m.MsgType, msgType)
	}
	return nil
}

// CheckProposalID checks that ccf.gov.msg.proposal_id is present and equals
// the proposal id of the request path, as CCF's try_parse_signed_proposal_id
// (ballots and withdrawals).
func (m *Sign1) CheckProposalID(pathID string) error {
	if !m.HasProposalID || m.ProposalID != pathID {
		return ErrProposalIDMismatch
	}
	return nil
}

// CheckMemberID checks that the signer is the member id of the request path,
// as CCF's try_parse_signed_member_id.
func (m *Sign1) CheckMemberID(pathID string) error {
	if string(m.KID) != pathID {
		return ErrMemberIDMismatch
	}
	return nil
}

// CheckCreatedAt checks that createdAt (seconds) is within [now-maxAge,
// now+maxSkew] and not above MaxCreatedAt. This window is ledgerd's: CCF
// itself bounds only proposals, and only relative to its recent-proposals
// window (a proposal older than the median kept one is refused, see
// CreatedAtKey), which a node applies in addition.
func CheckCreatedAt(createdAt uint64, now time.Time, maxAge, maxSkew time.Duration) error {
	if createdAt > MaxCreatedAt {
		return fmt.Errorf("%w: header parameter created_at value is too large", ErrCreatedAt)
	}
	t := time.Unix(int64(createdAt), 0)
	if t.Before(now.Add(-maxAge)) {
		return fmt.Errorf("%w: created at %d, more than %s before now (%d)", ErrCreatedAt, createdAt, maxAge, now.Unix())
	}
	if t.After(now.Add(maxSkew)) {
		return fmt.Errorf("%w: created at %d, more than %s after now (%d)", ErrCreatedAt, createdAt, maxSkew, now.Unix())
	}
	return nil
}

// CreatedAtKey returns the key under which CCF's recent-proposals table
// (public:ccf.gov.cose_recent_proposals) records a proposal: created_at as
// 10 zero-padded decimal digits, ":", and the hex request digest
// (proposals.h validate_proposal_submission_time). Keys order as their
// created_at do.
func CreatedAtKey(createdAt uint64, requestDigest [sha256.Size]byte) (string, error) {
	if createdAt > MaxCreatedAt {
		return "", fmt.Errorf("%w: header parameter created_at value is too large", ErrCreatedAt)
	}
	return fmt.Sprintf("%010d:%s", createdAt, hex.EncodeToString(requestDigest[:])), nil
}

// RequestDigest is CCF's request digest of a governance message: the
// SHA-256 of its COSE signature bytes (proposals.h).
func RequestDigest(signature []byte) [sha256.Size]byte { return sha256.Sum256(signature) }

// ProposalID is CCF's proposal id (src/node/gov/handlers/proposals.h,
// create_proposal): the lowercase hex SHA-256 of the Merkle root at the
// transaction's read version followed by the request digest,
// hex(SHA-256(root || SHA-256(signature))).
func ProposalID(rootAtRead [sha256.Size]byte, signature []byte) string {
	d := RequestDigest(signature)
	h := sha256.New()
	h.Write(rootAtRead[:])
	h.Write(d[:])
	return hex.EncodeToString(h.Sum(nil))
}

// MemberID returns CCF's member id of a DER certificate, the kid a member
// signs with: the lowercase hex SHA-256 of the DER bytes (the same as
// gov.MemberID).
func MemberID(certDER []byte) string {
	sum := sha256.Sum256(certDER)
	return hex.EncodeToString(sum[:])
}
