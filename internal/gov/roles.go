package gov

import (
	"encoding/json"

	"github.com/ledgerd/ledgerd/internal/ledger"
	"github.com/ledgerd/ledgerd/internal/tables"
)

// Role is a user-defined role: its name and the ACL action names it
// allows. The built-in roles are not stored (the api package's role table
// fixes their actions).
type Role struct {
	Name    string
	Actions []string
}

// RoleActions returns the actions of the user-defined role name in the
// committed state. A record that does not decode counts as no role.
func RoleActions(st State, name string) ([]string, bool) {
	raw, ok := st.Get(tables.RolesMap, []byte(name))
	if !ok {
		return nil, false
	}
	return decodeRole(raw)
}

func decodeRole(raw []byte) ([]string, bool) {
	var info tables.RoleInfo
	if err := json.Unmarshal(raw, &info); err != nil || info.RoleActions == nil {
		return nil, false
	}
	return info.RoleActions, true
}

// Roles returns every user-defined role with a valid record, ordered by
// name.
func Roles(st State) []Role {
	var roles []Role
	st.Range(tables.RolesMap, func(key, value []byte) bool {
		if actions, ok := decodeRole(value); ok {
			roles = append(roles, Role{Name: string(key), Actions: actions})
		}
		return true
	})
	return roles
}

// SetRole returns the write that defines the user-defined role name with
// exactly the actions actions.
func SetRole(name string, actions []string) ledger.MapWrites {
	value := tables.Value(tables.RoleInfo{RoleActions: actions})
	return ledger.MapWrites{Name: tables.RolesMap, Writes: []ledger.KV{{Key: []byte(name), Value: value}}}
}

// RemoveRole returns the write that removes the user-defined role name.
func RemoveRole(name string) ledger.MapWrites {
	return ledger.MapWrites{Name: tables.RolesMap, Removes: [][]byte{[]byte(name)}}
}
