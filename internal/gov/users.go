package gov

import (
	"encoding/json"
	"slices"

	"github.com/ledgerd/ledgerd/internal/auth"
	"github.com/ledgerd/ledgerd/internal/ledger"
	"github.com/ledgerd/ledgerd/internal/tables"
)

// User is a ledger user and its roles.
type User struct {
	// ID is the user id: a certificate fingerprint (auth.CertificateUserID)
	// or a JWT oid or sub.
	ID string
	// Roles are the user's role names, in the order assigned: built-in
	// roles spelled as ACL spells them ("Reader"), user-defined ones as
	// defined. A user read from the state has at least one.
	Roles []string
	// Role is, in a Genesis whose Roles is empty, the user's one built-in
	// role. Users and UserOf set it to the highest built-in role among
	// Roles (RoleNone if the user holds only user-defined roles).
	Role auth.Role
}

// HighestBuiltin returns the highest built-in role among roles, RoleNone if
// there is none.
func HighestBuiltin(roles []string) auth.Role {
	best := auth.RoleNone
	for _, name := range roles {
		if r, ok := auth.BuiltinRole(name); ok {
			best = max(best, r)
		}
	}
	return best
}

// UserRoles returns the role names of user id in the committed state. A
// record that does not decode to at least one role name counts as no user
// at all, so that a damaged record never grants access; a role name that
// names no role grants nothing (the role table's lookup fails closed).
func UserRoles(st State, id string) ([]string, bool) {
	raw, ok := st.Get(tables.UsersMap, []byte(id))
	if !ok {
		return nil, false
	}
	return decodeUser(raw)
}

// UserOf returns user id in the committed state.
func UserOf(st State, id string) (User, bool) {
	roles, ok := UserRoles(st, id)
	if !ok {
		return User{}, false
	}
	return User{ID: id, Roles: roles, Role: HighestBuiltin(roles)}, true
}

// builtinRoleLists are the role lists of the records SetUser writes for one
// built-in role, shared and never modified, so that the lookup done on
// every request needs no JSON decoding and no allocation in the common
// case.
var builtinRoleLists = func() map[string][]string {
	m := map[string][]string{}
	for _, r := range []auth.Role{auth.RoleReader, auth.RoleContributor, auth.RoleAdministrator} {
		m[string(tables.Value(tables.UserInfo{AssignedRole: r.String()}))] = []string{r.String()}
	}
	return m
}()

// decodeUser decodes a user record: the single-role form written before
// multi-role users (and by the constitution's set_user), or the multi-role
// form. Built-in role names are returned in ACL's spelling.
func decodeUser(raw []byte) ([]string, bool) {
	if roles, ok := builtinRoleLists[string(raw)]; ok {
		return roles, true
	}
	var info tables.UserInfo
	if err := json.Unmarshal(raw, &info); err != nil {
		return nil, false
	}
	var roles []string
	switch {
	case info.AssignedRole != "" && len(info.AssignedRoles) == 0:
		roles = []string{info.AssignedRole}
	case info.AssignedRole == "" && len(info.AssignedRoles) > 0:
		roles = info.AssignedRoles
	default:
		return nil, false
	}
	roles = CanonicalRoles(roles)
	if slices.Contains(roles, "") {
		return nil, false
	}
	return roles, true
}

// CanonicalRoles returns roles with built-in role names spelled as ACL
// spells them and repeated names dropped (the first stays), in a new slice.
func CanonicalRoles(roles []string) []string {
	out := make([]string, 0, len(roles))
	for _, name := range roles {
		if r, ok := auth.BuiltinRole(name); ok {
			name = r.String()
		}
		if !slices.Contains(out, name) {
			out = append(out, name)
		}
	}
	return out
}

// Users returns every user with a valid record, ordered by id.
func Users(st State) []User {
	var users []User
	st.Range(tables.UsersMap, func(key, value []byte) bool {
		if roles, ok := decodeUser(value); ok {
			users = append(users, User{ID: string(key), Roles: roles, Role: HighestBuiltin(roles)})
		}
		return true
	})
	return users
}

// CountRole returns how many users hold the role of that name (among
// others).
func CountRole(st State, name string) int {
	n := 0
	for _, u := range Users(st) {
		if slices.Contains(u.Roles, name) {
			n++
		}
	}
	return n
}

// SetUser returns the write that gives user id exactly the roles roles (at
// least one; built-in names in any case). A user with one built-in role is
// written in the single-role form that ledgers before multi-role users
// hold, so that their records keep their bytes.
func SetUser(id string, roles ...string) ledger.MapWrites {
	roles = CanonicalRoles(roles)
	info := tables.UserInfo{AssignedRoles: roles}
	if len(roles) == 1 {
		if _, ok := auth.BuiltinRole(roles[0]); ok {
			info = tables.UserInfo{AssignedRole: roles[0]}
		}
	}
	value := tables.Value(info)
	return ledger.MapWrites{Name: tables.UsersMap, Writes: []ledger.KV{{Key: []byte(id), Value: value}}}
}

// RemoveUser returns the write that removes user id.
func RemoveUser(id string) ledger.MapWrites {
	return ledger.MapWrites{Name: tables.UsersMap, Removes: [][]byte{[]byte(id)}}
}
