package api

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/ledgerd/ledgerd/internal/auth"
	"github.com/ledgerd/ledgerd/internal/gov"
	"github.com/ledgerd/ledgerd/internal/ledger"
	"github.com/ledgerd/ledgerd/internal/node"
)

// multiRole reports whether a user request speaks the multi-role form
// ("assignedRoles", an array): on /app/ledgerUsers, and on /app/users in
// api-version 2024-08-22-preview.
func (c *call) multiRole() bool {
	return c.d.multiRoleUsers || strings.HasPrefix(c.ep.pattern, "/app/ledgerUsers")
}

// userJSON is a user in the single-role form.
type userJSON struct {
	AssignedRole string `json:"assignedRole"`
	UserID       string `json:"userId"`
}

// multiRoleUserJSON is a user in the multi-role form.
type multiRoleUserJSON struct {
	AssignedRoles []string `json:"assignedRoles"`
	UserID        string   `json:"userId"`
}

// user encodes a user in the request's form. The single-role form shows
// one role of a user holding several: its highest built-in role, or, for a
// user holding only user-defined roles, the first of them (the Python SDK
// 1.0.1 takes assignedRole as any string).
func (c *call) user(u gov.User) any {
	if c.multiRole() {
		return multiRoleUserJSON{AssignedRoles: u.Roles, UserID: u.ID}
	}
	return userJSON{AssignedRole: singleRole(u.Roles), UserID: u.ID}
}

// singleRole is the role the single-role form shows of roles.
func singleRole(roles []string) string {
	if r := gov.HighestBuiltin(roles); r.Valid() {
		return r.String()
	}
	if len(roles) > 0 {
		return roles[0]
	}
	return ""
}

// userID returns the normalised user id of the request path.
func userID(c *call) (string, error) {
	id := auth.NormalizeUserID(c.r.PathValue("userId"))
	switch {
	case id == "":
		return "", invalidInput("The user id is empty.")
	case len(id) > MaxUserIDBytes:
		return "", invalidInput("The user id is %d bytes long; at most %d are allowed.", len(id), MaxUserIDBytes)
	case !utf8.ValidString(id):
		return "", invalidInput("The user id is not valid UTF-8.")
	case strings.ContainsFunc(id, forbiddenIDRune):
		return "", invalidInput("The user id contains a control or bidirectional formatting character.")
	}
	return id, nil
}

// userNotFound is the 404 of an unknown user id.
func userNotFound(id string) error {
	return newError(http.StatusNotFound, codeResourceNotFound, "No user %q.", clip(id))
}

// getUser serves GET /app/users/{userId} and /app/ledgerUsers/{userId}.
func (s *Server) getUser(c *call) error {
	id, err := userID(c)
	if err != nil {
		return err
	}
	u, ok := gov.UserOf(s.reads.State(), id)
	if !ok {
		return userNotFound(id)
	}
	return c.ok(c.user(u))
}

// listUsers serves GET /app/users and GET /app/ledgerUsers.
func (s *Server) listUsers(c *call) error {
	users := gov.Users(s.reads.State())
	items := make([]any, len(users))
	for i, u := range users {
		items[i] = c.user(u)
	}
	return c.ok(struct {
		LedgerUsers []any `json:"ledgerUsers"`
	}{items})
}

