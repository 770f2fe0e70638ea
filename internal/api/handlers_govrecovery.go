package api

import (
	"encoding/base64"
	"fmt"
	"github.com/ledgerd/ledgerd/internal/cose"
	"net/http"
	"strings"

	"github.com/ledgerd/ledgerd/internal/gov"
	"github.com/ledgerd/ledgerd/internal/recovery"
)

// The recovery endpoints of CCF's governance API 2024-07-01 (CCF
// src/node/gov/handlers/recovery.h). docs/acl-api.md §9 says what ledgerd
// answers until a service can wait for recovery shares (issue 11).

// codeServiceNotWaiting is CCF's code for a share submitted to a service
// that is not waiting for recovery shares.
const codeServiceNotWaiting = "ServiceNotWaitingForRecoveryShares"

// The service status in which CCF accepts recovery shares.
const (
	statusWaitingForShares = "WaitingForRecoveryShares"
)

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
// wildcards are whole segments). As in CCF, a share is refused unless the
// service is waiting for recovery shares, after the COSE recovery_share
// envelope is verified (a member's signature, the URL's member). ledgerd's
// service never waits for shares until the network can recover (issue 11),
// so every signed submission gets CCF's 403
// ServiceNotWaitingForRecoveryShares.
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
		// Unreachable until issue 11: no transition leads to this status.
		return newError(http.StatusNotImplemented, "NotImplemented", "Submitting recovery shares is not supported yet.")
	})(s, c)
}
