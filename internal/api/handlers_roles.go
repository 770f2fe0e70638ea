package api

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"unicode/utf8"

	"github.com/ledgerd/ledgerd/internal/auth"
	"github.com/ledgerd/ledgerd/internal/gov"
	"github.com/ledgerd/ledgerd/internal/ledger"
	"github.com/ledgerd/ledgerd/internal/node"
)

// roleJSON is a role on the wire (the spec's Role): its name and actions.
type roleJSON struct {
	RoleName    string   `json:"roleName"`
	RoleActions []string `json:"roleActions"`
}

// roleNameParam is the query parameter naming a role.
const roleNameParam = "roleName"

// builtinRoles are the built-in roles in the order GET /app/roles lists
// them.
var builtinRoles = []auth.Role{auth.RoleAdministrator, auth.RoleContributor, auth.RoleReader}

// roleNameQuery returns the roleName query parameter, checked like a role
// name in a body.
func roleNameQuery(c *call) (string, bool, error) {
	name, has, err := param(c.r.URL.Query(), roleNameParam)
	if err != nil || !has {
		return "", has, err
	}
	switch {
	case len(name) > MaxRoleNameBytes:
		return "", true, newError(http.StatusBadRequest, codeInvalidQuery,
			"The roleName is %d bytes long; at most %d are allowed.", len(name), MaxRoleNameBytes)
	case !utf8.ValidString(name):
		return "", true, newError(http.StatusBadRequest, codeInvalidQuery, "The roleName is not valid UTF-8.")
	case name == "":
		return "", true, newError(http.StatusBadRequest, codeInvalidQuery, "The roleName is empty.")
	case slices.ContainsFunc([]rune(name), forbiddenIDRune):
		return "", true, newError(http.StatusBadRequest, codeInvalidQuery,
			"The roleName contains a control or bidirectional formatting character.")
	}
	return name, true, nil
}

// roleNotFound is the 404 of a role name that names no role.
func roleNotFound(name string) error {
	return newError(http.StatusNotFound, codeResourceNotFound, "No role %q.", clip(name))
}

// builtinUnchangeable is the 400 of a change to a built-in role.
func builtinUnchangeable(name string) error {
	return invalidInput("%q is a built-in role (role names Administrator, Contributor and Reader are built-in in any letter case); built-in roles cannot be created, changed or deleted.", clip(name))
}

// getRoles serves GET /app/roles[?roleName=]: the named role, or every
// role (the built-in ones first), as an array of roles.
func (s *Server) getRoles(c *call) error {
	name, has, err := roleNameQuery(c)
	if err != nil {
		return err
	}
	st := s.reads.State()
	if has {
		actions, ok := roleActions(st, name)
		if !ok {
			return roleNotFound(name)
		}
		if r, ok := auth.BuiltinRole(name); ok {
			name = r.String()
		}
		return c.ok([]roleJSON{{RoleName: name, RoleActions: actions}})
	}
	out := []roleJSON{}
	for _, r := range builtinRoles {
		out = append(out, roleJSON{RoleName: r.String(), RoleActions: builtinActionLists[r]})
	}
	for _, r := range gov.Roles(st) {
		out = append(out, roleJSON{RoleName: r.Name, RoleActions: r.Actions})
	}
	return c.ok(out)
}

// putRoles serves PUT /app/roles: it creates the roles of the body, all or
// none. A role that exists already with the same actions is left as it is
// (so that a retried PUT succeeds); with other actions, the request is
// refused with 409, since the spec has a role's actions changed by PATCH
// (adding) or by deleting and creating it again (removing).
func (s *Server) putRoles(c *call) error {
	body, err := readBody(c, mediaJSON)
	if err != nil {
		return err
	}
	roles, err := decodeRolesBody(body)
	if err != nil {
		return err
	}
	txid, err := s.changeRoles(c.r.Context(), func(st *node.State) ([]ledger.MapWrites, error) {
		var ws []ledger.MapWrites
		for i, r := range roles {
			current, exists := gov.RoleActions(st, r.RoleName)
			switch {
			case exists && sameSet(current, r.RoleActions):
				roles[i].RoleActions = current
				continue
			case exists:
				return nil, newError(http.StatusConflict, codeRoleExists,
					"Role %q exists with other actions; add actions with PATCH /app/roles, or delete the role and create it again to remove some.", clip(r.RoleName))
			}
			ws = append(ws, gov.SetRole(r.RoleName, r.RoleActions))
		}
		if n := len(gov.Roles(st)) + len(ws); n > MaxUserDefinedRoles {
			return nil, newError(http.StatusBadRequest, codeRoleLimit,
				"The ledger would hold %d user-defined roles; at most %d are allowed.", n, MaxUserDefinedRoles)
		}
		return ws, nil
	})
	if err != nil {
		return err
	}
	return c.rolesOK(txid, roles)
}

