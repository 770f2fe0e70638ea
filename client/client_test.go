package client_test

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ledgerd/ledgerd/client"
	"github.com/ledgerd/ledgerd/internal/attest"
	"github.com/ledgerd/ledgerd/internal/auth"
	"github.com/ledgerd/ledgerd/internal/auth/authtest"
	"github.com/ledgerd/ledgerd/internal/identity"
	"github.com/ledgerd/ledgerd/internal/node"
	"github.com/ledgerd/ledgerd/receipt"
)

// certDER returns the DER of the first certificate in PEM data.
func certDER(data []byte) ([]byte, error) {
	for {
		var b *pem.Block
		b, data = pem.Decode(data)
		if b == nil {
			return nil, errors.New("no certificate in PEM data")
		}
		if b.Type == "CERTIFICATE" {
			return b.Bytes, nil
		}
	}
}

// userIDOf returns the ledger user id of the certificate in a PEM file.
func userIDOf(t testing.TB, path string) string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	der, err := certDER(data)
	if err != nil {
		t.Fatal(err)
	}
	return client.CertificateUserID(der)
}

// connect returns a client of l that authenticates with the PEM file
// credFile and pins l's service certificate, with a short poll interval.
func connect(t testing.TB, l *testLedger, credFile string, tune ...func(*client.Options)) *client.Client {
	t.Helper()
	return connectWith(t, l, client.CertificateFile(credFile), tune...)
}

func connectWith(t testing.TB, l *testLedger, cred client.Credential, tune ...func(*client.Options)) *client.Client {
	t.Helper()
	// PollAttempts -1: polls wait for their condition as long as the test's
	// context allows, never for a number of polls, which is a time budget
	// that a slow or loaded machine can exceed.
	o := &client.Options{ServiceCertFile: l.ServicePEM, PollInterval: 10 * time.Millisecond, PollAttempts: -1}
	for _, f := range tune {
		f(o)
	}
	c, err := client.New(l.Endpoint, cred, o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func testContext(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// expectResponseError checks that err is a *ResponseError with status
// and code, matching sentinel.
func expectResponseError(t testing.TB, err error, status int, code string, sentinel error) {
	t.Helper()
	var re *client.ResponseError
	if !errors.As(err, &re) {
		t.Fatalf("error %v (%T), want a *ResponseError %d %s", err, err, status, code)
	}
	if re.StatusCode != status || (code != "" && re.Code != code) || re.Message == "" {
		t.Fatalf("ResponseError %+v, want %d %s", re, status, code)
	}
	if len(re.RequestID) != 36 { // ledgerd's x-ms-request-id, a UUID
		t.Fatalf("ResponseError %+v without the answer's request id", re)
	}
	if !errors.Is(err, sentinel) {
		t.Fatalf("errors.Is(%v, %v) = false", err, sentinel)
	}
}

func TestNewChecksOptions(t *testing.T) {
	l := newLedger(t, ledgerOptions{})
	admin := client.CertificateFile(l.AdminPEM)
	servicePEM, err := os.ReadFile(l.ServicePEM)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name     string
		endpoint string
		cred     client.Credential
		opts     *client.Options
		want     string
	}{
		{"no options", l.Endpoint, admin, nil, "Options.ServiceCertFile"},
		{"no trust", l.Endpoint, admin, &client.Options{}, "TrustOnFirstUse"},
		{"file and PEM", l.Endpoint, admin, &client.Options{ServiceCertFile: l.ServicePEM, ServiceCertPEM: servicePEM}, "set one"},
		{"TOFU and PEM", l.Endpoint, admin, &client.Options{TrustOnFirstUse: true, ServiceCertPEM: servicePEM}, "TrustOnFirstUse"},
		{"missing file", l.Endpoint, admin, &client.Options{ServiceCertFile: filepath.Join(l.Dir, "nope.pem")}, "no such file"},
		{"bad PEM", l.Endpoint, admin, &client.Options{ServiceCertPEM: []byte("junk")}, "couldn't parse"},
		{"http", "http://" + strings.TrimPrefix(l.Endpoint, "https://"), admin, &client.Options{ServiceCertFile: l.ServicePEM}, "not an https URL"},
		{"query", l.Endpoint + "?x=1", admin, &client.Options{ServiceCertFile: l.ServicePEM}, "no user, query or fragment"},
		{"no credential", l.Endpoint, nil, &client.Options{ServiceCertFile: l.ServicePEM}, "no credential"},
		{"missing cert file", l.Endpoint, client.CertificateFile(filepath.Join(l.Dir, "nope.pem")), &client.Options{ServiceCertFile: l.ServicePEM}, "couldn't load"},
		{"cert without key", l.Endpoint, client.CertificateFile(l.ServicePEM), &client.Options{ServiceCertFile: l.ServicePEM}, "couldn't load"},
		{"empty certificate", l.Endpoint, client.Certificate(tls.Certificate{}), &client.Options{ServiceCertFile: l.ServicePEM}, "no certificate"},
		{"nil token source", l.Endpoint, client.FromTokenSource(nil), &client.Options{ServiceCertFile: l.ServicePEM}, "nil"},
		{"negative retries", l.Endpoint, admin, &client.Options{ServiceCertFile: l.ServicePEM, Retry: client.RetryPolicy{MaxAttempts: -1}}, "MaxAttempts"},
		{"max below base", l.Endpoint, admin, &client.Options{ServiceCertFile: l.ServicePEM, Retry: client.RetryPolicy{BaseDelay: time.Second, MaxDelay: time.Millisecond}}, "MaxDelay"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := client.New(tc.endpoint, tc.cred, tc.opts)
			if err == nil {
				c.Close()
				t.Fatal("New succeeded")
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %q does not mention %q", err, tc.want)
			}
		})
	}
	// The error without trust explains every choice.
	_, err = client.New(l.Endpoint, admin, &client.Options{})
	for _, want := range []string{"ServiceCertFile", "ServiceCertPEM", "TrustOnFirstUse"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %s", err, want)
		}
	}
	// Pinning from bytes works as well as from the file.
	c, err := client.New(l.Endpoint, admin, &client.Options{ServiceCertPEM: servicePEM})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.ListCollections(testContext(t)); err != nil {
		t.Fatal(err)
	}
	if c.Endpoint() != l.Endpoint || !c.ServiceCertificate().Equal(l.ids.Service.Cert) {
		t.Fatalf("Endpoint %q, service certificate %v", c.Endpoint(), c.ServiceCertificate().Subject)
	}
}

