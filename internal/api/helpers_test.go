package api_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"github.com/ledgerd/ledgerd/internal/constitution"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ledgerd/ledgerd/internal/api"
	"github.com/ledgerd/ledgerd/internal/attest"
	"github.com/ledgerd/ledgerd/internal/auth"
	"github.com/ledgerd/ledgerd/internal/gov"
	"github.com/ledgerd/ledgerd/internal/identity"
	"github.com/ledgerd/ledgerd/internal/node"
)

// API versions the tests speak.
const (
	v01    = "0.1-preview"
	v2022  = "2022-05-13"
	vNewer = "2024-12-09-preview"
)

// env is a real node behind a real HTTPS server with real TLS client
// certificates: one Administrator, Contributor and Reader each, a user
// nobody registered, and a consortium member.
type env struct {
	t        testing.TB
	dir      string
	ids      *identity.Identities
	node     *node.Node
	srv      *api.Server
	base     string
	platform attest.Platform
	// memberDER is the consortium member's certificate.
	memberDER []byte
	// members are the consortium's members (members[0] is member), all
	// Active at genesis.
	members []credential

	admin, contributor, reader, stranger, member, anonymous *client
}

// envOptions tune an env.
type envOptions struct {
	signatureInterval time.Duration
	signatureTxs      int
	maxCollections    int
	jwt               *auth.JWTVerifier
	// logger, if set, is the server's logger (the node keeps testLogger).
	logger *slog.Logger
	// dir, if set, is the data directory (default a temporary directory).
	dir string
	// maxConnections and unauthIdle are the server's connection limits.
	maxConnections int
	unauthIdle     time.Duration
	// startOpening founds the service Opening (node.Config.StartOpening).
	startOpening bool
	// memberEncryptionKey, if set, is the member's recovery encryption
	// public key (PEM): genesis gives it a share of the ledger secret.
	memberEncryptionKey []byte
	// extraMembers adds members to the consortium beyond the first.
	extraMembers int
	// govLimits bound the constitution's calls.
	govLimits constitution.Limits
	// govEffects add to or replace the server's governance effects.
	govEffects map[string]gov.EffectFunc
	// peer is the node's node-to-node interface; version its version.
	peer    api.NetInterface
	version string
}

// credential is a client certificate and key.
type credential struct {
	cert tls.Certificate
	der  []byte
	pem  []byte
}

func newCredential(t testing.TB, cn string) credential {
	t.Helper()
	certPEM, keyPEM, err := identity.NewClientIdentity(cn, nil)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	return credential{cert: cert, der: cert.Certificate[0], pem: certPEM}
}

func (c credential) userID() string { return identity.Fingerprint(c.der) }

func testLogger(t testing.TB) *slog.Logger {
	if testing.Verbose() {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.DiscardHandler)
}

func newEnv(t testing.TB, o envOptions) *env {
	t.Helper()
	dir := o.dir
	if dir == "" {
		dir = t.TempDir()
	}
	ids, err := identity.LoadOrCreate(dir, identity.Options{DNSNames: []string{"localhost"}, IPs: []net.IP{net.IPv4(127, 0, 0, 1)}})
	if err != nil {
		t.Fatal(err)
	}
	admin, contributor, reader := newCredential(t, "admin"), newCredential(t, "contributor"), newCredential(t, "reader")
	stranger, member := newCredential(t, "stranger"), newCredential(t, "member")
	members := []credential{member}
	for i := range o.extraMembers {
		members = append(members, newCredential(t, fmt.Sprintf("member%d", i+1)))
	}
	var memberPEMs [][]byte
	for _, m := range members {
		memberPEMs = append(memberPEMs, m.pem)
	}
	genesis, err := gov.Genesis{
		Members: memberPEMs,
		Users: []gov.User{
			{ID: admin.userID(), Role: auth.RoleAdministrator},
			{ID: contributor.userID(), Role: auth.RoleContributor},
			{ID: reader.userID(), Role: auth.RoleReader},
		},
		EncryptionKeys: [][]byte{o.memberEncryptionKey},
		LedgerSecret:   ids.LedgerSecret,
	}.Writes()
	if err != nil {
		t.Fatal(err)
	}
	n, err := node.Open(node.Config{Dir: dir, Identities: ids, Genesis: genesis, Logger: testLogger(t),
		SignatureInterval: o.signatureInterval, SignatureTxs: o.signatureTxs, StartOpening: o.startOpening})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := n.Close(); err != nil {
			t.Errorf("closing node: %v", err)
		}
	})
	waitFor(t, "genesis to commit", func() bool { return n.CommittedSeqno() > 0 })
	platform, err := attest.NewVirtual("")
	if err != nil {
		t.Fatal(err)
	}
	logger := o.logger
	if logger == nil {
		logger = testLogger(t)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	client := api.NetInterface{BindAddress: "127.0.0.1:0", PublishedAddress: ln.Addr().String(), Protocol: "tcp",
		AppProtocol: "HTTP2", Endorsement: &api.Endorsement{Authority: "Service"}}
	srv, err := api.New(api.Config{Node: n, Identities: ids, LedgerID: "test-ledger", JWT: o.jwt, Attestation: platform,
		LedgerDir: filepath.Join(dir, "ledger"), MaxCollections: o.maxCollections, Logger: logger,
		MaxConnections: o.maxConnections, UnauthenticatedIdleTimeout: o.unauthIdle, GovLimits: o.govLimits, GovEffects: o.govEffects,
		Interfaces: api.Interfaces{Client: client, Peer: o.peer}, Version: o.version})
	if err != nil {
		ln.Close()
		t.Fatal(err)
	}
	hs := srv.HTTPServer(ln.Addr().String())
	go hs.ServeTLS(srv.Listener(ln), "", "")
	t.Cleanup(func() { hs.Close() })
	e := &env{t: t, dir: dir, ids: ids, node: n, srv: srv, base: "https://" + ln.Addr().String(),
		platform: platform, memberDER: member.der, members: members}
	e.admin, e.contributor, e.reader = e.client(&admin), e.client(&contributor), e.client(&reader)
	e.stranger, e.member, e.anonymous = e.client(&stranger), e.client(&member), e.client(nil)
	return e
}

