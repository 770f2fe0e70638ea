package main

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ledgerd/ledgerd/internal/testbin"

	"github.com/ledgerd/ledgerd/client"
	"github.com/ledgerd/ledgerd/internal/auth/authtest"
)

func TestHelp(t *testing.T) {
	r := ctl("help")
	out := r.ok(t)
	for _, c := range commands() {
		if !strings.Contains(out, "\n  "+c.name+" ") {
			t.Errorf("help does not list %s", c.name)
		}
	}
	for _, v := range []string{envEndpoint, envCert, envServiceCert, envTokenFile, envCollection, envAPIVersion, "--json", "Exit codes"} {
		if !strings.Contains(out, v) {
			t.Errorf("help does not mention %s", v)
		}
	}
	if r := ctl(); r.code != 2 {
		t.Errorf("no command: exit %d, want 2", r.code)
	}
	ctl("frobnicate").fails(t, 2, "unknown command")
}

// TestUsageErrors checks the mistakes that exit 2 before any request.
func TestUsageErrors(t *testing.T) {
	isolateEnv(t)
	conn := []string{"--endpoint", "https://127.0.0.1:1", "--cert", "admin.pem", "--service-cert", "service.pem"}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"append"}, "append needs the contents"},
		{[]string{"append", "a", "b"}, "append needs the contents"},
		{[]string{"get", "--cert", "x", "--service-cert", "y", "2.1"}, "no ledger: give --endpoint"},
		{[]string{"get", "--endpoint", "https://h", "--cert", "x", "2.1"}, "no service certificate"},
		{[]string{"get", "--endpoint", "https://h", "--service-cert", "y", "2.1"}, "no credential"},
		{append([]string{"get", "--token-file", "t"}, conn...), "not both"},
		{append([]string{"status", "2.1", "2.2"}, conn...), "one transaction id, or none"},
		{append([]string{"wait", "2.1", "--interval", "0s"}, conn...), "--interval"},
		{append([]string{"receipt"}, conn...), "transaction id, or --file"},
		{append([]string{"receipt", "--verify", "--file", "r.json"}, conn[:4]...), "--verify needs the service certificate"},
		{append([]string{"users", "add", "AB:CD", "Overlord"}, conn...), "unknown role"},
		{append([]string{"users", "promote", "AB:CD"}, conn...), "unknown users subcommand"},
		{append([]string{"users", "add", "AB:CD"}, conn...), "a user id and a role"},
		{append([]string{"list", "extra"}, conn...), "no arguments"},
		{append([]string{"import", "-"}, conn...), "needs --state"},
		{append([]string{"import", "--concurrency", "0", "f"}, conn...), "--concurrency"},
		{append([]string{"export", "--from", "yesterday"}, conn...), "not a transaction id"},
		{append([]string{"get", "--no-such-flag"}, conn...), "not defined"},
	} {
		ctl(tc.args...).fails(t, 2, tc.want)
	}
	// -h prints the command's usage and exits 2, as flag.ErrHelp does.
	r := ctl("import", "-h")
	r.fails(t, 2, "usage: ledgerctl import", "-concurrency")
}

