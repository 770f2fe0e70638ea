// Package gov holds what a ledgerd service is governed by, as CCF has it: the
// consortium of members (identified by certificate), the JavaScript
// constitution that judges their proposals, and the initial users. It builds
// the governance writes of the genesis transaction and reads them back from
// the committed state.
//
// Tables (see package tables):
//
//	public:ccf.gov.members.certs   member id -> PEM certificate
//	public:ccf.gov.members.info    member id -> {"status":"Active"}
//	public:ccf.gov.constitution    tables.SingletonKey -> JavaScript source
//	public:ledgerd.users           user id -> {"assignedRole":"Administrator"} (one built-in role)
//	                               or {"assignedRoles":["Reader","auditor"]}
//	public:ledgerd.roles           user-defined role name -> {"roleActions":[...]}
//
// A member id is CCF's pemToId: the lowercase hex SHA-256 of the DER
// certificate ([MemberID]). A certificate user's id is its upper-case,
// colon-separated SHA-256 fingerprint (auth.CertificateUserID).
package gov