func TestAppendAndRead(t *testing.T) {
	l := newLedger(t, ledgerOptions{})
	ctx := testContext(t)
	c := connect(t, l, l.ContributorPEM)

	first, err := c.AppendToLedger(ctx, "Hello world 0", client.WaitForCommit())
	if err != nil {
		t.Fatal(err)
	}
	if first.CollectionID != "subledger:0" || first.TransactionID == "" {
		t.Fatalf("append result %+v", first)
	}
	st, err := c.GetTransactionStatus(ctx, first.TransactionID)
	if err != nil || st.State != client.StateCommitted || st.TransactionID != first.TransactionID {
		t.Fatalf("status %+v, %v", st, err)
	}
	second, err := c.AppendToLedger(ctx, "Hello world 1")
	if err != nil {
		t.Fatal(err)
	}
	if err := c.WaitUntilDurable(ctx, second.TransactionID, 0, -1); err != nil {
		t.Fatal(err)
	}
	sub0, err := c.AppendToLedger(ctx, "Hello world sub-ledger 0", client.InCollection("sub-ledger"))
	if err != nil {
		t.Fatal(err)
	}
	if sub0.CollectionID != "sub-ledger" {
		t.Fatalf("append result %+v", sub0)
	}
	sub1, err := c.AppendToLedger(ctx, "Hello world sub-ledger 1", client.InCollection("sub-ledger"), client.WaitForCommit())
	if err != nil {
		t.Fatal(err)
	}

	for _, tc := range []struct {
		txID, collection string
		want             client.Entry
	}{
		{first.TransactionID, "", client.Entry{TransactionID: first.TransactionID, Contents: "Hello world 0", CollectionID: "subledger:0"}},
		{first.TransactionID, "subledger:0", client.Entry{TransactionID: first.TransactionID, Contents: "Hello world 0", CollectionID: "subledger:0"}},
		{"", "", client.Entry{TransactionID: second.TransactionID, Contents: "Hello world 1", CollectionID: "subledger:0"}},
		{sub0.TransactionID, "sub-ledger", client.Entry{TransactionID: sub0.TransactionID, Contents: "Hello world sub-ledger 0", CollectionID: "sub-ledger"}},
		{"", "sub-ledger", client.Entry{TransactionID: sub1.TransactionID, Contents: "Hello world sub-ledger 1", CollectionID: "sub-ledger"}},
	} {
		got, err := c.GetLedgerEntry(ctx, tc.txID, tc.collection)
		if err != nil || got != tc.want {
			t.Errorf("GetLedgerEntry(%q, %q) = %+v, %v; want %+v", tc.txID, tc.collection, got, err, tc.want)
		}
	}
	// An entry of another collection than the one named is not found.
	_, err = c.GetLedgerEntry(ctx, sub0.TransactionID, "subledger:0")
	expectResponseError(t, err, 404, "TransactionNotFound", client.ErrNotFound)
	// Nor is it without a collection: that reads the default collection.
	_, err = c.GetLedgerEntry(ctx, sub0.TransactionID, "")
	expectResponseError(t, err, 404, "TransactionNotFound", client.ErrNotFound)

	colls, err := c.ListCollections(ctx)
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(colls)
	if !slices.Equal(colls, []string{"sub-ledger", "subledger:0"}) {
		t.Fatalf("collections %q", colls)
	}
	// Contents round-trip byte for byte, whatever they hold.
	odd := "ünïcødé \u2028 \"quoted\" <tag> & \\ \x01 " + strings.Repeat("x", 4000)
	res, err := c.AppendToLedger(ctx, odd, client.WaitForCommit())
	if err != nil {
		t.Fatal(err)
	}
	if got, err := c.GetLedgerEntry(ctx, res.TransactionID, ""); err != nil || got.Contents != odd {
		t.Fatalf("odd contents came back as %q, %v", got.Contents, err)
	}
}

