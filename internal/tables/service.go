package tables

// ServiceConfigMap is CCF's service configuration (a singleton: key
// SingletonKey), written at genesis and changed by the constitution's
// set_recovery_threshold and set_service_configuration actions. Value:
// ServiceConfig.
const ServiceConfigMap = "public:ccf.gov.service.config"

// Service statuses in ServiceInfoMap, as CCF spells them (ServiceStatus).
// ServiceOpen is in governance.go.
const (
	// ServiceOpening: the service exists but its members have not opened
	// it; the data plane (/app/*) is refused, governance is served.
	ServiceOpening = "Opening"
	// ServiceRecovering: a recovered service waiting to be opened by its
	// members with the previous and next service identities.
	ServiceRecovering = "Recovering"
)

// ServiceConfig is the value of ServiceConfigMap (CCF's
// ServiceConfiguration, include/ccf/service/service_config.h, with the
// fields CCF 5 and 6 write).
type ServiceConfig struct {
	// RecoveryThreshold is how many recovery shares reconstruct the
	// ledger secret.
	RecoveryThreshold int `json:"recovery_threshold"`
	// Consensus is "CFT", the only consensus CCF and ledgerd run.
	Consensus string `json:"consensus"`
	// MaximumNodeCertificateValidityDays bounds the validity a proposal may
	// give a node certificate.
	MaximumNodeCertificateValidityDays int `json:"maximum_node_certificate_validity_days"`
	// MaximumServiceCertificateValidityDays bounds the validity a proposal
	// may give the service certificate.
	MaximumServiceCertificateValidityDays int `json:"maximum_service_certificate_validity_days"`
	// RecentCOSEProposalsWindowSize is how many recent signed proposals are
	// remembered to refuse replays.
	RecentCOSEProposalsWindowSize int `json:"recent_cose_proposals_window_size"`
	// ReconfigurationType is "OneTransaction" or "TwoTransaction".
	ReconfigurationType string `json:"reconfiguration_type"`
}

// DefaultServiceConfig is the configuration of a new service: CCF's
// defaults (recovery threshold 1, 365-day certificates, a window of 100
// recent proposals, one-transaction reconfiguration).
func DefaultServiceConfig() ServiceConfig {
	return ServiceConfig{
		RecoveryThreshold:                     1,
		Consensus:                             "CFT",
		MaximumNodeCertificateValidityDays:    365,
		MaximumServiceCertificateValidityDays: 365,
		RecentCOSEProposalsWindowSize:         100,
		ReconfigurationType:                   "OneTransaction",
	}
}
