package client_test

import (
	"context"
	"fmt"
	"log"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/ledgerd/ledgerd/internal/api"
	"github.com/ledgerd/ledgerd/internal/attest"
	"github.com/ledgerd/ledgerd/internal/auth"
	"github.com/ledgerd/ledgerd/internal/gov"
	"github.com/ledgerd/ledgerd/internal/identity"
	"github.com/ledgerd/ledgerd/internal/node"
)

// testLedger is a real ledgerd node behind the real API server, in this
// process, with its data directory laid out as the ledgerd command lays it
// out: service.pem to pin, and one PEM file of certificate and key per user
// (admin.pem is the Administrator, as ledgerd writes it).
type testLedger struct {
	// Endpoint is the https URL of the node.
	Endpoint string
	// Dir is the data directory.
	Dir string
	// ServicePEM is the service certificate's file.
	ServicePEM string
	// AdminPEM, ContributorPEM and ReaderPEM hold the users of those
	// roles; StrangerPEM a certificate that is no user; MemberPEM the
	// consortium member's.
	AdminPEM, ContributorPEM, ReaderPEM, StrangerPEM, MemberPEM string

	ids  *identity.Identities
	node *node.Node
	hs   *http.Server
	// requests logs every request the server received.
	requests requestLog
}

// ledgerOptions tune a test ledger.
type ledgerOptions struct {
	signatureInterval time.Duration
	jwt               *auth.JWTVerifier
}

// requestLog records "METHOD /path?query" of each request received.
type requestLog struct {
	mu   sync.Mutex
	reqs []string
}

func (l *requestLog) add(r *http.Request) {
	l.mu.Lock()
	l.reqs = append(l.reqs, r.Method+" "+r.URL.RequestURI())
	l.mu.Unlock()
}

// since returns the requests logged after the first n.
func (l *requestLog) since(n int) []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.reqs[n:])
}

func (l *requestLog) len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.reqs)
}

// startLedger starts a test ledger for an example, exiting on failure.
// Stop it when done.
func startLedger() *testLedger {
	l, err := openLedger(ledgerOptions{})
	if err != nil {
		log.Fatal(err)
	}
	return l
}

// newLedger starts a test ledger that stops when the test ends.
func newLedger(t testing.TB, o ledgerOptions) *testLedger {
	t.Helper()
	l, err := openLedger(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(l.Stop)
	return l
}

func openLedger(o ledgerOptions) (l *testLedger, err error) {
	dir, err := os.MkdirTemp("", "ledgerd-client-test")
	if err != nil {
		return nil, err
	}
	l = &testLedger{Dir: dir}
	defer func() {
		if err != nil {
			l.Stop()
		}
	}()
	logger := slog.New(slog.DiscardHandler)
	if testing.Testing() && testing.Verbose() && os.Getenv("LEDGER_LOG") != "" {
		logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	l.ids, err = identity.LoadOrCreate(dir, identity.Options{DNSNames: []string{"localhost"}, IPs: []net.IP{net.IPv4(127, 0, 0, 1)}})
	if err != nil {
		return l, err
	}
	l.ServicePEM = filepath.Join(dir, identity.ServiceCertFile)
	users := map[string]auth.Role{"admin": auth.RoleAdministrator, "contributor": auth.RoleContributor, "reader": auth.RoleReader}
	var g gov.Genesis
	for _, name := range []string{"admin", "contributor", "reader", "stranger", "member0"} {
		certPEM, keyPEM, err := identity.NewClientIdentity(name, nil)
		if err != nil {
			return l, err
		}
		path := filepath.Join(dir, name+".pem")
		if err := identity.WriteCombinedPEM(path, certPEM, keyPEM); err != nil {
			return l, err
		}
		switch name {
		case "member0":
			g.Members = append(g.Members, certPEM)
		case "stranger":
		default:
			der, err := certDER(certPEM)
			if err != nil {
				return l, err
			}
			g.Users = append(g.Users, gov.User{ID: identity.Fingerprint(der), Role: users[name]})
		}
	}
	l.AdminPEM, l.ContributorPEM, l.ReaderPEM = filepath.Join(dir, "admin.pem"), filepath.Join(dir, "contributor.pem"), filepath.Join(dir, "reader.pem")
	l.StrangerPEM, l.MemberPEM = filepath.Join(dir, "stranger.pem"), filepath.Join(dir, "member0.pem")
	genesis, err := g.Writes()
	if err != nil {
		return l, err
	}
	l.node, err = node.Open(node.Config{Dir: dir, Identities: l.ids, Genesis: genesis, Logger: logger, SignatureInterval: o.signatureInterval})
	if err != nil {
		return l, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for l.node.CommittedSeqno() == 0 {
		if ctx.Err() != nil {
			return l, fmt.Errorf("genesis did not commit: %w", ctx.Err())
		}
		time.Sleep(2 * time.Millisecond)
	}
	platform, err := attest.NewVirtual("")
	if err != nil {
		return l, err
	}
	srv, err := api.New(api.Config{Node: l.node, Identities: l.ids, LedgerID: "test-ledger", JWT: o.jwt,
		Attestation: platform, LedgerDir: filepath.Join(dir, "ledger"), Logger: logger})
	if err != nil {
		return l, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return l, err
	}
	l.hs = srv.HTTPServer(ln.Addr().String())
	l.hs.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		l.requests.add(r)
		srv.ServeHTTP(w, r)
	})
	go l.hs.ServeTLS(ln, "", "")
	l.Endpoint = "https://" + ln.Addr().String()
	return l, nil
}

// Stop stops the server and the node and removes the data directory.
func (l *testLedger) Stop() {
	if l.hs != nil {
		l.hs.Close()
	}
	if l.node != nil {
		l.node.Close()
	}
	os.RemoveAll(l.Dir)
}

// bulk appends n entries straight to the node, cycling over collections,
// and waits until all are committed. It returns their transaction ids.
func (l *testLedger) bulk(t testing.TB, n int, collections ...string) []string {
	t.Helper()
	futs := make([]*node.Future, n)
	for i := range futs {
		f, err := l.node.SubmitEntry(collections[i%len(collections)], fmt.Appendf(nil, "bulk %d", i))
		if err != nil {
			t.Fatal(err)
		}
		futs[i] = f
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ids := make([]string, n)
	var last node.TxID
	for i, f := range futs {
		id, err := f.Wait(ctx)
		if err != nil {
			t.Fatal(err)
		}
		ids[i], last = id.String(), id
	}
	if err := l.node.WaitCommitted(ctx, last); err != nil {
		t.Fatal(err)
	}
	return ids
}
