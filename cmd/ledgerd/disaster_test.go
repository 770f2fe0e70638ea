package main

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"io"
	"math/big"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ledgerd/ledgerd/client"
	"github.com/ledgerd/ledgerd/internal/recovery"
	"github.com/ledgerd/ledgerd/internal/testbin"
	"github.com/ledgerd/ledgerd/receipt"
)

// TestDisasterRecovery: a one-node service with two recovery members and a
// recovery threshold of 2 takes writes and is killed; its ledger chunks and
// service.pem are copied to a new directory, `ledgerd --recover` starts a
// new service over them (Recovering: /app refused), the members accept the
// recovery (transition_service_to_open with the previous and next
// identities: WaitingForRecoveryShares), one share leaves the private
// domain unreadable, a wrong share is refused with nothing kept, two
// shares recover it: the service opens, the old entries read back, writes
// work, and receipts of old and new transactions verify against the NEW
// service certificate (old ones through serviceEndorsements). The recovered
// secrets survive a restart, and the shares are never in the ledger in
// clear.
func TestDisasterRecovery(t *testing.T) {
	bin := testbin.Command(t, "", "github.com/ledgerd/ledgerd/cmd/ledgerd")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	old := filepath.Join(t.TempDir(), "old")
	p := startLedgerd(t, bin, "--data", old)
	base := "https://" + p.addr
	m0 := memberClient(t, base, filepath.Join(old, memberFile), filepath.Join(old, "service.pem"))

	// A second recovery member, then a threshold of 2.
	m1Dir := t.TempDir()
	m1Cred := writeMemberCred(t, m1Dir)
	m1EncPriv, m1EncPub, err := recovery.NewEncryptionKey()
	if err != nil {
		t.Fatal(err)
	}
	m1EncPrivPath := filepath.Join(m1Dir, "enc.pem")
	os.WriteFile(m1EncPrivPath, m1EncPriv, 0o600)
	certPEM, _ := os.ReadFile(m1Cred)
	certOnly := pemBlocks(certPEM, "CERTIFICATE")
	pass(t, ctx, m0, client.Action{Name: "set_member", Args: map[string]any{"cert": certOnly, "encryption_pub_key": string(m1EncPub)}})
	m1 := memberClient(t, base, m1Cred, filepath.Join(old, "service.pem"))
	d, err := m1.UpdateStateDigest(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := m1.AckStateDigest(ctx, d.StateDigest); err != nil {
		t.Fatal(err)
	}
	// A third member, with no recovery key: no share.
	m2Dir := t.TempDir()
	m2Cred := writeMemberCred(t, m2Dir)
	pass(t, ctx, m0, client.Action{Name: "set_member", Args: map[string]any{"cert": pemBlocks(mustRead(t, m2Cred), "CERTIFICATE")}}, m1)
	m2 := memberClient(t, base, m2Cred, filepath.Join(old, "service.pem"))
	if d, err = m2.UpdateStateDigest(ctx); err != nil {
		t.Fatal(err)
	}
	if err := m2.AckStateDigest(ctx, d.StateDigest); err != nil {
		t.Fatal(err)
	}
	pass(t, ctx, m0, client.Action{Name: "set_recovery_threshold", Args: map[string]any{"recovery_threshold": 2}}, m1)

	admin := adminHTTP(t, filepath.Join(old, "service.pem"), filepath.Join(old, "admin.pem"))
	var ids []string
	for i := 0; i < 5; i++ {
		status, h, body := call(t, admin, "POST", base+"/app/transactions?api-version=2022-05-13", `{"contents":"before-`+string(rune('a'+i))+`"}`)
		if status != 200 {
			t.Fatalf("append: %d %v", status, body)
		}
		ids = append(ids, h.Get("x-ms-ccf-transaction-id"))
	}
	oldReceipt := waitReceipt(t, admin, base, ids[2])
	if err := receipt.VerifyPEM(oldReceipt, mustRead(t, filepath.Join(old, "service.pem"))); err != nil {
		t.Fatalf("receipt before the disaster: %v", err)
	}
	m0EncPriv := mustRead(t, filepath.Join(old, memberEncPrivFile))
	// An unsigned tail would be cut by the recovery.
	waitCommittedHTTP(t, admin, base, ids[len(ids)-1])
	p.cmd.Process.Kill() // every node lost
	<-p.done

	// The operator copies the ledger chunks and the service certificate only.
	rec := filepath.Join(t.TempDir(), "rec")
	copyDir(t, filepath.Join(old, "ledger"), filepath.Join(rec, "ledger"))
	os.WriteFile(filepath.Join(rec, "service.pem"), mustRead(t, filepath.Join(old, "service.pem")), 0o644)
	p = startLedgerd(t, bin, "--data", rec, "--recover")
	base = "https://" + p.addr
	newCert := filepath.Join(rec, "service.pem")
	if bytes.Equal(mustRead(t, newCert), mustRead(t, filepath.Join(old, "service.pem"))) {
		t.Fatal("the recovered service kept the previous service certificate")
	}
	admin = adminHTTP(t, newCert, filepath.Join(old, "admin.pem"))
	expectService(t, admin, base, "Recovering")
	if _, _, info := call(t, admin, "GET", base+"/gov/service/info?api-version=2024-07-01", ""); info["recoveryCount"] != 1.0 || info["certificate"] != string(mustRead(t, newCert)) {
		t.Fatalf("service info after --recover: %v", info)
	}
	if status, _, body := call(t, admin, "GET", base+"/app/transactions/"+ids[0]+"?api-version=2022-05-13", ""); status != 404 || errCode(body) != "FrontendNotOpen" {
		t.Fatalf("read while Recovering: %d %v", status, body)
	}
	m0 = memberClient(t, base, filepath.Join(old, memberFile), newCert)
	m1 = memberClient(t, base, m1Cred, newCert)

	// Shares before the members accept the recovery: CCF's 403.
	share0 := decryptShare(t, ctx, m0, m0EncPriv)
	if _, err := m0.SubmitRecoveryShare(ctx, share0); !isCode(err, 403, "ServiceNotWaitingForRecoveryShares") {
		t.Fatalf("share while Recovering: %v", err)
	}
	pass(t, ctx, m0, client.Action{Name: "transition_service_to_open", Args: map[string]any{
		"previous_service_identity": string(mustRead(t, filepath.Join(old, "service.pem"))),
		"next_service_identity":     string(mustRead(t, newCert))}}, m1)
	expectService(t, admin, base, "WaitingForRecoveryShares")

	// A share that is not one; a member without a share; a share signed
	// by one member for another's URL.
	if _, err := m0.SubmitRecoveryShare(ctx, []byte("short")); !isCode(err, 400, "InvalidRecoveryShare") {
		t.Fatalf("short share: %v", err)
	}
	m2 = memberClient(t, base, m2Cred, newCert)
	if _, err := m2.SubmitRecoveryShare(ctx, share0); !isCode(err, 403, "AuthorizationFailed") {
		t.Fatalf("share of a member with none: %v", err)
	}
	env, err := m1.MemberSigner().Sign(client.MsgRecoveryShare, "", []byte(`{"share":"`+base64.StdEncoding.EncodeToString(share0)+`"}`))
	if err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest("POST", base+"/gov/recovery/members/"+m0.MemberSigner().MemberID()+":recover?api-version=2024-07-01", bytes.NewReader(env))
	req.Header.Set("Content-Type", "application/cose")
	if resp, err := admin.Do(req); err != nil || resp.StatusCode != 401 {
		t.Fatalf("a share signed by member1 for member0: %v %v", resp, err)
	} else {
		resp.Body.Close()
	}
	// k-1 = 1 share: 1/2, nothing readable yet.
	if res, err := m0.SubmitRecoveryShare(ctx, share0); err != nil || res.SubmittedCount != 1 || res.RecoveryThreshold != 2 {
		t.Fatalf("first share: %+v %v", res, err)
	}
	expectService(t, admin, base, "WaitingForRecoveryShares")
	if status, _, body := call(t, admin, "GET", base+"/app/transactions/"+ids[0]+"?api-version=2022-05-13", ""); status != 404 {
		t.Fatalf("read with 1 of 2 shares: %d %v", status, body)
	}
	// A wrong second share: refused, nothing kept, still waiting.
	wrong := make([]byte, recovery.ShareSize)
	rand.Read(wrong)
	wrong[0] = 2
	if _, err := m1.SubmitRecoveryShare(ctx, wrong); !isCode(err, 400, "InvalidRecoveryShare") {
		t.Fatalf("wrong share: %v", err)
	}
	expectService(t, admin, base, "WaitingForRecoveryShares")
	// The right one: 2/2, recovered and open.
	share1 := decryptShare(t, ctx, m1, mustRead(t, m1EncPrivPath))
	res, err := m1.SubmitRecoveryShare(ctx, share1)
	if err != nil || res.SubmittedCount != 2 || !strings.Contains(res.Message, "End of recovery procedure initiated") {
		t.Fatalf("second share: %+v %v", res, err)
	}
	expectService(t, admin, base, "Open")
	for i, id := range ids {
		status, _, body := call(t, admin, "GET", base+"/app/transactions/"+id+"?api-version=2022-05-13", "")
		if entry, _ := body["entry"].(map[string]any); status != 200 || entry["contents"] != "before-"+string(rune('a'+i)) {
			t.Fatalf("old entry %s after recovery: %d %v", id, status, body)
		}
	}
	status, h, body := call(t, admin, "POST", base+"/app/transactions?api-version=2022-05-13", `{"contents":"after"}`)
	if status != 200 {
		t.Fatalf("append after recovery: %d %v", status, body)
	}
	newID := h.Get("x-ms-ccf-transaction-id")
	for _, id := range []string{ids[2], newID} {
		r := waitReceipt(t, admin, base, id)
		if err := receipt.VerifyPEM(r, mustRead(t, newCert)); err != nil {
			t.Fatalf("receipt of %s against the recovered service certificate: %v\n%s", id, err, r)
		}
	}
	if err := receipt.VerifyPEM(oldReceipt, mustRead(t, newCert)); !errors.Is(err, receipt.ErrNotEndorsed) {
		t.Fatalf("the pre-recovery receipt (no endorsement) against the new certificate: %v", err)
	}

	// The recovered secrets are in the ledger: a restart reads the old
	// entries without any share. And no share is in it in clear.
	p.stop(t)
	p = startLedgerd(t, bin, "--data", rec)
	base = "https://" + p.addr
	if status, _, body := call(t, admin, "GET", base+"/app/transactions/"+ids[4]+"?api-version=2022-05-13", ""); status != 200 {
		t.Fatalf("old entry after a restart: %d %v", status, body)
	}
	p.stop(t)
	// The end of the recovery triggered a snapshot of the recovered state
	// on every node (the default interval is 10,000): joiners start from it.
	if s := snapshotSeqno(t, rec); s == 0 {
		t.Fatal("no snapshot of the recovered service")
	}
	// ledgerctl audit passes on the recovered directory: the previous
	// service's signatures against its certificate, every entry
	// authenticated with its secret (the recovered ones included).
	ctl := testbin.Command(t, "", "github.com/ledgerd/ledgerd/cmd/ledgerctl")
	out, err := exec.Command(ctl, "audit", rec).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "every entry was authenticated with the ledger secret of its seqno") {
		t.Fatalf("ledgerctl audit of the recovered directory: %v\n%s", err, out)
	}
	files, _ := filepath.Glob(filepath.Join(rec, "ledger", "ledger_*"))
	for _, f := range files {
		b := mustRead(t, f)
		for _, s := range [][]byte{share0, share1, []byte(base64.StdEncoding.EncodeToString(share0)), []byte(base64.StdEncoding.EncodeToString(share1))} {
			if bytes.Contains(b, s) {
				t.Fatalf("%s holds a recovery share in clear", f)
			}
		}
	}
}