// waitFor polls cond for up to 10s.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// quiesce waits until every transaction in the ledger is committed and no
// signature is due, and returns the last seqno.
func (e *env) quiesce() uint64 {
	e.t.Helper()
	var last uint64
	waitFor(e.t, "the ledger to quiesce", func() bool {
		last = e.node.LastSeqno()
		if last != e.node.CommittedSeqno() {
			return false
		}
		time.Sleep(20 * time.Millisecond)
		return e.node.LastSeqno() == last
	})
	return last
}

// client is an HTTPS client of the env with one credential (or none),
// optionally sending a bearer token.
type client struct {
	e      *env
	hc     *http.Client
	id     string
	bearer string
	cred   *credential
}

func (e *env) client(cred *credential) *client {
	pool := x509.NewCertPool()
	pool.AddCert(e.ids.Service.Cert)
	tc := &tls.Config{RootCAs: pool}
	c := &client{e: e, cred: cred}
	if cred != nil {
		tc.Certificates = []tls.Certificate{cred.cert}
		c.id = cred.userID()
	}
	tr := &http.Transport{TLSClientConfig: tc, ForceAttemptHTTP2: true}
	e.t.Cleanup(tr.CloseIdleConnections)
	c.hc = &http.Client{Transport: tr, Timeout: 30 * time.Second}
	return c
}

// withBearer returns a client that sends token and no certificate.
func (e *env) withBearer(token string) *client {
	c := e.client(nil)
	c.bearer = token
	return c
}

// response is an answer, checked for the invariants of every answer.
type response struct {
	t      testing.TB
	proto  int // HTTP major version
	status int
	header http.Header
	body   []byte
}

