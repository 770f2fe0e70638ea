package auth

import (
	"fmt"
	"strings"
)

// Directory answers, for a user id, whether it is a ledger user and whether
// one of its roles allows an action (an ACL action name such as
// ActionAppend). The server backs it with the ledger's replicated user and
// role tables; MapDirectory is a fixed one for tests and tools.
//
// Contract: Allows is called with user ids as produced by this package
// (CertificateUserID, the oid or sub of a verified token, with its issuer's
// namespace) or normalised by NormalizeUserID; it must be safe for
// concurrent use and must not block on I/O, since it is called on every
// request.
type Directory interface {
	// Allows reports whether userID is a ledger user, and whether the union
	// of its roles' actions contains action.
	Allows(userID, action string) (isUser, allowed bool)
}

// MapDirectory is a Directory backed by a map from user id to the actions
// its roles allow. It must not be modified while in use.
type MapDirectory map[string][]string

// Allows implements Directory.
func (d MapDirectory) Allows(userID, action string) (bool, bool) {
	actions, ok := d[userID]
	if !ok {
		return false, false
	}
	for _, a := range actions {
		if a == action {
			return true, true
		}
	}
	return true, false
}

// Authorize checks that one of principal p's roles in dir allows action.
// It returns an error wrapping ErrNotAllowed if p is not a ledger user or
// none of its roles allows the action (an empty action is never allowed),
// and nil otherwise.
func Authorize(dir Directory, p Principal, action string) error {
	if p.ID == "" {
		return fmt.Errorf("%w: anonymous caller", ErrNotAllowed)
	}
	if action == "" {
		return fmt.Errorf("%w: the operation names no action", ErrNotAllowed)
	}
	isUser, allowed := dir.Allows(p.ID, action)
	switch {
	case !isUser:
		return fmt.Errorf("%w: %s %q is not a ledger user", ErrNotAllowed, p.Kind, clip(p.ID))
	case !allowed:
		return fmt.Errorf("%w: no role of %s %q allows %s", ErrNotAllowed, p.Kind, clip(p.ID), action)
	}
	return nil
}

// ACL's action names (what a role allows; GET /app/roles lists them). The
// names are those of ACL's built-in role definitions; the user-defined
// function actions are ledgerd's, in the same scheme, as ACL publishes
// none.
const (
	actionPrefix = "Microsoft.ConfidentialLedger/ledger/"

	ActionAppend           = actionPrefix + "append"
	ActionRead             = actionPrefix + "read"
	ActionHistoricalQuery  = actionPrefix + "historicalQuery"
	ActionReceiptsRead     = actionPrefix + "receipts/read"
	ActionStatusRead       = actionPrefix + "transactions/status/read"
	ActionCollectionsRead  = actionPrefix + "collections/read"
	ActionConstitutionRead = actionPrefix + "governance/constitution/read"
	ActionMembersRead      = actionPrefix + "governance/members/read"
	ActionEnclavesRead     = actionPrefix + "enclaves/read"
	ActionUsersReadAll     = actionPrefix + "users/readall"
	ActionUsersRead        = actionPrefix + "users/read"
	ActionUsersWrite       = actionPrefix + "users/write"
	ActionUsersDelete      = actionPrefix + "users/delete"
	ActionRolesRead        = actionPrefix + "roleDefinitions/read"
	ActionRolesWrite       = actionPrefix + "roleDefinitions/write"
	ActionRolesDelete      = actionPrefix + "roleDefinitions/delete"
	ActionEndpointsRead    = actionPrefix + "endpoints/read"
	ActionEndpointsWrite   = actionPrefix + "endpoints/write"
	ActionFunctionsRead    = actionPrefix + "userDefinedFunctions/read"
	ActionFunctionsWrite   = actionPrefix + "userDefinedFunctions/write"
	ActionFunctionsDelete  = actionPrefix + "userDefinedFunctions/delete"
	ActionFunctionsExecute = actionPrefix + "userDefinedFunctions/execute"
)

// BuiltinRole returns the built-in role a role name names. Built-in role
// names are case-insensitive, as in ACL ("reader" is Reader); every other
// name (ok false) is a user-defined role's, which is case-sensitive.
func BuiltinRole(name string) (Role, bool) {
	for r := RoleReader; r <= RoleAdministrator; r++ {
		if strings.EqualFold(name, roleNames[r]) {
			return r, true
		}
	}
	return RoleNone, false
}