func TestReceiptVerifiesEndToEnd(t *testing.T) {
	l := newLedger(t, ledgerOptions{})
	ctx := testContext(t)
	c := connect(t, l, l.ContributorPEM)
	reader := connect(t, l, l.ReaderPEM)
	res, err := c.AppendToLedger(ctx, "receipt me", client.InCollection("receipts"), client.WaitForCommit())
	if err != nil {
		t.Fatal(err)
	}
	rec, err := reader.GetTransactionReceipt(ctx, res.TransactionID)
	if err != nil {
		t.Fatal(err)
	}
	if rec.TransactionID != res.TransactionID || rec.Receipt.LeafComponents == nil {
		t.Fatalf("receipt %+v", rec)
	}
	if err := reader.VerifyReceipt(rec); err != nil {
		t.Fatalf("VerifyReceipt: %v", err)
	}
	if err := rec.Verify(l.ids.Service.Cert); err != nil {
		t.Fatalf("Verify: %v", err)
	}
	// The raw body verifies on its own too, for receipts kept for later.
	if err := receipt.VerifyPEM(rec.Raw, reader.ServiceCertificatePEM()); err != nil {
		t.Fatalf("VerifyPEM of the raw body: %v", err)
	}

	// Against another service's certificate, it does not.
	other, err := identity.LoadOrCreate(t.TempDir(), identity.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := rec.Verify(other.Service.Cert); !errors.Is(err, receipt.ErrNotEndorsed) {
		t.Fatalf("Verify with another service's certificate: %v, want ErrNotEndorsed", err)
	}
	// Tampered receipts do not verify.
	tampered := *rec.Receipt
	lc := *tampered.LeafComponents
	lc.WriteSetDigest = strings.Repeat("0", 64)
	tampered.LeafComponents = &lc
	bad := &client.Receipt{TransactionID: rec.TransactionID, Receipt: &tampered}
	if err := reader.VerifyReceipt(bad); !errors.Is(err, receipt.ErrBadSignature) {
		t.Fatalf("tampered write set digest: %v, want ErrBadSignature", err)
	}
	// A valid receipt presented as another transaction's does not verify.
	mislabelled := &client.Receipt{TransactionID: "1.1", Receipt: rec.Receipt}
	if err := reader.VerifyReceipt(mislabelled); !errors.Is(err, receipt.ErrMalformed) {
		t.Fatalf("mislabelled receipt: %v, want ErrMalformed", err)
	}
	if err := reader.VerifyReceipt(&client.Receipt{}); !errors.Is(err, receipt.ErrMalformed) {
		t.Fatalf("empty receipt: %v", err)
	}

	// A signature transaction has a receipt too (it proves the root).
	sig := fmt.Sprintf("%d.%d", l.node.CommittedTxID().View, l.node.CommittedSeqno())
	sigRec, err := reader.GetTransactionReceipt(ctx, sig)
	if err != nil {
		t.Fatal(err)
	}
	if err := reader.VerifyReceipt(sigRec); err != nil {
		t.Fatalf("signature receipt: %v", err)
	}
}

// TestPendingTransaction observes a transaction while it is Pending: a
// long signature interval keeps a fresh write uncommitted for up to 1.5s.
// If a signature lands while the checks run, it tries again.
func TestPendingTransaction(t *testing.T) {
	l := newLedger(t, ledgerOptions{signatureInterval: 1500 * time.Millisecond})
	ctx := testContext(t)
	c := connect(t, l, l.ContributorPEM)
	for attempt := 0; ; attempt++ {
		if attempt == 5 {
			t.Fatal("never observed a Pending transaction")
		}
		// Commit one write first, so that the signature timer has just
		// been used and the next write waits for the next tick.
		if _, err := c.AppendToLedger(ctx, "before", client.WaitForCommit()); err != nil {
			t.Fatal(err)
		}
		res, err := c.AppendToLedger(ctx, fmt.Sprintf("pending %d", attempt))
		if err != nil {
			t.Fatal(err)
		}
		id := res.TransactionID
		st, stErr := c.GetTransactionStatus(ctx, id)
		_, recErr := c.GetTransactionReceipt(ctx, id)
		waitErr := c.WaitUntilDurable(ctx, id, 5*time.Millisecond, 2)
		_, entryErr := c.GetLedgerEntry(ctx, id, "", client.MaxAttempts(2), client.PollInterval(5*time.Millisecond))
		pid, _ := node.ParseTxID(id)
		if l.node.Status(pid) != node.StatusPending {
			continue // committed while checking
		}
		if stErr != nil || st.State != client.StatePending {
			t.Fatalf("status %+v, %v; want Pending", st, stErr)
		}
		expectResponseError(t, recErr, 406, "UncommittedLedgerEntry", client.ErrUncommitted)
		if !errors.Is(waitErr, client.ErrTimeout) || !strings.Contains(waitErr.Error(), "Pending after 2 status queries") {
			t.Fatalf("WaitUntilDurable: %v, want ErrTimeout", waitErr)
		}
		if !errors.Is(entryErr, client.ErrTimeout) {
			t.Fatalf("GetLedgerEntry while Pending: %v, want ErrTimeout", entryErr)
		}

		// A range that reaches the pending write is Loading until it
		// commits: the iterator asks again and then gets it.
		n := l.requests.len()
		var got []client.Entry
		for e, err := range c.GetLedgerEntries(ctx, id, id, "", client.MaxAttempts(0)) {
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, e)
		}
		if len(got) != 1 || got[0].TransactionID != id {
			t.Fatalf("range of the pending write: %+v", got)
		}
		if reqs := l.requests.since(n); len(reqs) < 2 {
			t.Errorf("the Loading page was requested %d times: %q", len(reqs), reqs)
		}
		// Waiting for the receipt succeeds once committed.
		rec, err := c.GetTransactionReceipt(ctx, id, client.WaitForCommit(), client.MaxAttempts(0))
		if err != nil {
			t.Fatal(err)
		}
		if err := c.VerifyReceipt(rec); err != nil {
			t.Fatal(err)
		}
		return
	}
}