func pass(t *testing.T, ctx context.Context, proposer *client.Client, a client.Action, voters ...*client.Client) {
	t.Helper()
	prop, err := proposer.CreateProposal(ctx, a)
	if err != nil {
		t.Fatalf("%s: %v", a.Name, err)
	}
	for _, c := range append([]*client.Client{proposer}, voters...) {
		if prop.State != "Open" {
			break
		}
		if prop, err = c.Vote(ctx, prop.ProposalID, true); err != nil {
			t.Fatalf("%s vote: %v", a.Name, err)
		}
	}
	if prop.State != "Accepted" {
		t.Fatalf("%s: %+v", a.Name, prop)
	}
}

func memberClient(t *testing.T, base, cred, serviceCert string) *client.Client {
	t.Helper()
	c, err := client.New(base, client.CertificateFile(cred), &client.Options{ServiceCertFile: serviceCert})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// writeMemberCred writes a self-signed P-256 member certificate and its key
// in one PEM file.
func writeMemberCred(t *testing.T, dir string) string {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(7), Subject: pkix.Name{CommonName: "member1"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}, KeyUsage: x509.KeyUsageDigitalSignature}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, _ := x509.MarshalPKCS8PrivateKey(key)
	path := filepath.Join(dir, "member1.pem")
	out := append(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder})...)
	os.WriteFile(path, out, 0o600)
	return path
}

