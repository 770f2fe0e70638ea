package api_test

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ledgerd/ledgerd/internal/audit"
	"github.com/ledgerd/ledgerd/internal/gov"
	"github.com/ledgerd/ledgerd/internal/recovery"
	"github.com/ledgerd/ledgerd/internal/tables"
)

// actionProposal is a proposal of one action.
func actionProposal(name string, args any) string {
	a := map[string]any{"name": name}
	if args != nil {
		a["args"] = args
	}
	b, _ := json.Marshal(map[string]any{"actions": []any{a}})
	return string(b)
}

// pass proposes and votes a one-action proposal on a one-member service.
func (e *env) pass(name string, args any) govProposal {
	e.t.Helper()
	p := e.proposeOK(0, actionProposal(name, args))
	got := e.voteOK(0, p.ProposalID, yesBallot)
	if got.ProposalState != "Accepted" {
		e.t.Fatalf("%s: %+v (failure %+v)", name, got, got.Failure)
	}
	return got
}

// memberShare decrypts the member's recovery share.
func (e *env) memberShare(priv []byte) []byte {
	e.t.Helper()
	id := gov.MemberID(e.memberDER)
	got := e.anonymous.get(q("/gov/recovery/encrypted-shares/"+id, vGov)).expect(200, "").object()
	enc, err := base64.StdEncoding.DecodeString(got["encryptedShare"].(string))
	if err != nil {
		e.t.Fatal(err)
	}
	key, err := recovery.ParsePrivateKey(priv)
	if err != nil {
		e.t.Fatal(err)
	}
	share, err := recovery.DecryptShare(key, enc)
	if err != nil {
		e.t.Fatal(err)
	}
	return share
}

// TestGovLedgerRekey: trigger_ledger_rekey over HTTPS; entries written
// before and after read back, the recovery shares now recover the new
// secret, and the audit authenticates every entry with the secret of its
// seqno.
func TestGovLedgerRekey(t *testing.T) {
	priv, pub, err := recovery.NewEncryptionKey()
	if err != nil {
		t.Fatal(err)
	}
	e := newEnv(t, envOptions{memberEncryptionKey: pub})
	before := e.write(e.contributor, v2022, "", "before the rekey")
	if secret, err := recovery.Recover([][]byte{e.memberShare(priv)}, e.node.Reader.State()); err != nil || !bytes.Equal(secret, e.ids.LedgerSecret) {
		t.Fatalf("share before the rekey: %v", err)
	}
	e.pass("trigger_ledger_rekey", nil)
	after := e.write(e.contributor, v2022, "", "after the rekey")
	e.commit(after)
	for id, want := range map[string]string{before.String(): "before the rekey", after.String(): "after the rekey"} {
		var got struct {
			Entry struct {
				Contents string `json:"contents"`
			} `json:"entry"`
			State string `json:"state"`
		}
		e.reader.get(q("/app/transactions/"+id, v2022)).expect(200, "").decode(&got)
		if got.State != "Ready" || got.Entry.Contents != want {
			t.Fatalf("%s: %+v, want %q", id, got, want)
		}
	}
	latest := e.node.Reader.LatestLedgerSecret()
	if bytes.Equal(latest, e.ids.LedgerSecret) {
		t.Fatal("the latest ledger secret is still the first one")
	}
	if secret, err := recovery.Recover([][]byte{e.memberShare(priv)}, e.node.Reader.State()); err != nil || !bytes.Equal(secret, latest) {
		t.Fatalf("the share after the rekey does not recover the new secret: %v", err)
	}
	keys, err := tables.NewKeyring(e.ids.LedgerSecret, e.ids.Service.Key)
	if err != nil {
		t.Fatal(err)
	}
	rep, err := audit.Dir(filepath.Join(e.dir, "ledger"), audit.Options{ServiceCert: e.ids.Service.Cert, Keyring: keys, Live: true})
	if err != nil || !rep.Authenticated || rep.Rekeys != 1 {
		t.Fatalf("audit: %+v, %v", rep, err)
	}
}

// TestGovTriggerLedgerChunk: the chunk file ends after the next signature.
func TestGovTriggerLedgerChunk(t *testing.T) {
	e := newEnv(t, envOptions{})
	chunks := func() []string {
		names, _ := filepath.Glob(filepath.Join(e.dir, "ledger", "ledger_*"))
		return names
	}
	n := len(chunks())
	e.pass("trigger_ledger_chunk", nil)
	e.commit(e.write(e.contributor, v2022, "", "next"))
	waitFor(t, "a new chunk", func() bool { return len(chunks()) > n })
	var committed int
	for _, c := range chunks() {
		if strings.HasSuffix(c, ".committed") {
			committed++
		}
	}
	if committed == 0 {
		t.Fatalf("no chunk ended: %v", chunks())
	}
}