// TestAppendWaitsForCommit checks that WaitForCommit polls the status until
// the write commits, and reports ErrTimeout with the transaction id when
// its attempts run out first.
func TestAppendWaitsForCommit(t *testing.T) {
	l := newLedger(t, ledgerOptions{signatureInterval: 300 * time.Millisecond})
	ctx := testContext(t)
	c := connect(t, l, l.ContributorPEM)
	res, err := c.AppendToLedger(ctx, "slow commit", client.WaitForCommit(), client.MaxAttempts(0))
	if err != nil {
		t.Fatal(err)
	}
	pid, _ := node.ParseTxID(res.TransactionID)
	if l.node.Status(pid) != node.StatusCommitted {
		t.Fatalf("AppendToLedger returned before commit")
	}
	for range 5 {
		if _, err := c.AppendToLedger(ctx, "x", client.WaitForCommit()); err != nil {
			t.Fatal(err)
		}
		res, err = c.AppendToLedger(ctx, "impatient", client.WaitForCommit(), client.MaxAttempts(1))
		if errors.Is(err, client.ErrTimeout) {
			if res.TransactionID == "" {
				t.Fatal("no transaction id with the timeout")
			}
			return
		}
	}
	t.Fatalf("never timed out waiting: %v", err)
}

func TestErrorsFromLedger(t *testing.T) {
	l := newLedger(t, ledgerOptions{})
	ctx := testContext(t)
	admin := connect(t, l, l.AdminPEM)
	reader := connect(t, l, l.ReaderPEM)
	stranger := connect(t, l, l.StrangerPEM)

	// 403: a Reader may not write, a stranger may do nothing.
	_, err := reader.AppendToLedger(ctx, "no")
	expectResponseError(t, err, 403, "NotAllowed", client.ErrForbidden)
	if !strings.Contains(err.Error(), "POST /app/transactions: 403 NotAllowed: Not allowed to call POST /app/transactions") {
		t.Errorf("error text %q", err)
	}
	_, err = stranger.ListCollections(ctx)
	expectResponseError(t, err, 403, "NotAllowed", client.ErrForbidden)
	_, err = reader.GetUser(ctx, userIDOf(t, l.AdminPEM))
	expectResponseError(t, err, 403, "NotAllowed", client.ErrForbidden)

	// 404.
	res, err := admin.AppendToLedger(ctx, "x", client.WaitForCommit())
	if err != nil {
		t.Fatal(err)
	}
	far := fmt.Sprintf("%d.%d", l.node.CommittedTxID().View, l.node.LastSeqno()+1000)
	_, err = reader.GetLedgerEntry(ctx, far, "")
	expectResponseError(t, err, 404, "TransactionNotFound", client.ErrNotFound)
	_, err = reader.GetTransactionReceipt(ctx, far)
	expectResponseError(t, err, 404, "TransactionNotFound", client.ErrNotFound)
	_, err = reader.GetLedgerEntry(ctx, "", "no-such-collection")
	expectResponseError(t, err, 404, "ResourceNotFound", client.ErrNotFound)
	_, err = admin.GetUser(ctx, "no-such-user")
	expectResponseError(t, err, 404, "ResourceNotFound", client.ErrNotFound)
	err = admin.DeleteUser(ctx, "no-such-user")
	expectResponseError(t, err, 404, "ResourceNotFound", client.ErrNotFound)
	// An unknown transaction will never commit: its status is 404
	// InvalidTransactionId, and waiting for it ends at the first answer.
	_, err = reader.GetTransactionStatus(ctx, far)
	expectResponseError(t, err, 404, "InvalidTransactionId", client.ErrNotFound)
	n := l.requests.len()
	err = reader.WaitUntilDurable(ctx, far, time.Millisecond, 5)
	expectResponseError(t, err, 404, "InvalidTransactionId", client.ErrNotFound)
	if reqs := l.requests.since(n); len(reqs) != 1 {
		t.Fatalf("waiting for an unknown transaction made %d requests", len(reqs))
	}

	// 400.
	_, err = reader.GetTransactionStatus(ctx, "not-a-txid")
	expectResponseError(t, err, 400, "InvalidTransactionId", client.ErrBadRequest)
	_, err = reader.GetLedgerEntry(ctx, "1.x", "")
	expectResponseError(t, err, 400, "InvalidTransactionId", client.ErrBadRequest)
	_, err = admin.CreateOrUpdateUser(ctx, "someone", "Superuser")
	expectResponseError(t, err, 400, "InvalidInput", client.ErrBadRequest)
	_, err = admin.AppendToLedger(ctx, "x", client.InCollection(strings.Repeat("c", 300)))
	expectResponseError(t, err, 400, "InvalidQueryParameterValue", client.ErrBadRequest)
	for _, err := range reader.GetLedgerEntries(ctx, res.TransactionID, "1.1", "") {
		expectResponseError(t, err, 400, "InvalidQueryParameterValue", client.ErrBadRequest)
	}
	badVersion := connect(t, l, l.ReaderPEM, func(o *client.Options) { o.APIVersion = "1999-01-01" })
	_, err = badVersion.ListCollections(ctx)
	expectResponseError(t, err, 400, "UnsupportedApiVersionValue", client.ErrBadRequest)
	// Empty ids are refused before any request.
	if _, err := reader.GetTransactionStatus(ctx, ""); err == nil {
		t.Error("empty transaction id accepted")
	}
	if _, err := admin.GetUser(ctx, ""); err == nil {
		t.Error("empty user id accepted")
	}

	// 409: the last Administrator stays.
	err = admin.DeleteUser(ctx, userIDOf(t, l.AdminPEM))
	expectResponseError(t, err, 409, "LastAdministrator", client.ErrConflict)

	// 401: a bearer token, on a ledger that accepts none.
	token := connectWith(t, l, client.FromTokenSource(staticTokens("not-a-token")))
	_, err = token.ListCollections(ctx)
	expectResponseError(t, err, 401, "InvalidAuthenticationInfo", client.ErrUnauthorized)

	// A cancelled context stops a call at once.
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := reader.ListCollections(cctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled call: %v", err)
	}
}

