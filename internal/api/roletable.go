package api

import (
	"slices"

	"github.com/ledgerd/ledgerd/internal/auth"
	"github.com/ledgerd/ledgerd/internal/gov"
)

// The role table: every role, built-in or user-defined, is a name and the
// set of ACL action names it allows, and every endpoint from accessReader
// on names the action it needs (endpoint.action). A user holds a set of
// roles and may call an endpoint if one of them allows its action.
//
// The built-in roles' actions are fixed: those of every endpoint whose
// access level the role meets (Reader: the accessReader endpoints';
// Contributor: also the accessContributor ones'; Administrator: all), so
// that the access levels of the endpoint table and the built-in roles'
// actions cannot disagree. User-defined roles are stored in the ledger
// (gov.Roles, /app/roles).

// builtinActions are the built-in roles' actions, indexed by role, and
// builtinActionLists the same as sorted lists, for GET /app/roles. They
// are set by init (a variable initialiser would make an initialisation
// cycle through the handlers), never modified.
var (
	builtinActions     map[auth.Role]map[string]bool
	builtinActionLists map[auth.Role][]string
)

func init() {
	builtinActions = builtinRoleActions(endpoints())
	builtinActionLists = map[auth.Role][]string{}
	for r, set := range builtinActions {
		for a := range set {
			builtinActionLists[r] = append(builtinActionLists[r], a)
		}
		slices.Sort(builtinActionLists[r])
	}
}

// builtinRoleActions derives the built-in roles' actions from eps.
func builtinRoleActions(eps []endpoint) map[auth.Role]map[string]bool {
	m := map[auth.Role]map[string]bool{}
	for _, r := range []auth.Role{auth.RoleReader, auth.RoleContributor, auth.RoleAdministrator} {
		m[r] = map[string]bool{}
		for _, ep := range eps {
			if ep.access >= accessReader && ep.action != "" && r >= ep.access.role() {
				m[r][ep.action] = true
			}
		}
	}
	return m
}

// roleActions returns the actions of the role name (a built-in role's in
// any letter case, a user-defined role's exactly), and false if there is
// no such role.
func roleActions(st gov.State, name string) ([]string, bool) {
	if r, ok := auth.BuiltinRole(name); ok {
		return builtinActionLists[r], true
	}
	return gov.RoleActions(st, name)
}

// rolesAllow reports whether one of the roles allows action. A role name
// that names no role allows nothing.
func rolesAllow(st gov.State, roles []string, action string) bool {
	for _, name := range roles {
		if r, ok := auth.BuiltinRole(name); ok {
			if builtinActions[r][action] {
				return true
			}
			continue
		}
		if actions, ok := gov.RoleActions(st, name); ok && slices.Contains(actions, action) {
			return true
		}
	}
	return false
}

// roleDirectory is the auth.Directory of a committed state: its users and
// the role table.
type roleDirectory struct{ st gov.State }

// Allows implements auth.Directory.
func (d roleDirectory) Allows(userID, action string) (isUser, allowed bool) {
	roles, ok := gov.UserRoles(d.st, userID)
	if !ok {
		return false, false
	}
	return true, rolesAllow(d.st, roles, action)
}
