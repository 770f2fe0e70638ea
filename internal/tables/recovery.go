package tables

// Recovery tables (CCF src/service/tables/members.h, shares.h), read and
// written by package recovery (which also reads ServiceConfigMap).
const (
	// MembersEncryptionKeysMap holds each recovery member's RSA encryption
	// public key: key = member id, value = PEM (PUBLIC KEY).
	MembersEncryptionKeysMap = "public:ccf.gov.members.encryption_public_keys"
	// RecoverySharesMap is a singleton holding CCF's RecoverySharesInfo as
	// JSON: the latest ledger secret wrapped with a one-time key, and that
	// key's shares, each encrypted to its recovery member.
	RecoverySharesMap = "public:ccf.internal.recovery_shares"
)