// TestRangePastTheEnd checks that GetLedgerEntries over a range that
// starts past the end of the ledger ends at once, with no entries, whether
// or not it has an end.
func TestRangePastTheEnd(t *testing.T) {
	l := newLedger(t, ledgerOptions{})
	ctx := testContext(t)
	c := connect(t, l, l.ContributorPEM)
	res, err := c.AppendToLedger(ctx, "the last entry", client.WaitForCommit())
	if err != nil {
		t.Fatal(err)
	}
	tx, _ := node.ParseTxID(res.TransactionID)
	past := func(n uint64) string { return node.TxID{View: tx.View, Seqno: l.node.LastSeqno() + n}.String() }
	// (10 past the end: a signature or two may still land after the commit.)
	for _, r := range [][2]string{{past(10), past(10)}, {past(10), past(100_000)}, {past(5000), ""}} {
		n := l.requests.len()
		for e, err := range c.GetLedgerEntries(ctx, r[0], r[1], "", client.MaxAttempts(0)) {
			t.Fatalf("range %s..%s: entry %+v, error %v", r[0], r[1], e, err)
		}
		if reqs := l.requests.since(n); len(reqs) != 1 {
			t.Errorf("range %s..%s: %d requests: %q", r[0], r[1], len(reqs), reqs)
		}
	}
}

// TestRangeAcrossWindows lists collections whose entries span several
// 1001-seqno pages, with signatures and other collections interleaved.
func TestRangeAcrossWindows(t *testing.T) {
	l := newLedger(t, ledgerOptions{})
	ctx := testContext(t)
	reader := connect(t, l, l.ReaderPEM)
	ids := l.bulk(t, 2600, "subledger:0", "other")
	var want, wantOther []string
	for i, id := range ids {
		if i%2 == 0 {
			want = append(want, id)
		} else {
			wantOther = append(wantOther, id)
		}
	}
	collect := func(from, to, collection string) ([]string, []string) {
		t.Helper()
		n := l.requests.len()
		var got []string
		for e, err := range reader.GetLedgerEntries(ctx, from, to, collection) {
			if err != nil {
				t.Fatal(err)
			}
			if e.CollectionID != collection && !(collection == "" && e.CollectionID == "subledger:0") {
				t.Fatalf("entry %+v of another collection", e)
			}
			got = append(got, e.TransactionID)
		}
		return got, l.requests.since(n)
	}

	got, reqs := collect("", "", "")
	if !slices.Equal(got, want) {
		t.Fatalf("default collection: %d entries, want %d", len(got), len(want))
	}
	if len(reqs) < 3 {
		t.Fatalf("%d page requests, want at least 3: %q", len(reqs), reqs)
	}
	for i, r := range reqs {
		if strings.Count(r, "api-version=") != 1 || !strings.Contains(r, "api-version=2022-05-13") {
			t.Errorf("request %d %q: want api-version exactly once", i, r)
		}
		if i > 0 && !strings.Contains(r, "fromTransactionId=") {
			t.Errorf("request %d %q does not follow nextLink", i, r)
		}
	}

	got, _ = collect("", "", "other")
	if !slices.Equal(got, wantOther) {
		t.Fatalf("other collection: %d entries, want %d", len(got), len(wantOther))
	}
	// Bounds are inclusive, and may fall in any window.
	got, _ = collect(want[400], want[1200], "subledger:0")
	if !slices.Equal(got, want[400:1201]) {
		t.Fatalf("bounded range: %d entries, want %d", len(got), 801)
	}
	// Breaking out of the loop stops the requests.
	n := l.requests.len()
	count := 0
	for _, err := range reader.GetLedgerEntries(ctx, "", "", "") {
		if err != nil {
			t.Fatal(err)
		}
		if count++; count == 3 {
			break
		}
	}
	if reqs := l.requests.since(n); len(reqs) != 1 {
		t.Fatalf("early break made %d requests", len(reqs))
	}
	// An empty collection yields nothing.
	got, _ = collect("", "", "empty")
	if len(got) != 0 {
		t.Fatalf("empty collection: %d entries", len(got))
	}
}