// patchRoles serves PATCH /app/roles: it adds the body's actions to
// existing roles, all or none (the spec: to remove an action, delete the
// role and create it again).
func (s *Server) patchRoles(c *call) error {
	body, err := readBody(c, mediaJSON, mediaMergePath)
	if err != nil {
		return err
	}
	roles, err := decodeRolesBody(body)
	if err != nil {
		return err
	}
	txid, err := s.changeRoles(c.r.Context(), func(st *node.State) ([]ledger.MapWrites, error) {
		var ws []ledger.MapWrites
		for i, r := range roles {
			current, exists := gov.RoleActions(st, r.RoleName)
			if !exists {
				return nil, roleNotFound(r.RoleName)
			}
			merged := slices.Clone(current)
			for _, a := range r.RoleActions {
				if !slices.Contains(merged, a) {
					merged = append(merged, a)
				}
			}
			roles[i].RoleActions = merged
			if len(merged) == len(current) {
				continue
			}
			if len(merged) > MaxRoleActions {
				return nil, invalidInput("Role %q would allow %d actions; at most %d are allowed.", clip(r.RoleName), len(merged), MaxRoleActions)
			}
			ws = append(ws, gov.SetRole(r.RoleName, merged))
		}
		return ws, nil
	})
	if err != nil {
		return err
	}
	return c.rolesOK(txid, roles)
}

// deleteRole serves DELETE /app/roles?roleName=. A role that users hold is
// not deleted (409 RoleInUse): ACL documents nothing here, and a user
// whose role vanished would keep a name that a later role of that name
// would silently grant again.
func (s *Server) deleteRole(c *call) error {
	name, has, err := roleNameQuery(c)
	if err != nil {
		return err
	}
	if !has {
		return newError(http.StatusBadRequest, codeInvalidQuery, "The roleName query parameter is required.")
	}
	if _, ok := auth.BuiltinRole(name); ok {
		return builtinUnchangeable(name)
	}
	var deleted []string
	txid, err := s.changeRoles(c.r.Context(), func(st *node.State) ([]ledger.MapWrites, error) {
		actions, ok := gov.RoleActions(st, name)
		if !ok {
			return nil, roleNotFound(name)
		}
		deleted = actions
		if n := gov.CountRole(st, name); n > 0 {
			return nil, newError(http.StatusConflict, codeRoleInUse,
				"Role %q is held by %d user(s); remove it from them first.", clip(name), n)
		}
		return []ledger.MapWrites{gov.RemoveRole(name)}, nil
	})
	if err != nil {
		return err
	}
	return c.rolesOK(txid, []roleJSON{{RoleName: name, RoleActions: deleted}})
}

// rolesOK answers 200 with roles, the roles a change named as they are
// after it (or, for DELETE, as they were), in GET's shape: the spec gives
// these answers no body, which clients ignore, and ledgerd answers every
// 200 with JSON. The transaction id is the write's or, for a request that
// changed nothing, the committed state it was decided on.
func (c *call) rolesOK(txid node.TxID, roles []roleJSON) error {
	if txid == (node.TxID{}) {
		txid = c.served
	}
	return c.reply(http.StatusOK, txid, roles)
}

// changeRoles runs one role change through the node's executor, as
// changeUser does for users: the checks in decide and the write are
// atomic with respect to user changes (a role cannot be deleted while a
// user is being given it), and the change is answered once committed.
// decide returning no writes changes nothing.
func (s *Server) changeRoles(ctx context.Context, decide func(st *node.State) ([]ledger.MapWrites, error)) (node.TxID, error) {
	var decided error
	txid, err := s.node.Exec(ctx, node.UntilCommitted, func(st *node.State) ([]ledger.MapWrites, error) {
		ws, err := decide(st)
		decided = err
		return mergeWrites(ws), err
	})
	switch {
	case err != nil && err == decided:
		return node.TxID{}, err
	case err != nil && txid != (node.TxID{}):
		return node.TxID{}, fmt.Errorf("couldn't commit role change %s: %w", txid, err)
	case err != nil:
		return node.TxID{}, fmt.Errorf("couldn't write role change: %w", err)
	}
	if txid != (node.TxID{}) {
		s.log.Info("roles changed", "transaction_id", txid.String())
	}
	return txid, nil
}