func pemBlocks(b []byte, typ string) string {
	var out []byte
	for rest := b; ; {
		var blk *pem.Block
		if blk, rest = pem.Decode(rest); blk == nil {
			return string(out)
		}
		if blk.Type == typ {
			out = append(out, pem.EncodeToMemory(blk)...)
		}
	}
}

func adminHTTP(t *testing.T, serviceCert, cred string) *http.Client {
	t.Helper()
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(mustRead(t, serviceCert))
	cert, err := tls.LoadX509KeyPair(cred, cred)
	if err != nil {
		t.Fatal(err)
	}
	return &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: pool, Certificates: []tls.Certificate{cert}}}}
}

func waitReceipt(t *testing.T, c *http.Client, base, id string) []byte {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		resp, err := c.Get(base + "/app/transactions/" + id + "/receipt?api-version=2022-05-13")
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		var m map[string]any
		json.Unmarshal(b, &m)
		if resp.StatusCode == 200 && m["state"] == "Ready" {
			return b
		}
		if time.Now().After(deadline) {
			t.Fatalf("receipt of %s: %d %s", id, resp.StatusCode, b)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func expectService(t *testing.T, c *http.Client, base, want string) {
	t.Helper()
	_, _, info := call(t, c, "GET", base+"/gov/service/info?api-version=2024-07-01", "")
	if info["status"] != want {
		t.Fatalf("service info %v, want status %s", info, want)
	}
}

func decryptShare(t *testing.T, ctx context.Context, c *client.Client, encPriv []byte) []byte {
	t.Helper()
	enc, err := c.GetEncryptedShare(ctx, c.MemberSigner().MemberID())
	if err != nil {
		t.Fatal(err)
	}
	share, err := client.DecryptRecoveryShare(encPriv, enc)
	if err != nil {
		t.Fatal(err)
	}
	return share
}

// isCode reports whether err is the service's answer status with the
// ACL-style error code.
func isCode(err error, status int, code string) bool {
	var re *client.ResponseError
	return errors.As(err, &re) && re.StatusCode == status && re.Code == code
}

func errCode(body map[string]any) any {
	e, _ := body["error"].(map[string]any)
	return e["code"]
}

func mustRead(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func copyDir(t *testing.T, from, to string) {
	t.Helper()
	os.MkdirAll(to, 0o700)
	ents, err := os.ReadDir(from)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		if e.IsDir() || strings.HasPrefix(e.Name(), ".") {
			continue
		}
		os.WriteFile(filepath.Join(to, e.Name()), mustRead(t, filepath.Join(from, e.Name())), 0o600)
	}
}

// TestDisasterRecoveryThreeNodes: a three-node network takes writes, all
// three nodes are killed, a backup's ledger chunks and service.pem are
// copied to a new directory and recovered there (member0's share, the
// genesis threshold of 1): the old nodes' signatures verify against the
// previous certificate, the old configuration of three voters does not
// stall the new single node, the old entries read back, and their
// receipts, taken from a node before the disaster and again after, verify
// against the recovered service certificate; ledgerctl audit passes.
func TestDisasterRecoveryThreeNodes(t *testing.T) {
	w := startNetwork(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	alive := func(int) bool { return true }
	var ids []string
	for i := 0; i < 3; i++ {
		id, _ := w.appendOnPrimary(t, "three-"+string(rune('a'+i)), alive)
		ids = append(ids, id)
	}
	for i, id := range ids {
		w.waitReadable(t, 2, id, "three-"+string(rune('a'+i)))
	}
	oldCert := filepath.Join(w.dirs[2], "service.pem")
	before := waitReceipt(t, w.admin[2], "https://"+w.procs[2].addr, ids[1])
	if err := receipt.VerifyPEM(before, mustRead(t, oldCert)); err != nil {
		t.Fatal(err)
	}
	for _, p := range w.procs {
		p.cmd.Process.Kill()
		<-p.done
	}

	rec := filepath.Join(t.TempDir(), "rec")
	copyDir(t, filepath.Join(w.dirs[2], "ledger"), filepath.Join(rec, "ledger"))
	os.WriteFile(filepath.Join(rec, "service.pem"), mustRead(t, oldCert), 0o644)
	p := startLedgerd(t, w.bin, "--data", rec, "--recover")
	base := "https://" + p.addr
	newCert := filepath.Join(rec, "service.pem")
	admin := adminHTTP(t, newCert, filepath.Join(w.dirs[0], "admin.pem"))
	expectService(t, admin, base, "Recovering")
	m0 := memberClient(t, base, filepath.Join(w.dirs[0], memberFile), newCert)
	pass(t, ctx, m0, client.Action{Name: "transition_service_to_open", Args: map[string]any{
		"previous_service_identity": string(mustRead(t, oldCert)),
		"next_service_identity":     string(mustRead(t, newCert))}})
	// The member's share through ledgerctl: fetched, decrypted with its
	// recovery key, submitted signed.
	ctl := testbin.Command(t, "", "github.com/ledgerd/ledgerd/cmd/ledgerctl")
	submit := exec.Command(ctl, "gov", "submit-share", "--enc-key", filepath.Join(w.dirs[0], memberEncPrivFile))
	submit.Env = append(os.Environ(), "LEDGER_ENDPOINT="+base, "LEDGER_SERVICE_CERT="+newCert, "LEDGER_CERT="+filepath.Join(w.dirs[0], memberFile))
	if out, err := submit.CombinedOutput(); err != nil || !strings.Contains(string(out), "1/1 recovery shares successfully submitted") {
		t.Fatalf("ledgerctl gov submit-share: %v\n%s", err, out)
	}
	expectService(t, admin, base, "Open")
	for i, id := range ids {
		readEntry(t, admin, base, id, "three-"+string(rune('a'+i)))
	}
	status, h, body := call(t, admin, "POST", base+"/app/transactions?api-version=2022-05-13", `{"contents":"after"}`)
	if status != 200 {
		t.Fatalf("append after recovery: %d %v", status, body)
	}
	for _, id := range []string{ids[1], h.Get("x-ms-ccf-transaction-id")} {
		if err := receipt.VerifyPEM(waitReceipt(t, admin, base, id), mustRead(t, newCert)); err != nil {
			t.Fatalf("receipt of %s against the recovered certificate: %v", id, err)
		}
	}
	// The old nodes are Retired; the new node is the only voter.
	_, _, nodes := call(t, admin, "GET", base+"/node/network/nodes", "")
	trusted := 0
	for _, n := range nodes["nodes"].([]any) {
		if n.(map[string]any)["status"] == "Trusted" {
			trusted++
		}
	}
	if trusted != 1 || len(nodes["nodes"].([]any)) != 4 {
		t.Fatalf("nodes after recovery: %v", nodes)
	}
	p.stop(t)
	if out, err := exec.Command(ctl, "audit", rec).CombinedOutput(); err != nil {
		t.Fatalf("ledgerctl audit of the recovered directory: %v\n%s", err, out)
	}
}

// TestRecoverRefusals: --recover is for a copy of a lost service's ledger
// files: a service's own directory (its keys present), a directory with no
// ledger, and a copy without the previous service certificate are refused
// before anything is created.
func TestRecoverRefusals(t *testing.T) {
	bin := testbin.Command(t, "", "github.com/ledgerd/ledgerd/cmd/ledgerd")
	own := filepath.Join(t.TempDir(), "own")
	p := startLedgerd(t, bin, "--data", own)
	p.stop(t)
	noCert := filepath.Join(t.TempDir(), "nocert")
	copyDir(t, filepath.Join(own, "ledger"), filepath.Join(noCert, "ledger"))
	for _, c := range []struct{ dir, want string }{
		{own, "it is a service's own data directory"},
		{filepath.Join(t.TempDir(), "empty"), "has no ledger"},
		{noCert, "the previous service's certificate must be copied"},
	} {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		out, err := exec.CommandContext(ctx, bin, "--data", c.dir, "--listen", "127.0.0.1:0", "--recover").CombinedOutput()
		cancel()
		if err == nil || !strings.Contains(string(out), c.want) {
			t.Errorf("--recover on %s: %v, want %q:\n%s", c.dir, err, c.want, out)
		}
	}
	if _, err := os.Stat(filepath.Join(noCert, "service.key")); err == nil {
		t.Error("a refused --recover created a service key")
	}
}
