package auth

import "fmt"

// Role is a ledger user's role (acl-api.md §5). Roles are ordered: each
// role may do everything the roles below it may do.
type Role int

// The roles, lowest first. RoleNone is the zero value: no role at all.
const (
	// RoleNone is no role: it allows nothing.
	RoleNone Role = iota
	// RoleReader may read entries, receipts and service information.
	RoleReader
	// RoleContributor may also write entries.
	RoleContributor
	// RoleAdministrator may also manage users.
	RoleAdministrator
)

var roleNames = [...]string{
	RoleNone:          "None",
	RoleReader:        "Reader",
	RoleContributor:   "Contributor",
	RoleAdministrator: "Administrator",
}

// ParseRole parses a role name as ACL spells it on the wire: exactly
// "Reader", "Contributor" or "Administrator". Anything else, including
// other capitalisations and "None", is an error wrapping ErrUnknownRole.
func ParseRole(s string) (Role, error) {
	for r := RoleReader; r <= RoleAdministrator; r++ {
		if s == roleNames[r] {
			return r, nil
		}
	}
	return RoleNone, fmt.Errorf("%w %q: want Reader, Contributor or Administrator", ErrUnknownRole, clip(s))
}

// String returns the ACL spelling of r, "None" for RoleNone, and "Role(n)"
// for values that are not roles.
func (r Role) String() string {
	if r < RoleNone || r > RoleAdministrator {
		return fmt.Sprintf("Role(%d)", int(r))
	}
	return roleNames[r]
}

// Valid reports whether r is one of Reader, Contributor and Administrator.
func (r Role) Valid() bool { return r >= RoleReader && r <= RoleAdministrator }

// Allows reports whether a caller holding r may do something that needs the
// role need. It fails closed: if either r or need is not a valid role
// (RoleNone included), the answer is false.
func (r Role) Allows(need Role) bool {
	return r.Valid() && need.Valid() && r >= need
}

// MarshalText encodes r as its ACL name, so that a Role field marshals to
// JSON as "Reader", "Contributor" or "Administrator". Invalid roles are an
// error.
func (r Role) MarshalText() ([]byte, error) {
	if !r.Valid() {
		return nil, fmt.Errorf("%w: %v", ErrUnknownRole, r)
	}
	return []byte(r.String()), nil
}

// UnmarshalText decodes a role name with ParseRole.
func (r *Role) UnmarshalText(text []byte) error {
	role, err := ParseRole(string(text))
	if err != nil {
		return err
	}
	*r = role
	return nil
}