// patchUser serves PATCH /app/users/{userId} (and /app/ledgerUsers): it
// creates the user or replaces its roles (a merge patch replaces an array
// as a whole), and answers once the change is committed, so that it
// governs the user's next request. Every role must exist when the change
// is made (400 otherwise). The body is a JSON merge patch: one without
// roles ({} or only the user's own userId) changes nothing and answers the
// user as it is, or 400 for a user that does not exist, since a user
// cannot be created without a role.
func (s *Server) patchUser(c *call) error {
	id, err := userID(c)
	if err != nil {
		return err
	}
	body, err := readBody(c, mediaMergePath, mediaJSON)
	if err != nil {
		return err
	}
	roles, err := decodeRoleRequest(body, c.multiRole(), id)
	if err != nil {
		return err
	}
	if roles == nil {
		current, ok := gov.UserOf(s.reads.State(), id)
		if !ok {
			field := "assignedRole"
			if c.multiRole() {
				field = "assignedRoles"
			}
			return invalidInput("No user %q: the request body has no %q field, which creating a user needs.", clip(id), field)
		}
		return c.ok(c.user(current))
	}
	roles = gov.CanonicalRoles(roles)
	admin := auth.RoleAdministrator.String()
	txid, err := s.changeUser(c.r.Context(), id, func(st *node.State, current []string, exists bool) (ledger.MapWrites, error) {
		for _, name := range roles {
			if _, ok := roleActions(st, name); !ok {
				return ledger.MapWrites{}, unknownRole(name)
			}
		}
		if exists && slices.Contains(current, admin) && !slices.Contains(roles, admin) {
			if err := checkNotLastAdministrator(st, id); err != nil {
				return ledger.MapWrites{}, err
			}
		}
		return gov.SetUser(id, roles...), nil
	})
	if err != nil {
		return err
	}
	return c.reply(http.StatusOK, txid, c.user(gov.User{ID: id, Roles: roles}))
}

// unknownRole is the 400 of a role name that names no role.
func unknownRole(name string) error {
	return invalidInput("Unknown role %q: the roles are the built-in Reader, Contributor and Administrator (in any letter case) and those defined with /app/roles (case-sensitive).", clip(name))
}

// deleteUser serves DELETE /app/users/{userId} (and /app/ledgerUsers).
func (s *Server) deleteUser(c *call) error {
	id, err := userID(c)
	if err != nil {
		return err
	}
	txid, err := s.changeUser(c.r.Context(), id, func(st *node.State, current []string, exists bool) (ledger.MapWrites, error) {
		if !exists {
			return ledger.MapWrites{}, userNotFound(id)
		}
		if slices.Contains(current, auth.RoleAdministrator.String()) {
			if err := checkNotLastAdministrator(st, id); err != nil {
				return ledger.MapWrites{}, err
			}
		}
		return gov.RemoveUser(id), nil
	})
	if err != nil {
		return err
	}
	return c.noContent(txid)
}

// checkNotLastAdministrator refuses a change that would leave the ledger
// without an Administrator, since then no one could manage users again.
func checkNotLastAdministrator(st gov.State, id string) error {
	if gov.CountRole(st, auth.RoleAdministrator.String()) > 1 {
		return nil
	}
	return newError(http.StatusConflict, codeLastAdministrator,
		"User %q is the last Administrator; make another user Administrator first.", clip(id))
}

// changeUser runs one user-management change through the node's executor
// (node.Exec): decide computes the write from the user's role in the latest
// state, and the executor holds its lock until the write is committed, so
// the check in decide and the write are atomic, and the change is answered
// only once it can never be rolled back: a user whose deletion is answered
// is refused from then on.
func (s *Server) changeUser(ctx context.Context, id string,
	decide func(st *node.State, current []string, exists bool) (ledger.MapWrites, error)) (node.TxID, error) {
	var decided error
	var removed bool
	txid, err := s.node.Exec(ctx, node.UntilCommitted, func(st *node.State) ([]ledger.MapWrites, error) {
		current, exists := gov.UserRoles(st, id)
		w, err := decide(st, current, exists)
		if err != nil {
			decided = err
			return nil, err
		}
		removed = len(w.Removes) > 0
		return []ledger.MapWrites{w}, nil
	})
	switch {
	case err != nil && err == decided:
		return node.TxID{}, err
	case err != nil && txid != (node.TxID{}):
		return node.TxID{}, fmt.Errorf("couldn't commit user change %s: %w", txid, err)
	case err != nil:
		return node.TxID{}, fmt.Errorf("couldn't write user change: %w", err)
	}
	s.log.Info("user changed", "user_id", id, "transaction_id", txid.String(), "removed", removed)
	return txid, nil
}
