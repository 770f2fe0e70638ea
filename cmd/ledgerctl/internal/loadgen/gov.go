package loadgen

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net/http"
	"sync"
	"time"

	"github.com/ledgerd/ledgerd/client"
)

// GovReport is what the governance load (Options.GovEvery) did: one member
// proposing set_user of a fresh user and voting yes, every GovEvery, from
// the start of the append phase's warm-up to the end of the last phase.
type GovReport struct {
	EveryMS float64 `json:"every_ms"`
	// Proposals is the proposals created and Accepted by the member's vote.
	Proposals int `json:"proposals"`
	// Latency is each proposal's create + vote, until Accepted and committed.
	Latency      LatencySummary `json:"latency"`
	Errors       int            `json:"errors"`
	ErrorSamples []string       `json:"error_samples,omitempty"`
	// Missed counts the intervals skipped because the previous proposal was
	// not done yet.
	Missed int `json:"missed"`
}

// govLoad proposes and votes every o.GovEvery until stop is called.
type govLoad struct {
	c       *client.Client
	every   time.Duration
	mu      sync.Mutex
	lat     []time.Duration
	errs    int
	samples []string
	missed  int
}

func newGovLoad(o Options) (*govLoad, error) {
	c, err := client.New(o.Endpoint, client.CertificateFile(o.MemberCert), &client.Options{
		ServiceCertFile: o.ServiceCert,
		HTTPClient:      &http.Client{Timeout: o.Timeout},
		Retry:           client.RetryPolicy{MaxAttempts: 1},
	})
	if err != nil {
		return nil, fmt.Errorf("--member-cert: %w", err)
	}
	if c.MemberSigner() == nil {
		return nil, fmt.Errorf("--member-cert %s: not an ECDSA member certificate and key", o.MemberCert)
	}
	return &govLoad{c: c, every: o.GovEvery}, nil
}

// check makes one proposal before the run, so that a wrong member
// credential fails once and clearly.
func (g *govLoad) check(ctx context.Context) error {
	return g.once(ctx)
}

// run proposes every interval until ctx ends.
func (g *govLoad) run(ctx context.Context) {
	tick := time.NewTicker(g.every)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		start := time.Now()
		err := g.once(ctx)
		if ctx.Err() != nil {
			return // a proposal cut short by the end of the run is not an error
		}
		took := time.Since(start)
		g.mu.Lock()
		// The ticker keeps one tick while a proposal runs and drops the others.
		if n := int(took / g.every); n > 1 {
			g.missed += n - 1
		}
		if err != nil {
			g.errs++
			if len(g.samples) < 3 {
				g.samples = append(g.samples, err.Error())
			}
		} else {
			g.lat = append(g.lat, took)
		}
		g.mu.Unlock()
	}
}

// once proposes set_user of a fresh Reader and votes yes; the proposal
// must end Accepted.
func (g *govLoad) once(ctx context.Context) error {
	certPEM, err := freshUserCert()
	if err != nil {
		return err
	}
	p, err := g.c.CreateProposal(ctx, client.Action{Name: "set_user",
		Args: map[string]string{"cert": string(certPEM), "role": "Reader"}})
	if err != nil {
		return fmt.Errorf("proposal: %w", err)
	}
	if p, err = g.c.Vote(ctx, p.ProposalID, true); err != nil {
		return fmt.Errorf("ballot: %w", err)
	}
	if p.State != client.ProposalAccepted {
		return fmt.Errorf("proposal %s is %s after the member's vote, not Accepted", p.ProposalID, p.State)
	}
	return nil
}

func (g *govLoad) report() *GovReport {
	g.mu.Lock()
	defer g.mu.Unlock()
	return &GovReport{EveryMS: ms(g.every), Proposals: len(g.lat), Latency: summarize(g.lat),
		Errors: g.errs, ErrorSamples: g.samples, Missed: g.missed}
}

// freshUserCert is a new self-signed P-256 certificate: a user nobody has
// seen, for set_user.
func freshUserCert() ([]byte, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 64))
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{SerialNumber: serial, Subject: pkix.Name{CommonName: "bench-gov-user"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), nil
}
