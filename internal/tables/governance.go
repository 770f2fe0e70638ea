package tables

// Governance and user tables. Values are JSON text unless noted.
const (
	// UsersMap holds ledger users: key = user id (certificate fingerprint
	// "AB:CD:..." or JWT oid/sub), value = {"assignedRole":"Reader"|"Contributor"|"Administrator"}.
	UsersMap = "public:ledgerd.users"
	// MembersCertsMap holds consortium members: key = member id (lowercase
	// hex SHA-256 of the DER certificate, CCF's pemToId), value = PEM.
	MembersCertsMap = "public:ccf.gov.members.certs"
	// MembersInfoMap holds each member's {"status":"Active"|"Accepted"}.
	MembersInfoMap = "public:ccf.gov.members.info"
	// ConstitutionMap is a singleton holding the JavaScript constitution
	// source (not JSON).
	ConstitutionMap = "public:ccf.gov.constitution"
)

// UserInfo is the value of UsersMap.
type UserInfo struct {
	AssignedRole string `json:"assignedRole"`
}
