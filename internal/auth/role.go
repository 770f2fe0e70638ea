package auth

import "fmt"

// Role is one of ACL's built-in roles (acl-api.md §5). What a role allows is
// a set of actions (the api package's role table); a user may hold several
// roles, built-in or user-defined, and is allowed the union of their
// actions. The constants are ordered so that each built-in role allows what
// the ones below it allow, which the role table checks.
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
