package api_test

import (
	"crypto/sha256"
	"encoding/hex"
	"testing"

	"github.com/ledgerd/ledgerd/internal/attest"
	"github.com/ledgerd/ledgerd/internal/gov"
)

func TestLedgerIdentity(t *testing.T) {
	e := newEnv(t, envOptions{})
	// Any ledger id, with or without api-version, and no credentials.
	for _, path := range []string{"/ledgerIdentity/test-ledger", "/ledgerIdentity/localhost:8443?api-version=2022-05-13",
		"/ledgerIdentity/x?api-version=0.1-preview", "/ledgerIdentity/x?api-version=bogus"} {
		var body struct {
			LedgerID             string `json:"ledgerId"`
			LedgerTLSCertificate string `json:"ledgerTlsCertificate"`
		}
		e.anonymous.get(path).expect(200, "").decode(&body)
		if body.LedgerID != "test-ledger" || body.LedgerTLSCertificate != string(e.ids.Service.CertPEM) {
			t.Fatalf("%s: %+v", path, body)
		}
	}
}

func TestGovernanceReads(t *testing.T) {
	e := newEnv(t, envOptions{})
	for _, version := range []string{v01, v2022, vNewer} {
		var members struct {
			Members []struct {
				Certificate string `json:"certificate"`
				ID          string `json:"id"`
			} `json:"members"`
		}
		e.reader.get(q("/app/governance/members", version)).expect(200, "").decode(&members)
		sum := sha256.Sum256(e.memberDER)
		if len(members.Members) != 1 || members.Members[0].ID != hex.EncodeToString(sum[:]) ||
			members.Members[0].Certificate != certPEM(e.memberDER) {
			t.Fatalf("members %+v", members)
		}
		var constitution struct{ Digest, Script string }
		e.reader.get(q("/app/governance/constitution", version)).expect(200, "").decode(&constitution)
		if constitution.Script != gov.DefaultConstitution || constitution.Digest != gov.Digest(gov.DefaultConstitution) {
			t.Fatalf("constitution digest %s", constitution.Digest)
		}
		var quotes struct {
			CurrentNodeID string `json:"currentNodeId"`
			EnclaveQuotes map[string]struct {
				MREnclave    string `json:"mrenclave"`
				NodeID       string `json:"nodeId"`
				QuoteVersion string `json:"quoteVersion"`
				Raw          string `json:"raw"`
			} `json:"enclaveQuotes"`
		}
		e.reader.get(q("/app/enclaveQuotes", version)).expect(200, "").decode(&quotes)
		nodeID := e.ids.Node.ID
		qt, ok := quotes.EnclaveQuotes[nodeID]
		if quotes.CurrentNodeID != nodeID || !ok || qt.NodeID != nodeID || qt.QuoteVersion != "Insecure_Virtual" {
			t.Fatalf("quotes %+v", quotes)
		}
		// mrenclave is the measurement the quote binds (the SDK's
		// verify_service sample reads quote['mrenclave']).
		if qt.MREnclave == "" || qt.MREnclave != e.platform.Measurement() {
			t.Fatalf("mrenclave %q, want the platform's measurement %q", qt.MREnclave, e.platform.Measurement())
		}
		raw, err := hex.DecodeString(qt.Raw)
		if err != nil {
			t.Fatal(err)
		}
		rd, _ := attest.ReportData(&e.ids.Node.Key.PublicKey)
		if _, err := attest.VerifyVirtual(raw, rd, e.platform.Measurement()); err != nil {
			t.Fatalf("quote: %v", err)
		}
	}
}
