package gov

import (
	"encoding/json"

	"github.com/ledgerd/ledgerd/internal/auth"
	"github.com/ledgerd/ledgerd/internal/ledger"
	"github.com/ledgerd/ledgerd/internal/tables"
)

// User is a ledger user and its role.
type User struct {
	// ID is the user id: a certificate fingerprint (auth.CertificateUserID)
	// or a JWT oid or sub.
	ID string
	// Role is the user's role.
	Role auth.Role
}

// UserRole returns the role of user id in the committed state. A record
// that does not decode to a valid role counts as no user at all, so that a
// damaged record never grants access.
func UserRole(st State, id string) (auth.Role, bool) {
	raw, ok := st.Get(tables.UsersMap, []byte(id))
	if !ok {
		return auth.RoleNone, false
	}
	return decodeUser(raw)
}

// encodedRoles are the records EncodeUser writes, so that the role lookup
// done on every request needs no JSON decoding in the common case.
var encodedRoles = func() map[string]auth.Role {
	m := map[string]auth.Role{}
	for _, r := range []auth.Role{auth.RoleReader, auth.RoleContributor, auth.RoleAdministrator} {
		b, _ := json.Marshal(tables.UserInfo{AssignedRole: r.String()})
		m[string(b)] = r
	}
	return m
}()

func decodeUser(raw []byte) (auth.Role, bool) {
	if r, ok := encodedRoles[string(raw)]; ok {
		return r, true
	}
	var info tables.UserInfo
	if err := json.Unmarshal(raw, &info); err != nil {
		return auth.RoleNone, false
	}
	r, err := auth.ParseRole(info.AssignedRole)
	if err != nil {
		return auth.RoleNone, false
	}
	return r, true
}

// Users returns every user with a valid record, ordered by id.
func Users(st State) []User {
	var users []User
	st.Range(tables.UsersMap, func(key, value []byte) bool {
		if r, ok := decodeUser(value); ok {
			users = append(users, User{ID: string(key), Role: r})
		}
		return true
	})
	return users
}

// CountRole returns how many users hold exactly role r.
func CountRole(st State, r auth.Role) int {
	n := 0
	for _, u := range Users(st) {
		if u.Role == r {
			n++
		}
	}
	return n
}

// SetUser returns the write that gives user id the role r. r must be valid.
func SetUser(id string, r auth.Role) ledger.MapWrites {
	value := tables.Value(tables.UserInfo{AssignedRole: r.String()})
	return ledger.MapWrites{Name: tables.UsersMap, Writes: []ledger.KV{{Key: []byte(id), Value: value}}}
}

// RemoveUser returns the write that removes user id.
func RemoveUser(id string) ledger.MapWrites {
	return ledger.MapWrites{Name: tables.UsersMap, Removes: [][]byte{[]byte(id)}}
}

// Directory is an auth.Directory backed by the users table of the committed
// state. It reads the state on every call, so a change is seen by the next
// request.
type Directory struct {
	State State
}

// Role implements auth.Directory.
func (d Directory) Role(userID string) (auth.Role, bool) { return UserRole(d.State, userID) }