func TestUsers(t *testing.T) {
	l := newLedger(t, ledgerOptions{})
	ctx := testContext(t)
	admin := connect(t, l, l.AdminPEM)
	stranger := connect(t, l, l.StrangerPEM)
	strangerID := userIDOf(t, l.StrangerPEM)

	u, err := admin.CreateOrUpdateUser(ctx, strangerID, client.RoleReader)
	if err != nil || u != (client.User{UserID: strangerID, Role: client.RoleReader}) {
		t.Fatalf("CreateOrUpdateUser: %+v, %v", u, err)
	}
	// The change governs the user's next request.
	if _, err := stranger.ListCollections(ctx); err != nil {
		t.Fatalf("new Reader cannot read: %v", err)
	}
	_, err = stranger.AppendToLedger(ctx, "not yet")
	expectResponseError(t, err, 403, "NotAllowed", client.ErrForbidden)

	if u, err = admin.CreateOrUpdateUser(ctx, strangerID, client.RoleContributor); err != nil || u.Role != client.RoleContributor {
		t.Fatalf("update: %+v, %v", u, err)
	}
	if u, err = admin.GetUser(ctx, strangerID); err != nil || u != (client.User{UserID: strangerID, Role: client.RoleContributor}) {
		t.Fatalf("GetUser: %+v, %v", u, err)
	}
	if _, err := stranger.AppendToLedger(ctx, "now I may"); err != nil {
		t.Fatalf("new Contributor cannot write: %v", err)
	}
	// Fingerprints are matched whatever their case.
	if u, err = admin.GetUser(ctx, strings.ToLower(strangerID)); err != nil || u.UserID != strangerID {
		t.Fatalf("GetUser in lower case: %+v, %v", u, err)
	}

	if err := admin.DeleteUser(ctx, strangerID); err != nil {
		t.Fatal(err)
	}
	_, err = stranger.ListCollections(ctx)
	expectResponseError(t, err, 403, "NotAllowed", client.ErrForbidden)
	_, err = admin.GetUser(ctx, strangerID)
	expectResponseError(t, err, 404, "", client.ErrNotFound)

	// An Entra object id is a user id like any other.
	const oid = "6696d1bc-6012-47da-8556-ab4c747999c9"
	if u, err = admin.CreateOrUpdateUser(ctx, oid, client.RoleAdministrator); err != nil || u.Role != client.RoleAdministrator {
		t.Fatalf("CreateOrUpdateUser(oid): %+v, %v", u, err)
	}
	if err := admin.DeleteUser(ctx, oid); err != nil {
		t.Fatal(err)
	}
}

