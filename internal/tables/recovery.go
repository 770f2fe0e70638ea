package tables

// Recovery tables (CCF src/service/tables/members.h, config.h, shares.h),
// read and written by package recovery.
const (
	// MembersEncryptionKeysMap holds each recovery member's RSA encryption
	// public key: key = member id, value = PEM (PUBLIC KEY).
	MembersEncryptionKeysMap = "public:ccf.gov.members.encryption_public_keys"
	// ServiceConfigMap is a singleton holding CCF's ServiceConfiguration as
	// JSON ({"recovery_threshold": k, ...}).
	ServiceConfigMap = "public:ccf.gov.service.config"
	// RecoverySharesMap is a singleton holding CCF's RecoverySharesInfo as
	// JSON: the latest ledger secret wrapped with a one-time key, and that
	// key's shares, each encrypted to its recovery member.
	RecoverySharesMap = "public:ccf.internal.recovery_shares"
)
