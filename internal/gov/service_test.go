package gov_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/ledgerd/ledgerd/internal/gov"
	"github.com/ledgerd/ledgerd/internal/ledger"
	"github.com/ledgerd/ledgerd/internal/tables"
)

func TestGenesisServiceConfig(t *testing.T) {
	m, _ := memberPEM(t)
	ws, err := gov.Genesis{Members: [][]byte{m}}.Writes()
	if err != nil {
		t.Fatal(err)
	}
	st := mapState{}
	st.apply(ws)
	raw, ok := st.Get(tables.ServiceConfigMap, tables.SingletonKey)
	if !ok {
		t.Fatal("no service configuration at genesis")
	}
	var got map[string]any
	if err := json.Unmarshal(raw, &got); err != nil {
		t.Fatal(err)
	}
	want := map[string]any{"recovery_threshold": 1.0, "consensus": "CFT", "maximum_node_certificate_validity_days": 365.0,
		"maximum_service_certificate_validity_days": 365.0, "recent_cose_proposals_window_size": 100.0,
		"reconfiguration_type": "OneTransaction"}
	if len(got) != len(want) {
		t.Fatalf("service configuration %s", raw)
	}
	for k, v := range want {
		if got[k] != v {
			t.Fatalf("service configuration %s: %s is %v, want %v", raw, k, got[k], v)
		}
	}
	cfg := tables.DefaultServiceConfig()
	cfg.RecoveryThreshold = 2
	ws, err = gov.Genesis{Members: [][]byte{m}, ServiceConfig: &cfg}.Writes()
	if err != nil {
		t.Fatal(err)
	}
	st.apply(ws)
	if c, ok := gov.ServiceConfig(st); !ok || c.RecoveryThreshold != 2 {
		t.Fatalf("configured threshold: %+v %v", c, ok)
	}
	cfg.RecoveryThreshold = 0
	if _, err := (gov.Genesis{Members: [][]byte{m}, ServiceConfig: &cfg}).Writes(); err == nil {
		t.Fatal("threshold 0 accepted")
	}
}

func serviceState(status, cert string) mapState {
	st := mapState{}
	info := `{"cert":` + string(must(json.Marshal(cert))) + `,"status":"` + status + `","previous_service_identity_version":7}`
	st.apply([]ledger.MapWrites{{Name: tables.ServiceInfoMap, Writes: []ledger.KV{{Key: tables.SingletonKey, Value: []byte(info)}}}})
	return st
}

func must(b []byte, err error) []byte {
	if err != nil {
		panic(err)
	}
	return b
}

func TestOpenServiceWrites(t *testing.T) {
	cert, _ := memberPEM(t) // any certificate serves as the service's
	other, _ := memberPEM(t)
	st := serviceState("Opening", string(cert))
	if _, err := gov.OpenServiceWrites(st, nil, other); err == nil || !strings.Contains(err.Error(), "service identity mismatch") {
		t.Fatalf("another certificate: %v", err)
	}
	if _, err := gov.OpenServiceWrites(st, nil, nil); err == nil {
		t.Fatal("no next identity accepted")
	}
	if gov.ServiceStatus(st) != "Opening" {
		t.Fatal("status")
	}
	ws, err := gov.OpenServiceWrites(st, nil, append([]byte("\n"), cert...))
	if err != nil {
		t.Fatal(err)
	}
	st.apply(ws)
	if got := gov.ServiceStatus(st); got != "Open" {
		t.Fatalf("status %q after opening", got)
	}
	raw, _ := st.Get(tables.ServiceInfoMap, tables.SingletonKey)
	var info map[string]any
	json.Unmarshal(raw, &info)
	if info["cert"] != string(cert) || info["previous_service_identity_version"] != 7.0 {
		t.Fatalf("opening lost fields: %s", raw)
	}
	if _, err := gov.OpenServiceWrites(st, nil, cert); err == nil || !strings.Contains(err.Error(), "already open") {
		t.Fatalf("opened twice: %v", err)
	}

	st = serviceState("Recovering", string(cert))
	if _, err := gov.OpenServiceWrites(st, nil, cert); err == nil || !strings.Contains(err.Error(), "previous service identity") {
		t.Fatalf("recovering without previous: %v", err)
	}
	if _, err := gov.OpenServiceWrites(st, other, cert); err == nil || !strings.Contains(err.Error(), "mismatch") {
		t.Fatalf("recovering with a previous identity it did not recover from: %v", err)
	}
	st.apply([]ledger.MapWrites{{Name: tables.PreviousServiceIdentityMap, Writes: []ledger.KV{{Key: tables.SingletonKey, Value: other}}}})
	ws, err = gov.OpenServiceWrites(st, other, cert)
	if err != nil || len(ws) != 1 {
		t.Fatalf("recovering with previous: %v", err)
	}
	// CCF: accepting the recovery makes the service wait for the shares.
	st.apply(ws)
	if got := gov.ServiceStatus(st); got != tables.ServiceWaitingForShares {
		t.Fatalf("status %q after accepting the recovery", got)
	}
	if ws, err = gov.RecoveredServiceWrites(st); err != nil {
		t.Fatal(err)
	}
	st.apply(ws)
	if got := gov.ServiceStatus(st); got != "Open" {
		t.Fatalf("status %q after the private recovery", got)
	}
	if _, err := gov.OpenServiceWrites(mapState{}, nil, cert); err == nil {
		t.Fatal("opened a service without information")
	}
}
