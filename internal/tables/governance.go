package tables

import "encoding/json"

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

// Member statuses in MembersInfoMap, as CCF spells them.
const (
	// MemberActive is a member who may propose and vote.
	MemberActive = "Active"
	// MemberAccepted is a member added by governance who has not yet
	// acknowledged its state digest.
	MemberAccepted = "Accepted"
)

// MemberInfo is the value of MembersInfoMap.
type MemberInfo struct {
	Status string `json:"status"`
}

// ServiceOpen is the status of an open service in ServiceInfoMap.
const ServiceOpen = "Open"

// NodeTrusted is the status of a trusted node in NodesInfoMap.
const NodeTrusted = "Trusted"

// ServiceInfo is the value of ServiceInfoMap (CCF's ServiceInfo): the
// service certificate (PEM) and the service's status.
type ServiceInfo struct {
	Cert   string `json:"cert"`
	Status string `json:"status"`
}

// NodeInfo is the value of NodesInfoMap: the node's certificate (PEM) and
// its status.
type NodeInfo struct {
	Cert   string `json:"cert"`
	Status string `json:"status"`
}

// Value returns the JSON value of a table entry: v marshalled. The values
// of this package marshal without error.
func Value(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic("tables: " + err.Error())
	}
	return b
}
