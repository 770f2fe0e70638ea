package main

import (
	"encoding/json"
	"testing"

	"github.com/ledgerd/ledgerd/internal/tables"
)

// TestTrustMemo: a node's record is parsed once, not for every Raft message
// (no allocation for a record seen before: fails if every call parses it),
// and a changed record (the node retired, then trusted again) is decided
// anew.
func TestTrustMemo(t *testing.T) {
	record := func(status string) []byte {
		b, err := json.Marshal(tables.NodeInfo{Status: status, Cert: "-----BEGIN CERTIFICATE-----\nMIIB...\n-----END CERTIFICATE-----\n"})
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	var m trustMemo
	trusted, retired := record(tables.NodeTrusted), record(tables.NodeRetired)
	if !m.trusted("n1", trusted) {
		t.Fatal("a Trusted record is not trusted")
	}
	if allocs := testing.AllocsPerRun(100, func() { m.trusted("n1", trusted) }); allocs != 0 {
		t.Fatalf("%v allocations a call for a record seen before: parsed again", allocs)
	}
	if m.trusted("n1", retired) {
		t.Fatal("a Retired record is still trusted")
	}
	if m.trusted("n2", nil) {
		t.Fatal("an unparsable record is trusted")
	}
	if !m.trusted("n1", trusted) || m.trusted("n1", retired) {
		t.Fatal("a changed record is not decided anew")
	}
}