// do sends a request and checks what every answer must satisfy: every
// answer has an x-ms-request-id (a UUID); a 2xx has
// x-ms-ccf-transaction-id (a valid transaction id) and, unless 204, a JSON
// body; an error has an ACL error body and no transaction id.
func (c *client) do(method, path string, body any, headers ...string) *response {
	t := c.e.t
	t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	case []byte:
		rd = bytes.NewReader(b)
	default:
		data, err := json.Marshal(b)
		if err != nil {
			t.Fatal(err)
		}
		rd = bytes.NewReader(data)
	}
	req, err := http.NewRequest(method, c.e.base+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(headers); i += 2 {
		if headers[i+1] == "" {
			req.Header.Del(headers[i])
		} else {
			req.Header.Set(headers[i], headers[i+1])
		}
	}
	if c.bearer != "" {
		req.Header.Set("Authorization", "Bearer "+c.bearer)
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	r := &response{t: t, proto: resp.ProtoMajor, status: resp.StatusCode, header: resp.Header, body: data}
	r.checkInvariants(method, path)
	return r
}

func (r *response) checkInvariants(method, path string) {
	t := r.t
	t.Helper()
	checkRequestID(t, method, path, r.header)
	txid := r.header.Get("x-ms-ccf-transaction-id")
	if r.status >= 200 && r.status < 300 {
		if _, err := node.ParseTxID(txid); err != nil {
			t.Errorf("%s %s: %d without a valid x-ms-ccf-transaction-id (%q)", method, path, r.status, txid)
		}
		// /metrics is Prometheus text; CCF serves the constitution and
		// ballots as JavaScript.
		// A bundle's endpoints (under bundlePaths) answer what their
		// function returns; PUT /app/userDefinedEndpoints answers 201
		// without a body.
		if r.status != http.StatusNoContent && !strings.HasPrefix(path, "/metrics") &&
			!(r.status == http.StatusCreated && len(r.body) == 0) && !isBundlePath(path) &&
			!strings.HasPrefix(path, "/gov/service/constitution") &&
			!(method == "GET" && strings.Contains(path, "/ballots/")) {
			if ct := r.header.Get("Content-Type"); ct != "application/json" || !json.Valid(r.body) {
				t.Errorf("%s %s: %d with Content-Type %q and body %q", method, path, r.status, ct, r.body)
			}
		}
		return
	}
	if txid != "" {
		t.Errorf("%s %s: error %d with x-ms-ccf-transaction-id %q", method, path, r.status, txid)
	}
	if method == "HEAD" || isBundlePath(path) && r.status < 500 {
		return // no body, or what the bundle's function answered
	}
	var eb struct {
		Error struct{ Code, Message string } `json:"error"`
	}
	if err := json.Unmarshal(r.body, &eb); err != nil || eb.Error.Code == "" || eb.Error.Message == "" {
		t.Errorf("%s %s: error %d without an ACL error body: %q", method, path, r.status, r.body)
	}
	if r.header.Get("Content-Type") != "application/json" {
		t.Errorf("%s %s: error %d with Content-Type %q", method, path, r.status, r.header.Get("Content-Type"))
	}
}

// get, post, patch and del are shorthands of do.
func (c *client) get(path string) *response { c.e.t.Helper(); return c.do("GET", path, nil) }
func (c *client) post(path string, body any) *response {
	c.e.t.Helper()
	return c.do("POST", path, body)
}

// expect checks the status and, if code is not "", the ACL error code.
func (r *response) expect(status int, code string) *response {
	r.t.Helper()
	if r.status != status {
		r.t.Fatalf("status %d, want %d; body %s", r.status, status, r.body)
	}
	if code != "" {
		if got := r.errorCode(); got != code {
			r.t.Fatalf("error code %q, want %q; body %s", got, code, r.body)
		}
	}
	return r
}

func (r *response) errorCode() string {
	var eb struct {
		Error struct{ Code string } `json:"error"`
	}
	json.Unmarshal(r.body, &eb)
	return eb.Error.Code
}

func (r *response) errorMessage() string {
	var eb struct {
		Error struct{ Message string } `json:"error"`
	}
	json.Unmarshal(r.body, &eb)
	return eb.Error.Message
}

// object decodes the body as a JSON object.
func (r *response) object() map[string]any {
	r.t.Helper()
	var m map[string]any
	if err := json.Unmarshal(r.body, &m); err != nil {
		r.t.Fatalf("body %q: %v", r.body, err)
	}
	return m
}

// decode decodes the body into v.
func (r *response) decode(v any) {
	r.t.Helper()
	if err := json.Unmarshal(r.body, v); err != nil {
		r.t.Fatalf("body %q: %v", r.body, err)
	}
}

// txid returns the x-ms-ccf-transaction-id header.
func (r *response) txid() node.TxID {
	r.t.Helper()
	id, err := node.ParseTxID(r.header.Get("x-ms-ccf-transaction-id"))
	if err != nil {
		r.t.Fatal(err)
	}
	return id
}

// q builds a path with api-version and further query parameters.
func q(path, version string, kv ...string) string {
	v := url.Values{}
	if version != "" {
		v.Set("api-version", version)
	}
	for i := 0; i+1 < len(kv); i += 2 {
		v.Add(kv[i], kv[i+1])
	}
	if len(v) == 0 {
		return path
	}
	return path + "?" + v.Encode()
}

// collectionParam is the collection query parameter of a version.
func collectionParam(version string) string {
	if version == v01 {
		return "subLedgerId"
	}
	return "collectionId"
}

// write appends contents to collection (default if "") through the API and
// returns the transaction id.
func (e *env) write(c *client, version, collection, contents string) node.TxID {
	e.t.Helper()
	var kv []string
	if collection != "" {
		kv = []string{collectionParam(version), collection}
	}
	r := c.post(q("/app/transactions", version, kv...), map[string]string{"contents": contents}).expect(200, "")
	return r.txid()
}

// commit waits until id is committed.
func (e *env) commit(id node.TxID) {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := e.node.WaitCommitted(ctx, id); err != nil {
		e.t.Fatalf("WaitCommitted(%s): %v", id, err)
	}
}

// bulk appends n entries straight to the node, cycling over collections,
// and waits until they are committed.
func (e *env) bulk(n int, collections ...string) []node.TxID {
	e.t.Helper()
	futs := make([]*node.Future, n)
	for i := range futs {
		f, err := e.node.SubmitEntry(collections[i%len(collections)], fmt.Appendf(nil, "bulk %d", i))
		if err != nil {
			e.t.Fatal(err)
		}
		futs[i] = f
	}
	ids := make([]node.TxID, n)
	for i, f := range futs {
		id, err := f.Wait(context.Background())
		if err != nil {
			e.t.Fatal(err)
		}
		ids[i] = id
	}
	e.commit(ids[n-1])
	return ids
}

// certPEM encodes a DER certificate.
func certPEM(der []byte) string {
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
}

// bundlePaths are the paths the tests' bundles serve their endpoints at.
var bundlePaths = []string{"/app/content", "/app/u/"}

func isBundlePath(path string) bool {
	for _, p := range bundlePaths {
		if strings.HasPrefix(path, p) {
			return true
		}
	}
	return false
}
