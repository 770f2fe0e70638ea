package gov

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/ledgerd/ledgerd/internal/ledger"
	"github.com/ledgerd/ledgerd/internal/tables"
)

// serviceConfigWrite is the genesis write of the service configuration:
// cfg, or CCF's defaults if cfg is nil.
func serviceConfigWrite(cfg *tables.ServiceConfig) ledger.MapWrites {
	c := tables.DefaultServiceConfig()
	if cfg != nil {
		c = *cfg
	}
	return ledger.MapWrites{Name: tables.ServiceConfigMap,
		Writes: []ledger.KV{{Key: tables.SingletonKey, Value: tables.Value(c)}}}
}

// ServiceConfig returns the service configuration in the state.
func ServiceConfig(st State) (tables.ServiceConfig, bool) {
	raw, ok := st.Get(tables.ServiceConfigMap, tables.SingletonKey)
	if !ok {
		return tables.ServiceConfig{}, false
	}
	var c tables.ServiceConfig
	if json.Unmarshal(raw, &c) != nil {
		return tables.ServiceConfig{}, false
	}
	return c, true
}

// ServiceStatus returns the status of the service in the state (Opening,
// Open, Recovering), or "" before genesis.
func ServiceStatus(st State) string {
	raw, ok := st.Get(tables.ServiceInfoMap, tables.SingletonKey)
	if !ok {
		return ""
	}
	var info tables.ServiceInfo
	if json.Unmarshal(raw, &info) != nil {
		return ""
	}
	return info.Status
}

// OpenServiceWrites carries out the constitution's
// ccf.node.transitionServiceToOpen(previous, next) (CCF's
// transition_service_to_open): it returns the write that makes the service
// Open. next must be the current service certificate (PEM), as in CCF: the
// members open the service they have checked. previous is the service
// certificate before a disaster recovery; it is needed to open a
// Recovering service (issue 11) and ignored otherwise, as in CCF. A service
// that is already Open is an error, which fails the proposal.
//
// Unlike CCF, it does not require as many active recovery members as the
// recovery threshold: ledgerd's members need not hold a recovery key.
func OpenServiceWrites(st State, previous, next []byte) ([]ledger.MapWrites, error) {
	raw, ok := st.Get(tables.ServiceInfoMap, tables.SingletonKey)
	if !ok {
		return nil, errors.New("the service information is missing")
	}
	// Decode into a map too, so that fields ledgerd does not know are kept.
	var info tables.ServiceInfo
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(raw, &info); err != nil {
		return nil, fmt.Errorf("couldn't decode the service information: %w", err)
	}
	if err := json.Unmarshal(raw, &fields); err != nil {
		return nil, fmt.Errorf("couldn't decode the service information: %w", err)
	}
	to := tables.ServiceOpen
	switch info.Status {
	case tables.ServiceOpen:
		return nil, errors.New("the service is already open")
	case tables.ServiceRecovering:
		// CCF: the members accept the recovery; the service then waits
		// for the recovery shares, and opens once the private ledger is
		// recovered.
		if len(previous) == 0 {
			return nil, errors.New("opening a recovering service needs the previous service identity")
		}
		recorded, _ := st.Get(tables.PreviousServiceIdentityMap, tables.SingletonKey)
		if !bytes.Equal(bytes.TrimSpace(previous), bytes.TrimSpace(recorded)) {
			return nil, errors.New("service identity mismatch: the previous service identity is not the one this service recovered from")
		}
		to = tables.ServiceWaitingForShares
	case tables.ServiceWaitingForShares:
		return nil, errors.New("the service is already waiting for recovery shares")
	case tables.ServiceOpening:
	default:
		return nil, fmt.Errorf("a service that is %q cannot be opened", info.Status)
	}
	if !bytes.Equal(bytes.TrimSpace(next), bytes.TrimSpace([]byte(info.Cert))) {
		return nil, errors.New("service identity mismatch: the next service identity is not the current service certificate")
	}
	return statusWrites(fields, to)
}

// RecoveredServiceWrites returns the write that opens a service waiting
// for recovery shares once its private ledger is recovered (CCF opens it
// then, the members having accepted the recovery already).
func RecoveredServiceWrites(st State) ([]ledger.MapWrites, error) {
	raw, ok := st.Get(tables.ServiceInfoMap, tables.SingletonKey)
	if !ok {
		return nil, errors.New("the service information is missing")
	}
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(raw, &fields); err != nil {
		return nil, fmt.Errorf("couldn't decode the service information: %w", err)
	}
	if ServiceStatus(st) != tables.ServiceWaitingForShares {
		return nil, fmt.Errorf("the service is %s, not waiting for recovery shares", ServiceStatus(st))
	}
	return statusWrites(fields, tables.ServiceOpen)
}

func statusWrites(fields map[string]json.RawMessage, status string) ([]ledger.MapWrites, error) {
	fields["status"] = json.RawMessage(`"` + status + `"`)
	value, err := json.Marshal(fields)
	if err != nil {
		return nil, err
	}
	return []ledger.MapWrites{{Name: tables.ServiceInfoMap,
		Writes: []ledger.KV{{Key: tables.SingletonKey, Value: value}}}}, nil
}