// sameSet reports whether a and b hold the same strings.
func sameSet(a, b []string) bool {
	for _, x := range a {
		if !slices.Contains(b, x) {
			return false
		}
	}
	for _, x := range b {
		if !slices.Contains(a, x) {
			return false
		}
	}
	return true
}

// decodeRolesBody decodes the body of PUT and PATCH /app/roles: the spec's
// array of roles, [{"roleName": "auditor", "roleActions": [...]}], or the
// object {"roles": [...]} with role_name and role_actions that ACL's
// programmability guide sends. At most MaxRolesPerRequest roles, each
// named once, none built-in, each with at most MaxRoleActions actions
// (repeats dropped).
func decodeRolesBody(body []byte) ([]roleJSON, error) {
	if !utf8.Valid(body) {
		return nil, invalidInput("The request body is not valid UTF-8.")
	}
	var roles []roleJSON
	item := func(raw json.RawMessage) error {
		r, err := decodeRoleObject(raw)
		if err != nil {
			return err
		}
		if slices.ContainsFunc(roles, func(o roleJSON) bool { return o.RoleName == r.RoleName }) {
			return invalidInput("Role %q appears more than once in the request body.", clip(r.RoleName))
		}
		roles = append(roles, r)
		return nil
	}
	decodeList := func(raw json.RawMessage) error {
		return decodeArray("roles", raw, 1, MaxRolesPerRequest, item)
	}
	trimmed := bytes.TrimSpace(body)
	if len(trimmed) > 0 && trimmed[0] == '[' {
		if !json.Valid(trimmed) {
			return nil, invalidInput("The request body is not valid JSON.")
		}
		if err := decodeList(trimmed); err != nil {
			return nil, err
		}
		return roles, nil
	}
	has := false
	err := decodeObject(body, map[string]func(json.RawMessage) error{
		"roles": func(raw json.RawMessage) error { has = true; return decodeList(raw) },
	})
	if err != nil {
		return nil, err
	}
	if !has {
		return nil, invalidInput("The request body must be an array of roles, or an object with a \"roles\" array.")
	}
	return roles, nil
}

// decodeRoleObject decodes one role of a roles body.
func decodeRoleObject(raw json.RawMessage) (roleJSON, error) {
	var r roleJSON
	var hasName, hasActions bool
	name := func(field string) func(json.RawMessage) error {
		return func(raw json.RawMessage) error {
			if hasName {
				return invalidInput("A role has both \"roleName\" and \"role_name\".")
			}
			hasName = true
			var err error
			r.RoleName, err = decodeRoleName(field, raw)
			return err
		}
	}
	actions := func(field string) func(json.RawMessage) error {
		return func(raw json.RawMessage) error {
			if hasActions {
				return invalidInput("A role has both \"roleActions\" and \"role_actions\".")
			}
			hasActions = true
			r.RoleActions = []string{}
			return decodeArray(field, raw, 0, MaxRoleActions, func(item json.RawMessage) error {
				a, err := decodeString(field, item, MaxActionBytes)
				if err == nil {
					err = checkName(field, "action name", a)
				}
				if err == nil && !slices.Contains(r.RoleActions, a) {
					r.RoleActions = append(r.RoleActions, a)
				}
				return err
			})
		}
	}
	if len(raw) == 0 || raw[0] != '{' {
		return r, invalidInput("Each role must be an object with \"roleName\" and \"roleActions\", not %s.", jsonType(raw))
	}
	err := decodeObject(raw, map[string]func(json.RawMessage) error{
		"roleName": name("roleName"), "role_name": name("role_name"),
		"roleActions": actions("roleActions"), "role_actions": actions("role_actions"),
	})
	switch {
	case err != nil:
		return r, err
	case !hasName:
		return r, invalidInput("A role has no \"roleName\".")
	case !hasActions:
		return r, invalidInput("Role %q has no \"roleActions\" array.", clip(r.RoleName))
	}
	if _, ok := auth.BuiltinRole(r.RoleName); ok {
		return r, builtinUnchangeable(r.RoleName)
	}
	return r, nil
}