// TestGovTransitionServiceToOpen: a service started Opening refuses the
// data plane until its members open it.
func TestGovTransitionServiceToOpen(t *testing.T) {
	e := newEnv(t, envOptions{startOpening: true})
	e.contributor.post(q("/app/transactions", v2022), map[string]string{"contents": "x"}).expect(404, "FrontendNotOpen")
	cert := string(e.ids.Service.CertPEM)
	// The wrong identity fails the proposal, and the service stays Opening.
	p := e.proposeOK(0, actionProposal("transition_service_to_open", map[string]any{"next_service_identity": string(e.members[0].pem)}))
	if got := e.voteOK(0, p.ProposalID, yesBallot); got.ProposalState != "Failed" {
		t.Fatalf("opening with the wrong identity: %+v", got)
	}
	e.pass("transition_service_to_open", map[string]any{"next_service_identity": cert})
	var info struct{ Status string }
	e.anonymous.get("/gov/service/info"+govV).expect(200, "").decode(&info)
	if info.Status != "Open" {
		t.Fatalf("service %q after transition_service_to_open", info.Status)
	}
	e.write(e.contributor, v2022, "", "open for business")
}

// TestGovSetMemberWithRecoveryKey: a recovery member added by governance
// gets a share once it has acked (CCF refreshes the shares then), and with
// threshold 2 the two shares recover the secret and one does not.
func TestGovSetMemberWithRecoveryKey(t *testing.T) {
	priv0, pub0, err := recovery.NewEncryptionKey()
	if err != nil {
		t.Fatal(err)
	}
	priv1, pub1, err := recovery.NewEncryptionKey()
	if err != nil {
		t.Fatal(err)
	}
	e := newEnv(t, envOptions{memberEncryptionKey: pub0})
	newMember := newCredential(t, "recovery member")
	key, kid := newMember.memberKey()
	e.pass("set_member", map[string]any{"cert": string(newMember.pem), "encryption_pub_key": string(pub1)})
	e.anonymous.get(q("/gov/recovery/encrypted-shares/"+kid, vGov)).expect(404, "ResourceNotFound")
	var d struct{ MemberID, StateDigest string }
	e.govPost("/gov/members/state-digests/"+kid+":update", govMsg{key: key, kid: kid, msgType: "state_digest"}.sign(t)).expect(200, "").decode(&d)
	body, _ := json.Marshal(map[string]string{"stateDigest": d.StateDigest})
	e.govPost("/gov/members/state-digests/"+kid+":ack", govMsg{key: key, kid: kid, msgType: "ack", payload: body}.sign(t)).expect(204, "")
	got := e.anonymous.get(q("/gov/recovery/encrypted-shares/"+kid, vGov)).expect(200, "").object()
	enc, _ := base64.StdEncoding.DecodeString(got["encryptedShare"].(string))
	k1, err := recovery.ParsePrivateKey(priv1)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := recovery.DecryptShare(k1, enc); err != nil {
		t.Fatalf("the new recovery member's share after its ack: %v", err)
	}
	// Threshold 2: both shares are needed. (Two Active members now: the
	// proposal needs both votes.)
	p := e.proposeOK(0, actionProposal("set_recovery_threshold", map[string]any{"recovery_threshold": 2}))
	e.voteOK(0, p.ProposalID, yesBallot)
	body, _ = json.Marshal(map[string]string{"ballot": yesBallot})
	var r govProposal
	e.govPost("/gov/members/proposals/"+p.ProposalID+"/ballots/"+kid+":submit",
		govMsg{key: key, kid: kid, msgType: "ballot", proposalID: p.ProposalID, payload: body}.sign(t)).expect(200, "").decode(&r)
	if r.ProposalState != "Accepted" {
		t.Fatalf("set_recovery_threshold: %+v %+v", r, r.Failure)
	}
	share0 := e.memberShare(priv0)
	enc, _ = base64.StdEncoding.DecodeString(e.anonymous.get(q("/gov/recovery/encrypted-shares/"+kid, vGov)).expect(200, "").object()["encryptedShare"].(string))
	share1, err := recovery.DecryptShare(k1, enc)
	if err != nil {
		t.Fatal(err)
	}
	st := e.node.Reader.State()
	if secret, err := recovery.Recover([][]byte{share0, share1}, st); err != nil || !bytes.Equal(secret, e.ids.LedgerSecret) {
		t.Fatalf("two shares of two: %v", err)
	}
	if secret, err := recovery.Recover([][]byte{share0}, st); err == nil && bytes.Equal(secret, e.ids.LedgerSecret) {
		t.Fatal("one share of two recovered the secret")
	}
}

