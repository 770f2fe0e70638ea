package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/ledgerd/ledgerd/client"
)

// Environment variables of the client commands. A flag given on the command
// line overrides its variable.
const (
	envEndpoint         = "LEDGER_ENDPOINT"          // --endpoint
	envCert             = "LEDGER_CERT"              // --cert
	envServiceCert      = "LEDGER_SERVICE_CERT"      // --service-cert
	envTokenFile        = "LEDGER_TOKEN_FILE"        // --token-file
	envCollection       = "LEDGER_COLLECTION"        // --collection
	envAPIVersion       = "LEDGER_API_VERSION"       // --api-version
	envIdentityEndpoint = "LEDGER_IDENTITY_ENDPOINT" // --identity-endpoint
)

// envHelp documents the environment variables, for `ledgerctl help`.
const envHelp = `
Environment (a flag overrides its variable):
  LEDGER_ENDPOINT           --endpoint           ledger URL, e.g. https://localhost:8443
  LEDGER_CERT               --cert               PEM file with the client certificate and key (ledgerd: DATA/admin.pem)
  LEDGER_TOKEN_FILE         --token-file         file holding a bearer token, instead of --cert (read again when it changes)
  LEDGER_SERVICE_CERT       --service-cert       the ledger's service certificate, pinned (ledgerd: DATA/service.pem)
  LEDGER_COLLECTION         --collection         collection to write and read (default: the ledger's default collection)
  LEDGER_API_VERSION        --api-version        api-version of every request (default ` + client.DefaultAPIVersion + `)
  LEDGER_IDENTITY_ENDPOINT  --identity-endpoint  identity service of 'identity' and --trust-on-first-use (default: the ledger)`

// Client defaults: a command-line tool waits for commits interactively, so
// it polls faster than the SDK's 500ms and is bounded by --timeout instead
// of a number of polls.
const (
	cliPollInterval   = 50 * time.Millisecond
	cliDefaultTimeout = time.Minute
	// cliMaxConns bounds the idle keep-alive connections kept to the
	// ledger over HTTP/1.1 (net/http's default of 2 would redial for most
	// of import's appends); over HTTP/2, one connection carries them all.
	cliMaxConns = 64
)

// connFlags are the flags of every command that talks to a ledger.
type connFlags struct {
	fs *flag.FlagSet // to tell flags given from defaults of the environment
	// endpoint is the ledger's URL; cert (a PEM certificate and key) or
	// tokenFile (a bearer token) the credential; serviceCert the pinned
	// service certificate, or with tofu where to save it on first use.
	endpoint, cert, tokenFile, serviceCert string
	tofu                                   bool
	// apiVersion and identityEndpoint set client.Options (default: the
	// client's).
	apiVersion, identityEndpoint string
	// json selects JSON output; timeout bounds the command (0: no limit).
	json    bool
	timeout time.Duration
}

// addConnFlags defines the connection flags on fs, with defaults from the
// environment. timeout is the default of --timeout (0: no limit).
func addConnFlags(fs *flag.FlagSet, timeout time.Duration) *connFlags {
	c := &connFlags{fs: fs}
	fs.StringVar(&c.endpoint, "endpoint", os.Getenv(envEndpoint), "ledger URL, e.g. https://localhost:8443 (env "+envEndpoint+")")
	fs.StringVar(&c.cert, "cert", os.Getenv(envCert), "PEM file with the client certificate and key (env "+envCert+")")
	fs.StringVar(&c.serviceCert, "service-cert", os.Getenv(envServiceCert), "the ledger's service certificate (PEM) to pin (env "+envServiceCert+")")
	fs.StringVar(&c.tokenFile, "token-file", os.Getenv(envTokenFile), "file with a bearer token, instead of --cert (env "+envTokenFile+")")
	fs.StringVar(&c.apiVersion, "api-version", os.Getenv(envAPIVersion), "api-version of the requests (default "+client.DefaultAPIVersion+"; env "+envAPIVersion+")")
	fs.StringVar(&c.identityEndpoint, "identity-endpoint", os.Getenv(envIdentityEndpoint), "identity service (default: the ledger; env "+envIdentityEndpoint+")")
	fs.BoolVar(&c.tofu, "trust-on-first-use", false, "fetch the service certificate unverified if --service-cert is unset or missing (and save it there)")
	fs.BoolVar(&c.json, "json", false, "print JSON for scripts instead of text")
	fs.DurationVar(&c.timeout, "timeout", timeout, "give up after this long (0: no limit)")
	return c
}

// addCollectionFlag defines --collection on fs.
func addCollectionFlag(fs *flag.FlagSet) *string {
	return fs.String("collection", os.Getenv(envCollection), "collection id (default: the ledger's default collection; env "+envCollection+")")
}

// setOnCommandLine reports whether a flag was given on the command line
// (rather than taken from the environment).
func setOnCommandLine(fs *flag.FlagSet, name string) bool {
	set := false
	fs.Visit(func(f *flag.Flag) { set = set || f.Name == name })
	return set
}