func TestClientCommands(t *testing.T) {
	isolateEnv(t)
	issuer := authtest.NewIssuer(t, "ES256")
	jwks := issuer.JWKSFile(t)
	l := startLedger(t, testbin.Command(t, "LEDGERD_BIN", "github.com/ledgerd/ledgerd/cmd/ledgerd"),
		"--jwt-issuer", authtest.IssuerURL+","+authtest.Audience+","+jwks)
	admin := l.flags()
	with := func(args ...string) []string { return append(args, admin...) }
	dir := t.TempDir()

	// append: text, --json, --wait, --collection, stdin.
	var first txOut
	if out := ctl(with("append", "hello, ledger")...).ok(t); !strings.Contains(out, " Pending (collection subledger:0)") {
		t.Errorf("append: %q", out)
	}
	ctl(with("append", "--json", "--wait", "first")...).decode(t, &first)
	if first.State != client.StateCommitted || first.CollectionID != "subledger:0" || first.TransactionID == "" {
		t.Fatalf("append --wait --json: %+v", first)
	}
	var inColl txOut
	ctl(with("append", "in a collection", "--collection", "notes", "--wait", "--json")...).decode(t, &inColl)
	if inColl.CollectionID != "notes" {
		t.Fatalf("append --collection: %+v", inColl)
	}
	var fromStdin txOut
	withStdin(t, "line one\nline two\n", func() {
		ctl(with("append", "--json", "--wait", "-")...).decode(t, &fromStdin)
	})

	t.Run("get", func(t *testing.T) {
		if out := ctl(with("get", first.TransactionID)...).ok(t); out != "transaction "+first.TransactionID+", collection subledger:0:\nfirst\n" {
			t.Errorf("get: %q", out)
		}
		var e entryOut
		ctl(with("get", "--json", fromStdin.TransactionID)...).decode(t, &e)
		if e != (entryOut{fromStdin.TransactionID, "subledger:0", "line one\nline two"}) {
			t.Errorf("get --json of append -: %+v", e)
		}
		ctl(with("get", "--json", "--collection", "notes")...).decode(t, &e) // the latest entry
		if e.Contents != "in a collection" || e.TransactionID != inColl.TransactionID {
			t.Errorf("get --collection notes: %+v", e)
		}
		ctl(with("get", "2.999999999")...).fails(t, 1, "404")
		ctl(with("get", "not-a-tx")...).fails(t, 1, "400", "InvalidTransactionId")
		ctl(with("get", "--collection", "notes", first.TransactionID)...).fails(t, 1, "404")
		ctl(with("get", "--collection", "never-written")...).fails(t, 1, "404")
	})

	t.Run("status and wait", func(t *testing.T) {
		if out := ctl(with("status", first.TransactionID)...).ok(t); out != first.TransactionID+" Committed\n" {
			t.Errorf("status: %q", out)
		}
		var st txOut
		ctl(with("wait", "--json", first.TransactionID)...).decode(t, &st)
		if st != (txOut{TransactionID: first.TransactionID, State: client.StateCommitted}) {
			t.Errorf("wait --json: %+v", st)
		}
		ctl(with("status", "2.999999999")...).fails(t, 1, "404", "InvalidTransactionId")
		ctl(with("wait", "2.999999999")...).fails(t, 1, "will not commit")
	})

	t.Run("list", func(t *testing.T) {
		out := ctl(with("list", "--from", first.TransactionID)...).ok(t)
		want := first.TransactionID + " first\n" + fromStdin.TransactionID + " \"line one\\nline two\"\n"
		if out != want {
			t.Errorf("list --from:\n%s\nwant\n%s", out, want)
		}
		lines := strings.Split(strings.TrimSpace(ctl(with("list", "--json", "--limit", "2")...).ok(t)), "\n")
		var e entryOut
		if len(lines) != 2 || json.Unmarshal([]byte(lines[1]), &e) != nil || e.Contents != "first" {
			t.Errorf("list --json --limit 2: %q", lines)
		}
		// api-version 0.1-preview speaks subLedgerId; an unknown one is 400.
		if out := ctl(with("list", "--api-version", "0.1-preview", "--collection", "notes")...).ok(t); out != inColl.TransactionID+" in a collection\n" {
			t.Errorf("list --api-version 0.1-preview: %q", out)
		}
		ctl(with("list", "--api-version", "1999-01-01")...).fails(t, 1, "400", "UnsupportedApiVersionValue")
	})

	t.Run("export", func(t *testing.T) {
		r := ctl(with("export", "--collection", "notes")...)
		var e entryOut
		if err := json.Unmarshal([]byte(r.ok(t)), &e); err != nil || e != (entryOut{inColl.TransactionID, "notes", "in a collection"}) {
			t.Errorf("export to standard output: %q, %v", r.stdout, err)
		}
		if !strings.HasPrefix(r.stderr, "exported 1 entry of collection notes (the start to "+inColl.TransactionID+")") {
			t.Errorf("export summary: %q", r.stderr)
		}
		if r := ctl(with("export", "--collection", "never-written")...); r.ok(t) != "" || !strings.HasPrefix(r.stderr, "exported 0 entries") {
			t.Errorf("export of an empty collection: %+v", r)
		}
	})

	t.Run("tags and claims", func(t *testing.T) {
		var a, b txOut
		ctl(with("append", "--json", "--wait", "--collection", "tagged", "--tags", "alice,greeting", "hello")...).decode(t, &a)
		ctl(with("append", "--json", "--wait", "--collection", "tagged", "--tags", "bob", "bye")...).decode(t, &b)
		if out := ctl(with("list", "--collection", "tagged", "--tag", "greeting")...).ok(t); out != a.TransactionID+" hello\n" {
			t.Errorf("list --tag greeting: %q", out)
		}
		var tagged struct {
			TransactionID string   `json:"transactionId"`
			Tags          []string `json:"tags"`
		}
		ctl(with("list", "--json", "--collection", "tagged", "--tag", "bob")...).decode(t, &tagged)
		if tagged.TransactionID != b.TransactionID || !slices.Equal(tagged.Tags, []string{"bob"}) {
			t.Errorf("list --json --tag bob: %+v", tagged)
		}
		if out := ctl(with("tags", "--collection", "tagged")...).ok(t); out != "tagged alice bob greeting\n" {
			t.Errorf("tags: %q", out)
		}
		ctl(with("append", "--collection", "tagged", "--tags", "1,2,3,4,5,6,7,8,9,10,11", "x")...).fails(t, 1, "400", "InvalidQueryParameterValue")
		// The receipt with its claims verifies; its claims altered by one byte do not.
		out := ctl(with("receipt", "--claims", "--verify", a.TransactionID)...).ok(t)
		if !strings.Contains(out, "collection tagged, contents hello") || !strings.Contains(out, "and its application claims against its claims digest") {
			t.Errorf("receipt --claims --verify:\n%s", out)
		}
		raw := ctl(with("receipt", "--claims", "--json", a.TransactionID)...).ok(t)
		saved := filepath.Join(dir, "claims.json")
		os.WriteFile(saved, []byte(raw), 0o600)
		offline := []string{"--service-cert", l.servicePEM}
		ctl(append([]string{"receipt", "--claims", "--verify", "--file", saved}, offline...)...).ok(t)
		os.WriteFile(saved, []byte(strings.Replace(raw, `"contents":"hello"`, `"contents":"hellp"`, 1)), 0o600)
		ctl(append([]string{"receipt", "--claims", "--verify", "--file", saved}, offline...)...).fails(t, 1, "INVALID", "application claims do not match")
		// A receipt asked for without --claims has none to verify.
		ctl(with("receipt", "--json", "--out", saved, a.TransactionID)...).ok(t)
		ctl(append([]string{"receipt", "--claims", "--verify", "--file", saved}, offline...)...).fails(t, 1, "INVALID", "no application claims")
	})

	t.Run("receipt", func(t *testing.T) {
		out := ctl(with("receipt", first.TransactionID)...).ok(t)
		if !strings.Contains(out, "commit evidence   ce:"+first.TransactionID+":") || !strings.Contains(out, "not verified") {
			t.Errorf("receipt:\n%s", out)
		}
		saved := filepath.Join(dir, "receipt.json")
		out = ctl(with("receipt", "--verify", "--out", saved, first.TransactionID)...).ok(t)
		if !strings.Contains(out, "OK: the receipt verifies") {
			t.Errorf("receipt --verify:\n%s", out)
		}
		raw := ctl(with("receipt", "--json", "--verify", first.TransactionID)...).ok(t)
		var body map[string]any
		if err := json.Unmarshal([]byte(raw), &body); err != nil || body["transactionId"] != first.TransactionID || body["state"] != "Ready" {
			t.Fatalf("receipt --json is not the ledger's answer: %v\n%s", err, raw)
		}
		// The saved receipt verifies offline, with receipt --file and with verify.
		offline := []string{"--service-cert", l.servicePEM}
		if out := ctl(append([]string{"receipt", "--verify", "--file", saved}, offline...)...).ok(t); !strings.Contains(out, "OK:") {
			t.Errorf("receipt --file:\n%s", out)
		}
		ctl("verify", "--service-cert", l.servicePEM, saved).ok(t)
		// Tampered receipts are INVALID, exit 1.
		for name, tamper := range map[string]func(rc map[string]any){
			"write set digest": func(rc map[string]any) {
				lc := rc["leafComponents"].(map[string]any)
				lc["writeSetDigest"] = flipFirstHexDigit(lc["writeSetDigest"].(string))
			},
			"signature": func(rc map[string]any) {
				sig := []byte(rc["signature"].(string))
				sig[10] ^= 1
				rc["signature"] = string(sig)
			},
			"proof": func(rc map[string]any) {
				p := rc["proof"].([]any)[0].(map[string]any)
				for k, v := range p {
					p[k] = flipFirstHexDigit(v.(string))
				}
			},
		} {
			var b map[string]any
			json.Unmarshal([]byte(raw), &b)
			tamper(b["receipt"].(map[string]any))
			bad := filepath.Join(dir, "bad.json")
			data, _ := json.Marshal(b)
			os.WriteFile(bad, data, 0o644)
			r := ctl(append([]string{"receipt", "--verify", "--file", bad}, offline...)...)
			r.fails(t, 1, "INVALID")
			if r.stdout != "" {
				t.Errorf("%s: a receipt that does not verify printed %q", name, r.stdout)
			}
		}
		// A valid receipt of another transaction is INVALID for this one.
		ctl(append([]string{"receipt", "--verify", "--file", saved, inColl.TransactionID}, offline...)...).fails(t, 1, "INVALID")
		// Without --verify, a receipt is not checked, and says so.
		if out := ctl(append([]string{"receipt", "--file", saved}, offline...)...).ok(t); !strings.Contains(out, "not verified") {
			t.Errorf("receipt --file without --verify:\n%s", out)
		}
	})

	t.Run("collections", func(t *testing.T) {
		if out := ctl(with("collections")...).ok(t); out != "notes\nsubledger:0\ntagged\n" {
			t.Errorf("collections: %q", out)
		}
		var cs struct {
			Collections []struct {
				CollectionID string `json:"collectionId"`
			} `json:"collections"`
		}
		ctl(with("collections", "--json")...).decode(t, &cs)
		if len(cs.Collections) != 3 || cs.Collections[0].CollectionID != "notes" {
			t.Errorf("collections --json: %+v", cs)
		}
	})

	t.Run("users", func(t *testing.T) {
		readerPEM, readerID := newUserCert(t, "reader")
		var u userOut
		ctl(with("users", "add", "--json", "--user-cert", readerPEM, "reader")...).decode(t, &u)
		if u != (userOut{readerID, "Reader"}) {
			t.Errorf("users add: %+v", u)
		}
		if out := ctl(with("users", "get", readerID)...).ok(t); out != readerID+" Reader\n" {
			t.Errorf("users get: %q", out)
		}
		reader := []string{"--endpoint", l.endpoint, "--cert", readerPEM, "--service-cert", l.servicePEM}
		ctl(append([]string{"append", "not allowed"}, reader...)...).fails(t, 1, "403", "role is too low")
		ctl(append([]string{"users", "get", readerID}, reader...)...).fails(t, 1, "403")
		ctl(append([]string{"get", first.TransactionID}, reader...)...).ok(t)
		// Promote, then remove.
		ctl(with("users", "add", readerID, "Contributor")...).ok(t)
		ctl(append([]string{"append", "now allowed"}, reader...)...).ok(t)
		if out := ctl(with("users", "rm", readerID)...).ok(t); out != "removed user "+readerID+"\n" {
			t.Errorf("users rm: %q", out)
		}
		ctl(with("users", "get", readerID)...).fails(t, 1, "404")
		ctl(with("users", "rm", readerID)...).fails(t, 1, "404")
		ctl(append([]string{"get", first.TransactionID}, reader...)...).fails(t, 1, "403")
		// The last Administrator stays.
		adminID, err := certFileUserID(l.adminPEM)
		if err != nil {
			t.Fatal(err)
		}
		ctl(with("users", "rm", "--user-cert", l.adminPEM)...).fails(t, 1, "409")
		ctl(with("users", "add", adminID, "Reader")...).fails(t, 1, "409")
	})

	t.Run("governance", func(t *testing.T) {
		var cons struct {
			Members []client.ConsortiumMember `json:"members"`
		}
		ctl(with("consortium", "--json")...).decode(t, &cons)
		if len(cons.Members) != 1 || !strings.Contains(cons.Members[0].Certificate, "BEGIN CERTIFICATE") {
			t.Errorf("consortium --json: %+v", cons)
		}
		if out := ctl(with("consortium")...).ok(t); !strings.Contains(out, "member "+cons.Members[0].ID+"\n  subject CN=") {
			t.Errorf("consortium:\n%s", out)
		}
		var con client.Constitution
		ctl(with("constitution", "--json")...).decode(t, &con)
		if sum := sha256.Sum256([]byte(con.Script)); con.Digest != hex.EncodeToString(sum[:]) || con.Script == "" {
			t.Errorf("constitution digest %s is not the script's", con.Digest)
		}
		if out := ctl(with("constitution")...).ok(t); !strings.HasPrefix(out, "digest "+con.Digest) || !strings.Contains(out, strings.TrimSpace(con.Script)) {
			t.Errorf("constitution:\n%.200s", out)
		}
		var q client.EnclaveQuotes
		ctl(with("quotes", "--json")...).decode(t, &q)
		quote, ok := q.Quotes[q.CurrentNodeID]
		if !ok || quote.QuoteVersion != "Insecure_Virtual" || len(quote.MREnclave) != 64 {
			t.Errorf("quotes --json: %+v", q)
		}
		if out := ctl(with("quotes")...).ok(t); !strings.Contains(out, "Insecure_Virtual quote") ||
			!strings.Contains(out, ", measurement "+quote.MREnclave+"\n") {
			t.Errorf("quotes:\n%s", out)
		}
	})

	t.Run("identity", func(t *testing.T) {
		out := ctl(with("identity")...).ok(t)
		if !strings.Contains(out, "ledger id "+l.ledgerID) || !strings.Contains(out, "matches the pinned service certificate") ||
			!strings.Contains(out, client.CertificateUserID(l.serviceCert.Raw)) {
			t.Errorf("identity:\n%s", out)
		}
		// No credential is needed; without a pinned certificate, the fetch
		// is trust on first use, and --out saves it.
		saved := filepath.Join(dir, "fetched.pem")
		var id client.LedgerIdentity
		ctl("identity", "--endpoint", l.endpoint, "--json", "--out", saved).decode(t, &id)
		if id.LedgerID != l.ledgerID || !strings.Contains(id.TLSCertificate, "BEGIN CERTIFICATE") {
			t.Errorf("identity --json: %+v", id)
		}
		if out := ctl("identity", "--endpoint", l.endpoint).ok(t); !strings.Contains(out, "UNVERIFIED") {
			t.Errorf("identity without --service-cert:\n%s", out)
		}
		// --trust-on-first-use saves the certificate where --service-cert
		// says, and pins it from then on.
		tofu := filepath.Join(dir, "tofu.pem")
		ctl("collections", "--endpoint", l.endpoint, "--cert", l.adminPEM, "--service-cert", tofu, "--trust-on-first-use").ok(t)
		if saved, err := os.ReadFile(tofu); err != nil || !strings.Contains(string(saved), "BEGIN CERTIFICATE") {
			t.Errorf("--trust-on-first-use saved %q, %v", saved, err)
		}
		// The fetched certificate pins the ledger.
		ctl("status", first.TransactionID, "--endpoint", l.endpoint, "--cert", l.adminPEM, "--service-cert", saved).ok(t)
		// Another service certificate does not.
		other, _ := newUserCert(t, "impostor")
		ctl("status", first.TransactionID, "--endpoint", l.endpoint, "--cert", l.adminPEM, "--service-cert", other).
			fails(t, 1, "check --service-cert")
	})

	t.Run("environment", func(t *testing.T) {
		for _, kv := range l.env() {
			k, v, _ := strings.Cut(kv, "=")
			t.Setenv(k, v)
		}
		t.Setenv(envCollection, "from-env")
		var res txOut
		ctl("append", "--json", "configured by the environment").decode(t, &res)
		if res.CollectionID != "from-env" {
			t.Errorf("append with %s: %+v", envCollection, res)
		}
		ctl("append", "--json", "--collection", "from-flag", "flags win").decode(t, &res)
		if res.CollectionID != "from-flag" {
			t.Errorf("append --collection over %s: %+v", envCollection, res)
		}
		t.Setenv(envCert, filepath.Join(dir, "missing.pem"))
		ctl("status", res.TransactionID).fails(t, 1, "missing.pem")
		ctl("status", res.TransactionID, "--cert", l.adminPEM).ok(t)
	})

	t.Run("token file", func(t *testing.T) {
		const oid = "6696d1bc-6012-47da-8556-ab4c747999c9"
		ctl(with("users", "add", oid, "Contributor")...).ok(t)
		tokenFile := filepath.Join(dir, "token")
		token := issuer.Sign(authtest.Claims(authtest.IssuerURL, authtest.Audience, oid, time.Now()))
		os.WriteFile(tokenFile, []byte("Bearer "+token+"\n"), 0o600)
		bearer := []string{"--endpoint", l.endpoint, "--service-cert", l.servicePEM, "--token-file", tokenFile}
		var res txOut
		ctl(append([]string{"append", "--json", "--wait", "with a bearer token"}, bearer...)...).decode(t, &res)
		// The flag wins over LEDGER_CERT.
		t.Setenv(envCert, l.adminPEM)
		ctl(append([]string{"get", res.TransactionID}, bearer...)...).ok(t)
		// A rewritten token file is read again: a token of a stranger is
		// not a user's.
		stranger := issuer.Sign(authtest.Claims(authtest.IssuerURL, authtest.Audience, "00000000-0000-0000-0000-000000000000", time.Now()))
		os.WriteFile(tokenFile, []byte(stranger), 0o600)
		ctl(append([]string{"get", res.TransactionID}, bearer...)...).fails(t, 1, "403")
		os.WriteFile(tokenFile, []byte("not.a.jwt"), 0o600)
		ctl(append([]string{"get", res.TransactionID}, bearer...)...).fails(t, 1, "401")
	})
}

