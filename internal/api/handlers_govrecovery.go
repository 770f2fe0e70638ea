package api

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/ledgerd/ledgerd/internal/cose"
	"github.com/ledgerd/ledgerd/internal/gov"
	"github.com/ledgerd/ledgerd/internal/ledger"
	"github.com/ledgerd/ledgerd/internal/node"
	"github.com/ledgerd/ledgerd/internal/recovery"
	"github.com/ledgerd/ledgerd/internal/tables"
)

// The recovery endpoints of CCF's governance API 2024-07-01 (CCF
// src/node/gov/handlers/recovery.h). docs/acl-api.md §9 says what ledgerd
// answers until a service can wait for recovery shares (issue 11).

// codeServiceNotWaiting is CCF's code for a share submitted to a service
// that is not waiting for recovery shares.
const codeServiceNotWaiting = "ServiceNotWaitingForRecoveryShares"

// The service status in which CCF accepts recovery shares.
const statusWaitingForShares = tables.ServiceWaitingForShares

// getGovEncryptedShare serves GET /gov/recovery/encrypted-shares/{memberId}:
// the member's recovery share, RSA-OAEP encrypted to its encryption key,
// unauthenticated as in CCF (only the member's private key opens it).
func (s *Server) getGovEncryptedShare(c *call) error {
	id, err := parseHexID(c.r.PathValue("memberId"), "member")
	if err != nil {
		return err
	}
	// CCF's member ids are lowercase hex; so are the table's keys.
	id = strings.ToLower(id)
	share, ok, err := recovery.EncryptedShare(s.reads.State(), id)
	if err != nil {
		return fmt.Errorf("couldn't read the recovery shares: %w", err)
	}
	if !ok {
		return newError(http.StatusNotFound, codeResourceNotFound, "Recovery share not found for member %s.", id)
	}
	return c.ok(struct {
		MemberID       string `json:"memberId"`
		EncryptedShare string `json:"encryptedShare"`
	}{id, base64.StdEncoding.EncodeToString(share)})
}

// postGovRecoveryMember serves POST /gov/recovery/members/{memberId}:recover
// (the pattern's last segment is "{memberId}:recover": http.ServeMux
// wildcards are whole segments), CCF's submit_recovery_share: a recovery
// member's decrypted share, in the COSE recovery_share envelope's payload
// {"share": base64}, signed by the URL's member. Refused unless the service
// is waiting for recovery shares (403 ServiceNotWaitingForRecoveryShares).
// The share is kept in public:ccf.internal.encrypted_submitted_shares,
// encrypted with the service's latest ledger secret (never in clear; the
// envelope is not recorded in the governance history either). Once the
// recovery threshold is reached the shares are combined (internal/recovery)
// into the previous service's latest ledger secret, the node recovers every
// previous secret from it (node.RecoverPrevious) and records them wrapped
// for the new service key (the submitted shares removed), makes the
// previous private domain readable (node.InstallRecovered), and opens the
// service with new recovery shares of its own secret, as CCF does once the
// private ledger is recovered. Shares that do not recover the secret are
// refused (400 InvalidRecoveryShare) and this submission is not kept: a
// member may submit again (CCF keeps the last of each member).
func (s *Server) postGovRecoveryMember(c *call) error {
	seg := c.r.PathValue("memberAction")
	id, ok := strings.CutSuffix(seg, ":recover")
	if !ok {
		return newError(http.StatusNotFound, codeResourceNotFound, "No such resource: %s.", clip(c.r.URL.Path))
	}
	if _, err := parseHexID(id, "member"); err != nil {
		return err
	}
	return govSigned(cose.MsgRecoveryShare, func(s *Server, c *call, sg *signed) error {
		if err := sg.msg.CheckMemberID(id); err != nil {
			return unauthenticated("Authenticated member id %s does not match the URL's %s.", sg.req.MemberID, id)
		}
		if gov.ServiceStatus(s.reads.State()) != statusWaitingForShares {
			return newError(http.StatusForbidden, codeServiceNotWaiting, "Service is not waiting for recovery shares.")
		}
		return s.submitShare(c, sg.req.MemberID, sg.req.Payload)
	})(s, c)
}

// codeInvalidShare answers a share that is not one, or shares that do not
// recover the ledger secret (CCF answers 500 InternalError and clears the
// shares; ledgerd refuses the last submission with a 4xx and keeps the
// others).
const codeInvalidShare = "InvalidRecoveryShare"