func TestGovernance(t *testing.T) {
	l := newLedger(t, ledgerOptions{})
	ctx := testContext(t)
	reader := connect(t, l, l.ReaderPEM)

	cons, err := reader.GetConsortium(ctx)
	if err != nil {
		t.Fatal(err)
	}
	memberPEM, err := os.ReadFile(l.MemberPEM)
	if err != nil {
		t.Fatal(err)
	}
	memberDER, _ := certDER(memberPEM)
	if len(cons.Members) != 1 {
		t.Fatalf("members %+v", cons.Members)
	}
	m := cons.Members[0]
	gotDER, err := certDER([]byte(m.Certificate))
	if err != nil || !slices.Equal(gotDER, memberDER) {
		t.Fatalf("member certificate %q", m.Certificate)
	}
	sum := sha256.Sum256(memberDER)
	if m.ID != hex.EncodeToString(sum[:]) {
		t.Errorf("member id %s", m.ID)
	}

	con, err := reader.GetConstitution(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if con.Script == "" || len(con.Digest) != 64 {
		t.Fatalf("constitution %+v", con)
	}

	quotes, err := reader.GetEnclaveQuotes(ctx)
	if err != nil {
		t.Fatal(err)
	}
	q, ok := quotes.Quotes[quotes.CurrentNodeID]
	if !ok || q.NodeID != l.ids.Node.ID || q.QuoteVersion == "" || q.Raw == "" {
		t.Fatalf("quotes %+v", quotes)
	}
	// MREnclave is the measurement the (virtual) quote binds.
	raw, err := hex.DecodeString(q.Raw)
	if err != nil {
		t.Fatal(err)
	}
	rd, _ := attest.ReportData(&l.ids.Node.Key.PublicKey)
	if vq, err := attest.VerifyVirtual(raw, rd, q.MREnclave); err != nil || q.MREnclave == "" || vq.Measurement != q.MREnclave {
		t.Fatalf("mrenclave %q does not match the quote: %v", q.MREnclave, err)
	}

	id, err := reader.GetLedgerIdentity(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	cert, err := id.Certificate()
	if err != nil || !cert.Equal(reader.ServiceCertificate()) || id.LedgerID != "test-ledger" {
		t.Fatalf("ledger identity %+v, %v", id, err)
	}
}

func TestTrustOnFirstUse(t *testing.T) {
	l := newLedger(t, ledgerOptions{})
	ctx := testContext(t)
	path := filepath.Join(t.TempDir(), "ledger.pem")
	opts := &client.Options{TrustOnFirstUse: true, ServiceCertFile: path}
	c, err := client.New(l.Endpoint, client.CertificateFile(l.ReaderPEM), opts)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if !c.ServiceCertificate().Equal(l.ids.Service.Cert) {
		t.Fatal("fetched another certificate")
	}
	saved, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("the fetched certificate was not saved: %v", err)
	}
	if der, _ := certDER(saved); !slices.Equal(der, l.ids.Service.Cert.Raw) {
		t.Fatal("saved another certificate")
	}
	if _, err := c.ListCollections(ctx); err != nil {
		t.Fatal(err)
	}
	// Once saved, the file is pinned and nothing is fetched.
	n := l.requests.len()
	c2, err := client.New(l.Endpoint, client.CertificateFile(l.ReaderPEM), opts)
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	if reqs := l.requests.since(n); len(reqs) != 0 {
		t.Fatalf("fetched again: %q", reqs)
	}
	// Without a file, the certificate is kept in memory only.
	c3, err := client.New(l.Endpoint, client.CertificateFile(l.ReaderPEM), &client.Options{TrustOnFirstUse: true})
	if err != nil {
		t.Fatal(err)
	}
	defer c3.Close()
	if !c3.ServiceCertificate().Equal(l.ids.Service.Cert) {
		t.Fatal("fetched another certificate")
	}
	if reqs := l.requests.since(n); len(reqs) != 1 || !strings.HasPrefix(reqs[0], "GET /ledgerIdentity/127?api-version=2022-05-13") {
		t.Fatalf("identity requests %q", reqs)
	}
}

func TestWrongServiceCertificate(t *testing.T) {
	l := newLedger(t, ledgerOptions{})
	ctx := testContext(t)
	other, err := identity.LoadOrCreate(t.TempDir(), identity.Options{})
	if err != nil {
		t.Fatal(err)
	}
	c, err := client.New(l.Endpoint, client.CertificateFile(l.AdminPEM), &client.Options{ServiceCertPEM: other.Service.CertPEM})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	n := l.requests.len()
	start := time.Now()
	_, err = c.ListCollections(ctx)
	if err == nil || !strings.Contains(err.Error(), "certificate signed by unknown authority") {
		t.Fatalf("connecting with the wrong pin: %v", err)
	}
	if time.Since(start) > time.Second {
		t.Errorf("a certificate failure was retried (%v)", time.Since(start))
	}
	if reqs := l.requests.since(n); len(reqs) != 0 {
		t.Fatalf("requests reached the server: %q", reqs)
	}

	// The host name is checked as usual: the node's certificate names
	// localhost and 127.0.0.1, not ledger.example.
	addr := strings.TrimPrefix(l.Endpoint, "https://")
	_, port, _ := strings.Cut(addr, ":")
	tr := &http.Transport{DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, network, addr)
	}}
	for host, ok := range map[string]bool{"ledger.example": false, "localhost": true} {
		c, err := client.New("https://"+host+":"+port, client.CertificateFile(l.ReaderPEM),
			&client.Options{ServiceCertFile: l.ServicePEM, Transport: tr})
		if err != nil {
			t.Fatal(err)
		}
		_, err = c.ListCollections(ctx)
		c.Close()
		if ok && err != nil {
			t.Errorf("via %s: %v", host, err)
		}
		if !ok && (err == nil || !strings.Contains(err.Error(), "not ledger.example")) {
			t.Errorf("via %s: %v, want a host name error", host, err)
		}
	}
}

// staticTokens is a TokenSource of one token.
type staticTokens string

func (s staticTokens) Token() (*client.Token, error) {
	return &client.Token{AccessToken: string(s), Expiry: time.Now().Add(time.Hour)}, nil
}

// entraCredential is a TokenCredential that signs tokens with a test
// issuer and records the scopes asked for.
type entraCredential struct {
	issuer *authtest.Issuer
	oid    string
	calls  atomic.Int32
	scopes atomic.Value
}

func (e *entraCredential) GetToken(_ context.Context, scopes []string) (client.AccessToken, error) {
	e.calls.Add(1)
	e.scopes.Store(slices.Clone(scopes))
	now := time.Now()
	return client.AccessToken{Token: e.issuer.Sign(authtest.Claims(authtest.IssuerURL, authtest.Audience, e.oid, now)),
		ExpiresOn: now.Add(time.Hour)}, nil
}