// TestUncommitted drives a ledger that signs once a second, so that a fresh
// append stays Pending long enough to observe 406 and the waits.
func TestUncommitted(t *testing.T) {
	isolateEnv(t)
	l := startLedger(t, testbin.Command(t, "LEDGERD_BIN", "github.com/ledgerd/ledgerd/cmd/ledgerd"), "--signature-interval", "1s")
	admin := l.flags()
	with := func(args ...string) []string { return append(args, admin...) }
	var r result
	var tx txOut
	for range 5 { // a signature may just have come: then try again
		ctl(with("append", "--json", "pending for a while")...).decode(t, &tx)
		if r = ctl(with("receipt", tx.TransactionID)...); r.code != 0 {
			break
		}
	}
	r.fails(t, 1, "406", "UncommittedLedgerEntry", "add --wait")
	if out := ctl(with("receipt", "--wait", "--verify", tx.TransactionID)...).ok(t); !strings.Contains(out, "OK:") {
		t.Errorf("receipt --wait --verify:\n%s", out)
	}
	ctl(with("append", "--json", "another")...).decode(t, &tx)
	ctl(with("wait", tx.TransactionID)...).ok(t)
	ctl(with("append", "--json", "and another")...).decode(t, &tx)
	if out := ctl(with("get", tx.TransactionID)...).ok(t); !strings.HasSuffix(out, "\nand another\n") {
		t.Errorf("get of a Pending entry, once committed: %q", out)
	}
	ctl(with("append", "--json", "short wait")...).decode(t, &tx)
	ctl(with("wait", tx.TransactionID, "--timeout", "1ms")...).fails(t, 1, "raise --timeout")
}

// withStdin runs f with os.Stdin reading data.
func withStdin(t *testing.T, data string, f func()) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "stdin")
	if err := os.WriteFile(path, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
	in, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	old := os.Stdin
	os.Stdin = in
	defer func() { os.Stdin = old }()
	f()
}

// flipFirstHexDigit changes the first digit of a hex string.
func flipFirstHexDigit(s string) string {
	if s[0] == '0' {
		return "1" + s[1:]
	}
	return "0" + s[1:]
}
