package auth

import "fmt"

// Directory maps user ids to roles. The server backs it with the ledger's
// replicated user table; MapDirectory is a fixed one for tests and tools.
//
// Contract: Role is called with user ids as produced by this package
// (CertificateUserID, the oid or sub of a verified token, with its issuer's
// namespace) or normalised by
// NormalizeUserID; it must be safe for concurrent use and must not block on
// I/O, since it is called on every request.
type Directory interface {
	// Role returns the role assigned to userID, and false if userID is not
	// a ledger user.
	Role(userID string) (Role, bool)
}

// MapDirectory is a Directory backed by a map from user id to role. It must
// not be modified while in use.
type MapDirectory map[string]Role

// Role implements Directory.
func (d MapDirectory) Role(userID string) (Role, bool) {
	r, ok := d[userID]
	return r, ok
}

// Authorize checks that principal p holds at least the role need in dir. It
// returns an error wrapping ErrNotAllowed if p is not a ledger user or its
// role is too low, and nil otherwise.
func Authorize(dir Directory, p Principal, need Role) error {
	if p.ID == "" {
		return fmt.Errorf("%w: anonymous caller", ErrNotAllowed)
	}
	have, ok := dir.Role(p.ID)
	if !ok {
		return fmt.Errorf("%w: %s %q is not a ledger user", ErrNotAllowed, p.Kind, clip(p.ID))
	}
	if !have.Allows(need) {
		return fmt.Errorf("%w: %s %q has role %v, needs %v", ErrNotAllowed, p.Kind, clip(p.ID), have, need)
	}
	return nil
}