func TestTokenCredentials(t *testing.T) {
	issuer := authtest.NewIssuer(t, "ES256")
	jwks := issuer.JWKSFile(t)
	v, err := auth.NewJWTVerifier([]auth.IssuerConfig{{Issuer: authtest.IssuerURL, Audience: authtest.Audience, JWKSFile: jwks}}, auth.JWTOptions{})
	if err != nil {
		t.Fatal(err)
	}
	l := newLedger(t, ledgerOptions{jwt: v})
	ctx := testContext(t)
	admin := connect(t, l, l.AdminPEM)
	const oid = "6696d1bc-6012-47da-8556-ab4c747999c9"

	// Azure's TokenCredential shape, with the default scope.
	cred := &entraCredential{issuer: issuer, oid: oid}
	entra := connectWith(t, l, client.FromTokenCredential(cred))
	_, err = entra.ListCollections(ctx)
	expectResponseError(t, err, 403, "NotAllowed", client.ErrForbidden) // authenticated, but no user yet
	if _, err := admin.CreateOrUpdateUser(ctx, oid, client.RoleContributor); err != nil {
		t.Fatal(err)
	}
	res, err := entra.AppendToLedger(ctx, "from Entra", client.WaitForCommit())
	if err != nil {
		t.Fatal(err)
	}
	if got := cred.scopes.Load().([]string); !slices.Equal(got, []string{client.DefaultScope}) {
		t.Errorf("scopes %q", got)
	}
	if n := cred.calls.Load(); n != 1 {
		t.Errorf("GetToken called %d times; the token should be reused", n)
	}

	// An oauth2-shaped TokenSource.
	token := issuer.Sign(authtest.Claims(authtest.IssuerURL, authtest.Audience, oid, time.Now()))
	source := connectWith(t, l, client.FromTokenSource(staticTokens(token)))
	if e, err := source.GetLedgerEntry(ctx, res.TransactionID, ""); err != nil || e.Contents != "from Entra" {
		t.Fatalf("GetLedgerEntry with a token source: %+v, %v", e, err)
	}
	// A token source's failure is returned without a request.
	var fails atomic.Int32
	failing := connectWith(t, l, client.FromTokenSource(failingTokens{&fails}))
	n := l.requests.len()
	if _, err := failing.ListCollections(ctx); err == nil || !strings.Contains(err.Error(), "no token today") {
		t.Fatalf("failing token source: %v", err)
	}
	if fails.Load() != 1 {
		t.Errorf("the token source was asked %d times; its failure is not the ledger's to retry", fails.Load())
	}
	if reqs := l.requests.since(n); len(reqs) != 0 {
		t.Fatalf("requests sent without a token: %q", reqs)
	}
}

type failingTokens struct{ calls *atomic.Int32 }

func (f failingTokens) Token() (*client.Token, error) {
	f.calls.Add(1)
	return nil, errors.New("no token today")
}

// TestConcurrentUse shares one client between goroutines that write, read
// and verify at once.
func TestConcurrentUse(t *testing.T) {
	l := newLedger(t, ledgerOptions{})
	ctx := testContext(t)
	c := connect(t, l, l.ContributorPEM)
	const workers, writes = 8, 10
	errs := make(chan error, workers)
	for w := range workers {
		go func() {
			errs <- func() error {
				coll := fmt.Sprintf("worker-%d", w)
				for i := range writes {
					res, err := c.AppendToLedger(ctx, fmt.Sprintf("%d", i), client.InCollection(coll), client.WaitForCommit())
					if err != nil {
						return err
					}
					rec, err := c.GetTransactionReceipt(ctx, res.TransactionID)
					if err != nil {
						return err
					}
					if err := c.VerifyReceipt(rec); err != nil {
						return err
					}
				}
				n := 0
				for e, err := range c.GetLedgerEntries(ctx, "", "", coll) {
					if err != nil {
						return err
					}
					if e.Contents != fmt.Sprint(n) {
						return fmt.Errorf("%s: entry %d is %q", coll, n, e.Contents)
					}
					n++
				}
				if n != writes {
					return fmt.Errorf("%s: %d entries", coll, n)
				}
				return nil
			}()
		}()
	}
	for range workers {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
}

// TestLegacyAPIVersion speaks 0.1-preview: subLedgerId and @nextLink.
func TestLegacyAPIVersion(t *testing.T) {
	l := newLedger(t, ledgerOptions{})
	ctx := testContext(t)
	c := connect(t, l, l.AdminPEM, func(o *client.Options) { o.APIVersion = "0.1-preview" })
	res, err := c.AppendToLedger(ctx, "old times", client.InCollection("legacy"), client.WaitForCommit())
	if err != nil {
		t.Fatal(err)
	}
	if res.CollectionID != "legacy" {
		t.Fatalf("append result %+v", res)
	}
	if e, err := c.GetLedgerEntry(ctx, res.TransactionID, "legacy"); err != nil || e.CollectionID != "legacy" || e.Contents != "old times" {
		t.Fatalf("entry %+v, %v", e, err)
	}
	l.bulk(t, 250, "legacy")
	count := 0
	for e, err := range c.GetLedgerEntries(ctx, "", "", "legacy") {
		if err != nil {
			t.Fatal(err)
		}
		if e.CollectionID != "legacy" {
			t.Fatalf("entry %+v", e)
		}
		count++
	}
	if count != 251 {
		t.Fatalf("%d entries, want 251", count)
	}
	rec, err := c.GetTransactionReceipt(ctx, res.TransactionID)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.VerifyReceipt(rec); err != nil {
		t.Fatal(err)
	}
	stranger := userIDOf(t, l.StrangerPEM)
	if u, err := c.CreateOrUpdateUser(ctx, stranger, client.RoleReader); err != nil || u.Role != client.RoleReader {
		t.Fatalf("user %+v, %v", u, err)
	}
}
