package tables

import "encoding/json"

// Governance and user tables. Values are JSON text unless noted.
const (
	// UsersMap holds ledger users: key = user id (certificate fingerprint
	// "AB:CD:..." or JWT oid/sub), value = a UserInfo: a user holding one
	// built-in role is {"assignedRole":"Reader"|"Contributor"|"Administrator"}
	// (the only form before multi-role users, which the constitution's
	// set_user still writes), any other {"assignedRoles":["Reader","auditor"]}.
	UsersMap = "public:ledgerd.users"
	// RolesMap holds the user-defined roles (/app/roles): key = role name
	// (case-sensitive), value = a RoleInfo. The built-in roles are not
	// stored: their actions are fixed by the server.
	RolesMap = "public:ledgerd.roles"
	// MembersCertsMap holds consortium members: key = member id (lowercase
	// hex SHA-256 of the DER certificate, CCF's pemToId), value = PEM.
	MembersCertsMap = "public:ccf.gov.members.certs"
	// MembersInfoMap holds each member's {"status":"Active"|"Accepted"}.
	MembersInfoMap = "public:ccf.gov.members.info"
	// ConstitutionMap is a singleton holding the JavaScript constitution
	// source (not JSON).
	ConstitutionMap = "public:ccf.gov.constitution"
)

// UserInfo is the value of UsersMap: exactly one of AssignedRole (one
// built-in role) and AssignedRoles (any other set of roles) is set.
type UserInfo struct {
	AssignedRole  string   `json:"assignedRole,omitempty"`
	AssignedRoles []string `json:"assignedRoles,omitempty"`
}

// RoleInfo is the value of RolesMap: the ACL action names the role allows.
type RoleInfo struct {
	RoleActions []string `json:"roleActions"`
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

// NodeInfo is the value of NodesInfoMap (CCF's NodeInfo, the fields
// ledgerd uses): the node's certificate (PEM) and status, and, for a node
// that joined, what it sent (its certificate signing request, encryption
// key, quote and addresses) and its Raft member id (ledgerd's). Writers
// that change a node's record keep the fields they do not know (the
// constitution rewrites whole records).
type NodeInfo struct {
	Cert                      string           `json:"cert"`
	Status                    string           `json:"status"`
	CertificateSigningRequest string           `json:"certificate_signing_request,omitempty"`
	EncryptionPubKey          string           `json:"encryption_pub_key,omitempty"`
	QuoteInfo                 *NodeQuoteInfo   `json:"quote_info,omitempty"`
	RPCInterfaces             map[string]Iface `json:"rpc_interfaces,omitempty"`
	NodeToNodeInterface       *Iface           `json:"node_to_node_interface,omitempty"`
	RaftID                    uint64           `json:"raft_id,omitempty"`
}

// NodeQuoteInfo is a node's attestation as recorded (CCF's QuoteInfo).
type NodeQuoteInfo struct {
	Format string `json:"format"`
	Quote  []byte `json:"quote"`
}

// Iface is one network interface of a node (CCF's NodeInfoNetwork entry).
type Iface struct {
	BindAddress      string `json:"bind_address,omitempty"`
	PublishedAddress string `json:"published_address"`
}

// PrimaryRPCInterface is the name of a node's client interface in
// NodeInfo.RPCInterfaces, as CCF names its default one.
const PrimaryRPCInterface = "primary_rpc_interface"

// Node statuses beyond NodeTrusted, as CCF spells them.
const (
	NodePending = "Pending"
	NodeRetired = "Retired"
)

// Value returns the JSON value of a table entry: v marshalled. The values
// of this package marshal without error.
func Value(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic("tables: " + err.Error())
	}
	return b
}

// The governance engine's tables (CCF's names; CCF src/node/gov/handlers).
const (
	// ProposalsMap holds each proposal's body as submitted (JSON text):
	// key = proposal id.
	ProposalsMap = "public:ccf.gov.proposals"
	// ProposalsInfoMap holds each proposal's ProposalInfo: key = proposal id.
	ProposalsInfoMap = "public:ccf.gov.proposals_info"
	// HistoryMap holds, per member id, the last signed governance request
	// (the COSE_Sign1 bytes as received); the ledger keeps every version, so
	// who proposed, voted, withdrew and acked what is provable from it.
	HistoryMap = "public:ccf.gov.history"
	// RecentProposalsMap is CCF's replay window for proposals: key =
	// "<created_at, 10 digits>:<hex SHA-256 of the signature>", value = the
	// proposal id.
	RecentProposalsMap = "public:ccf.gov.cose_recent_proposals"
	// MemberAcksMap holds each member's MemberAck.
	MemberAcksMap = "public:ccf.gov.members.acks"
)

// Proposal states, as CCF spells them.
const (
	ProposalOpen      = "Open"
	ProposalAccepted  = "Accepted"
	ProposalWithdrawn = "Withdrawn"
	ProposalRejected  = "Rejected"
	ProposalFailed    = "Failed"
	ProposalDropped   = "Dropped"
)

// ProposalFailure is why a proposal Failed, or why a member's ballot
// failed to run (CCF's jsgov::Failure).
type ProposalFailure struct {
	Reason string  `json:"reason"`
	Trace  *string `json:"trace,omitempty"`
}

// ProposalInfo is the value of ProposalsInfoMap (CCF's jsgov::ProposalInfo):
// the proposer, the state, each member's ballot (JavaScript text), and, once
// the proposal has left Open, the votes the ballots gave and the ballots
// that failed to run.
type ProposalInfo struct {
	ProposerID   string                     `json:"proposer_id"`
	State        string                     `json:"state"`
	Ballots      map[string]string          `json:"ballots"`
	FinalVotes   map[string]bool            `json:"final_votes,omitempty"`
	VoteFailures map[string]ProposalFailure `json:"vote_failures,omitempty"`
	Failure      *ProposalFailure           `json:"failure,omitempty"`
}

// MemberAck is the value of MemberAcksMap: the state digest the member is
// to acknowledge (hex), as CCF's StateDigest.
type MemberAck struct {
	StateDigest string `json:"state_digest"`
}

// The join policy for virtual nodes (CCF's
// public:ccf.gov.nodes.virtual.*): keys are the allowed measurements and
// host data, written by the constitution's add_virtual_measurement and
// add_virtual_host_data.
const (
	VirtualMeasurementsMap = "public:ccf.gov.nodes.virtual.measurements"
	VirtualHostDataMap     = "public:ccf.gov.nodes.virtual.host_data"
)