func (s *Server) submitShare(c *call, member string, payload []byte) error {
	var body struct {
		Share *string `json:"share"`
	}
	if err := json.Unmarshal(payload, &body); err != nil || body.Share == nil {
		return newError(http.StatusBadRequest, codeInvalidInput, "The recovery_share payload must be {\"share\": base64 of the decrypted share}.")
	}
	share, err := base64.StdEncoding.DecodeString(*body.Share)
	if err != nil || len(share) != recovery.ShareSize {
		clear(share)
		return newError(http.StatusBadRequest, codeInvalidShare, "A decrypted recovery share is %d bytes, base64-encoded.", recovery.ShareSize)
	}
	defer clear(share)
	if _, ok, err := recovery.EncryptedShare(s.reads.State(), member); err != nil {
		return fmt.Errorf("couldn't read the recovery shares: %w", err)
	} else if !ok {
		return newError(http.StatusForbidden, gov.CodeAuthorizationFailed, "Member %s holds no recovery share.", member)
	}
	var count, threshold int
	var secrets []tables.SeqSecret
	_, err = s.node.Exec(c.r.Context(), node.UntilCommitted, func(st *node.State) ([]ledger.MapWrites, error) {
		if gov.ServiceStatus(st) != statusWaitingForShares {
			return nil, newError(http.StatusForbidden, codeServiceNotWaiting, "Service is not waiting for recovery shares.")
		}
		latest := s.reads.LatestLedgerSecret()
		if latest == nil {
			return nil, errors.New("the latest ledger secret is not available")
		}
		defer clear(latest)
		shares := [][]byte{share}
		var derr error
		st.Range(tables.EncryptedSubmittedSharesMap, func(k, v []byte) bool {
			if string(k) == member {
				return true
			}
			p, err := tables.OpenWith(latest, v)
			if err != nil {
				derr = fmt.Errorf("couldn't decrypt the share submitted by %s: %w", k, err)
				return false
			}
			shares = append(shares, p)
			return true
		})
		defer func() {
			for _, p := range shares[1:] {
				clear(p)
			}
		}()
		if derr != nil {
			return nil, derr
		}
		var err error
		if threshold, err = recovery.Threshold(st); err != nil {
			return nil, err
		}
		count = len(shares)
		full := recovery.IsFullKey(share)
		if count < threshold && !full {
			sealed, err := tables.SealWith(latest, share)
			if err != nil {
				return nil, err
			}
			return []ledger.MapWrites{{Name: tables.EncryptedSubmittedSharesMap, Writes: []ledger.KV{{Key: []byte(member), Value: sealed}}}}, nil
		}
		secret, err := recovery.Recover(shares, st)
		if errors.Is(err, recovery.ErrWrongShares) || errors.Is(err, recovery.ErrShares) {
			return nil, newError(http.StatusBadRequest, codeInvalidShare,
				"The %d submitted recovery shares do not recover the ledger secret; this share was not kept (a member may submit its share again).", count)
		} else if err != nil {
			return nil, err
		}
		defer clear(secret)
		if secrets, err = s.node.RecoverPrevious(secret); err != nil {
			if errors.Is(err, tables.ErrNotRecovered) {
				return nil, newError(http.StatusBadRequest, codeInvalidShare, "The recovered secret does not decrypt the previous ledger; this share was not kept.")
			}
			return nil, err
		}
		ws, err := s.node.RecoveredWrites(secrets)
		if err != nil {
			return nil, err
		}
		var removes [][]byte
		st.Range(tables.EncryptedSubmittedSharesMap, func(k, _ []byte) bool {
			removes = append(removes, append([]byte(nil), k...))
			return true
		})
		if len(removes) > 0 {
			ws = append(ws, ledger.MapWrites{Name: tables.EncryptedSubmittedSharesMap, Removes: removes})
		}
		return ws, nil
	})
	if err != nil {
		return err
	}
	message := fmt.Sprintf("%d/%d recovery shares successfully submitted", count, threshold)
	if secrets != nil {
		message += "\nEnd of recovery procedure initiated"
		defer func() {
			for _, x := range secrets {
				clear(x.Secret)
			}
		}()
		if err := s.node.InstallRecovered(c.r.Context(), secrets); err != nil {
			return fmt.Errorf("couldn't recover the private ledger: %w", err)
		}
		// The private ledger is recovered: the service opens, with new
		// recovery shares of its own ledger secret (CCF issues them at the
		// end of recovery).
		if _, err := s.node.Exec(c.r.Context(), node.UntilCommitted, func(st *node.State) ([]ledger.MapWrites, error) {
			ws, err := gov.RecoveredServiceWrites(st)
			if err != nil {
				return nil, err
			}
			latest := s.reads.LatestLedgerSecret()
			if latest == nil {
				return nil, errors.New("the latest ledger secret is not available")
			}
			defer clear(latest)
			shares, err := recovery.SharesWrites(st, latest, rand.Reader)
			if err != nil {
				return nil, err
			}
			ws = append(ws, shares...)
			// The previous service's latest secret, encrypted with this
			// one's (CCF's encrypted past ledger secret at the end of a
			// recovery): a later recovery walks back through it.
			link, err := s.node.PreviousLinkWrites(latest)
			if err != nil {
				return nil, err
			}
			ws = append(ws, link...)
			// Every node snapshots the recovered state at the next
			// signature: a node that joins the recovered service from now on
			// starts from it, whatever the interval, rather than replaying
			// the whole ledger (as a node that joined while it was
			// Recovering does).
			s.node.RequestSnapshot()
			ws = append(ws, tables.SnapshotTriggerWrites()...)
			// A share another member submitted meanwhile is of no more use.
			var stale [][]byte
			st.Range(tables.EncryptedSubmittedSharesMap, func(k, _ []byte) bool {
				stale = append(stale, append([]byte(nil), k...))
				return true
			})
			if len(stale) > 0 {
				ws = append(ws, ledger.MapWrites{Name: tables.EncryptedSubmittedSharesMap, Removes: stale})
			}
			return ws, nil
		}); err != nil {
			return fmt.Errorf("couldn't open the recovered service: %w", err)
		}
	}
	return c.ok(struct {
		Message           string `json:"message"`
		SubmittedCount    int    `json:"submittedCount"`
		RecoveryThreshold int    `json:"recoveryThreshold"`
	}{message, count, threshold})
}