// TestGovDefaultActions: the remaining default actions over HTTPS, each
// with an effect read back through the governance and ACL APIs.
func TestGovDefaultActions(t *testing.T) {
	priv, pub, err := recovery.NewEncryptionKey()
	if err != nil {
		t.Fatal(err)
	}
	e := newEnv(t, envOptions{memberEncryptionKey: pub})
	get := func(path string) map[string]any {
		t.Helper()
		return e.anonymous.get(path+govV).expect(200, "").object()
	}
	memberID := gov.MemberID(e.memberDER)
	nodeID := e.ids.Node.ID

	e.pass("set_member_data", map[string]any{"member_id": memberID, "member_data": map[string]any{"team": "audit"}})
	if md, _ := get("/gov/service/members/" + memberID)["memberData"].(map[string]any); md["team"] != "audit" {
		t.Fatalf("set_member_data: %v", md)
	}

	e.pass("set_node_data", map[string]any{"node_id": nodeID, "node_data": map[string]any{"rack": 7}})
	if nd, _ := get("/gov/service/nodes/" + nodeID)["nodeData"].(map[string]any); nd["rack"] != float64(7) {
		t.Fatalf("set_node_data: %v", nd)
	}
	e.pass("transition_node_to_trusted", map[string]any{"node_id": nodeID, "valid_from": time.Now().UTC().Format("20060102150405Z")}) // already Trusted: nothing to do
	if s := get("/gov/service/nodes/" + nodeID)["status"]; s != "Trusted" {
		t.Fatalf("node %v", s)
	}

	e.pass("set_user", map[string]any{"user_id": "jwt-subject-1", "role": "Reader"})
	e.admin.get(q("/app/users/jwt-subject-1", v2022)).expect(200, "")
	e.pass("remove_user", map[string]any{"user_id": "jwt-subject-1"})
	e.admin.get(q("/app/users/jwt-subject-1", v2022)).expect(404, "")

	extra := newCredential(t, "short-lived member")
	_, extraID := extra.memberKey()
	e.pass("set_member", map[string]any{"cert": string(extra.pem)})
	get("/gov/service/members/" + extraID)
	e.pass("remove_member", map[string]any{"member_id": extraID})
	e.anonymous.get("/gov/service/members/"+extraID+govV).expect(404, "")

	e.pass("add_virtual_measurement", map[string]any{"measurement": "abc123"})
	e.pass("add_virtual_host_data", map[string]any{"host_data": "beef"})
	virtual := get("/gov/service/join-policy")["virtual"].(map[string]any)
	if fmt.Sprint(virtual["measurements"]) != "[abc123]" || fmt.Sprint(virtual["hostData"]) != "[beef]" {
		t.Fatalf("join policy %v", virtual)
	}
	e.pass("remove_virtual_measurement", map[string]any{"measurement": "abc123"})
	if virtual := get("/gov/service/join-policy")["virtual"].(map[string]any); fmt.Sprint(virtual["measurements"]) != "[]" {
		t.Fatalf("join policy after removal %v", virtual)
	}

	before := e.anonymous.get(q("/gov/recovery/encrypted-shares/"+memberID, vGov)).expect(200, "").object()["encryptedShare"]
	e.pass("trigger_recovery_shares_refresh", nil)
	if after := e.anonymous.get(q("/gov/recovery/encrypted-shares/"+memberID, vGov)).expect(200, "").object()["encryptedShare"]; after == before {
		t.Fatal("trigger_recovery_shares_refresh left the share as it was")
	}
	if secret, err := recovery.Recover([][]byte{e.memberShare(priv)}, e.node.Reader.State()); err != nil || !bytes.Equal(secret, e.ids.LedgerSecret) {
		t.Fatalf("refreshed share: %v", err)
	}
	e.pass("set_recovery_threshold", map[string]any{"recovery_threshold": 1})
	e.pass("trigger_snapshot", nil)

	e.pass("set_service_certificate_validity", map[string]any{"valid_from": time.Now().UTC().Format("20060102150405Z"), "validity_period_days": 30})
	certPEM := get("/gov/service/info")["certificate"].(string)
	b, _ := pem.Decode([]byte(certPEM))
	if b == nil {
		t.Fatalf("service certificate %q", certPEM)
	}
	cert, err := x509.ParseCertificate(b.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	if !cert.PublicKey.(*ecdsa.PublicKey).Equal(&e.ids.Service.Key.PublicKey) || cert.NotAfter.Sub(cert.NotBefore) != 30*24*time.Hour ||
		certPEM == string(e.ids.Service.CertPEM) {
		t.Fatalf("renewed service certificate: %v to %v", cert.NotBefore, cert.NotAfter)
	}
	e.pass("set_ca_cert_bundle", map[string]any{"name": "corp", "cert_bundle": string(e.ids.Service.CertPEM)})
	if _, ok := e.node.State().Get("public:ccf.gov.tls.ca_cert_bundles", []byte("corp")); !ok {
		t.Fatal("set_ca_cert_bundle wrote nothing")
	}
	e.pass("remove_ca_cert_bundle", map[string]any{"name": "corp"})

	// A node without a certificate signing request (a single node that did
	// not join) cannot be re-endorsed: the proposal fails and says why.
	p := e.proposeOK(0, actionProposal("set_node_certificate_validity", map[string]any{"node_id": nodeID, "valid_from": time.Now().UTC().Format("20060102150405Z"), "validity_period_days": 30}))
	if got := e.voteOK(0, p.ProposalID, yesBallot); got.ProposalState != "Failed" || !strings.Contains(got.Failure.Reason, "certificate signing request") {
		t.Fatalf("set_node_certificate_validity: %+v", got)
	}
}