// credential returns the credential the flags name: --cert or --token-file.
// When both are set, one given on the command line wins over the other's
// environment variable. need says whether a credential is required.
func (c *connFlags) credential(need bool) (client.Credential, error) {
	cert, token := c.cert, c.tokenFile
	if cert != "" && token != "" {
		switch certFlag, tokenFlag := setOnCommandLine(c.fs, "cert"), setOnCommandLine(c.fs, "token-file"); {
		case certFlag && !tokenFlag:
			token = ""
		case tokenFlag && !certFlag:
			cert = ""
		default:
			return nil, usagef("give --cert or --token-file, not both (check %s and %s)", envCert, envTokenFile)
		}
	}
	switch {
	case cert != "":
		return client.CertificateFile(cert), nil
	case token != "":
		return client.FromTokenSource(&tokenFileSource{path: token}), nil
	case need:
		return nil, usagef("no credential: give --cert FILE (PEM certificate and key) or --token-file FILE, or set %s or %s", envCert, envTokenFile)
	default:
		return client.FromTokenSource(noToken{}), nil
	}
}

// newClient checks the flags and returns a client of the ledger they name.
// needCred says whether the command needs a credential.
func (c *connFlags) newClient(needCred bool) (*client.Client, error) {
	if c.endpoint == "" {
		return nil, usagef("no ledger: give --endpoint URL or set %s", envEndpoint)
	}
	if c.serviceCert == "" && !c.tofu {
		return nil, usagef("no service certificate to pin: give --service-cert FILE or set %s (or, unverified, --trust-on-first-use)", envServiceCert)
	}
	cred, err := c.credential(needCred)
	if err != nil {
		return nil, err
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = cliMaxConns
	cl, err := client.New(c.endpoint, cred, &client.Options{
		ServiceCertFile:  c.serviceCert,
		TrustOnFirstUse:  c.tofu,
		IdentityEndpoint: c.identityEndpoint,
		APIVersion:       c.apiVersion,
		Transport:        tr,
		PollInterval:     cliPollInterval,
		PollAttempts:     -1, // bounded by --timeout
	})
	if err != nil {
		return nil, err
	}
	return cl, nil
}

// errCommandTimeout is the cause of a command's context that ran out of
// time.
var errCommandTimeout = errors.New("gave up: --timeout passed")

// commandContext returns the context of a command: done on SIGINT or
// SIGTERM, or after timeout (if positive).
func commandContext(timeout time.Duration) (context.Context, context.CancelFunc) {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	if timeout <= 0 {
		return ctx, stop
	}
	tctx, cancel := context.WithTimeoutCause(ctx, timeout, fmt.Errorf("%w (%v)", errCommandTimeout, timeout))
	return tctx, func() { cancel(); stop() }
}

// tokenFileSource is a client.TokenSource that reads a bearer token from a
// file, again whenever the file changes (so that a token refresher can
// rewrite it while a long command runs).
type tokenFileSource struct {
	path string

	mu      sync.Mutex
	modTime time.Time
	size    int64
	token   string
}

// Token returns the token in the file: its content without surrounding
// white space, and without a "Bearer " prefix.
func (s *tokenFileSource) Token() (*client.Token, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	fi, err := os.Stat(s.path)
	if err != nil {
		return nil, fmt.Errorf("couldn't read the token file: %w", err)
	}
	if s.token == "" || !fi.ModTime().Equal(s.modTime) || fi.Size() != s.size {
		b, err := os.ReadFile(s.path)
		if err != nil {
			return nil, fmt.Errorf("couldn't read the token file: %w", err)
		}
		tok := strings.TrimSpace(string(b))
		if t, ok := cutPrefixFold(tok, "Bearer "); ok {
			tok = strings.TrimSpace(t)
		}
		if tok == "" || strings.ContainsAny(tok, " \t\r\n") {
			return nil, fmt.Errorf("token file %s: want one token, got %d bytes that are not one", s.path, len(b))
		}
		s.token, s.modTime, s.size = tok, fi.ModTime(), fi.Size()
	}
	return &client.Token{AccessToken: s.token}, nil
}

func cutPrefixFold(s, prefix string) (string, bool) {
	if len(s) >= len(prefix) && strings.EqualFold(s[:len(prefix)], prefix) {
		return s[len(prefix):], true
	}
	return s, false
}

// noToken is the credential of commands that need none (identity): a
// request that would need one fails.
type noToken struct{}

func (noToken) Token() (*client.Token, error) {
	return nil, errors.New("no credential: give --cert or --token-file")
}

// parseArgs parses flags and positional arguments in any order ("get 2.5
// --json" as well as "get --json 2.5"); "--" ends the flags.
func parseArgs(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return nil, err
			}
			return nil, fmt.Errorf("%w: %w", errUsage, err) // fs has printed it, with the usage
		}
		rest := fs.Args()
		if len(rest) == 0 {
			return pos, nil
		}
		// flag.Parse stops at the first non-flag, or after "--".
		if consumed := len(args) - len(rest); consumed > 0 && args[consumed-1] == "--" {
			return append(pos, rest...), nil
		}
		pos = append(pos, rest[0])
		args = rest[1:]
	}
}

// commandUsage sets fs's usage text: a synopsis and description, then the
// flags.
func commandUsage(fs *flag.FlagSet, stderr io.Writer, text string) {
	fs.Usage = func() {
		fmt.Fprintln(stderr, strings.TrimSpace(text))
		fmt.Fprintln(stderr, "\nFlags:")
		fs.PrintDefaults()
	}
}
