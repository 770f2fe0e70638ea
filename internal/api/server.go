package api

import (
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/ledgerd/ledgerd/internal/attest"
	"github.com/ledgerd/ledgerd/internal/auth"
	"github.com/ledgerd/ledgerd/internal/constitution"
	"github.com/ledgerd/ledgerd/internal/gov"
	"github.com/ledgerd/ledgerd/internal/identity"
	"github.com/ledgerd/ledgerd/internal/node"
)

// ACL limits (acl-api.md §2 and the service's documented quotas).
const (
	// DefaultMaxCollections is the most collections a ledger may hold.
	DefaultMaxCollections = 5000
	// MaxContentsBytes is the largest entry contents, in bytes of UTF-8.
	MaxContentsBytes = 8 << 10
	// MaxCollectionIDBytes is the longest collection id, in bytes.
	MaxCollectionIDBytes = 256
	// MaxUserIDBytes is the longest user id, in bytes.
	MaxUserIDBytes = 256
	// MaxRoleNameBytes is the longest role name, in bytes.
	MaxRoleNameBytes = 64
	// MaxUserRoles is the most roles a user may hold.
	MaxUserRoles = 32
	// MaxActionBytes is the longest action name of a role, in bytes.
	MaxActionBytes = 256
	// MaxRoleActions is the most actions a user-defined role may allow.
	MaxRoleActions = 64
	// MaxRolesPerRequest is the most roles one PUT or PATCH /app/roles
	// may name.
	MaxRolesPerRequest = 32
	// MaxUserDefinedRoles is the most user-defined roles a ledger may
	// hold.
	MaxUserDefinedRoles = 256
	// MaxBodyBytes is the largest request body.
	MaxBodyBytes = 1 << 20
	// DefaultCollection is the collection of entries written without one.
	DefaultCollection = "subledger:0"
)

// Config configures a Server. Zero fields take the documented defaults.
type Config struct {
	// Node is the node the server fronts. Required.
	Node *node.Node
	// Identities are the node's identities: the service certificate is
	// handed out at /ledgerIdentity, the node certificate chain serves TLS,
	// the node key is bound by the enclave quote. Required.
	Identities *identity.Identities
	// LedgerID is the ledger's name, reported by /ledgerIdentity. Required.
	LedgerID string
	// JWTOptions tune the verification of bearer tokens from the governed
	// JWT issuers (public:ccf.gov.jwt.issuers and their keys, read from the
	// latest executed state on every request): clock, leeway, lifetime
	// bound, key refresh interval. A nil Logger means Logger.
	JWTOptions auth.JWTOptions
	// JWKSClient fetches the JWK Sets of governed issuers that have a
	// jwks_uri. Nil means a client with a 10 s timeout.
	JWKSClient *http.Client
	// JWT, if set, also accepts tokens from issuers outside governance
	// (node-local; for programs that embed the server, and tests). A token
	// whose issuer is governed is judged by the governed issuer alone.
	JWT *auth.JWTVerifier
	// Attestation produces the node's quote for /app/enclaveQuotes.
	// Required; attest.NewVirtual("") measures the running binary.
	Attestation attest.Platform
	// LedgerDir is the node's ledger directory (node.Config.Dir/ledger).
	// If set, /metrics reports the size of its files.
	LedgerDir string
	// MaxCollections bounds the number of collections. Default
	// DefaultMaxCollections.
	MaxCollections int
	// MaxConnections bounds the client connections open at once, for
	// connections accepted through Server.Listener; at the limit an idle
	// connection is closed to make room, or the new one is. 0: no limit.
	MaxConnections int
	// UnauthenticatedIdleTimeout closes a connection accepted through
	// Server.Listener that stays idle this long (TLS handshake included)
	// without having had a request authorised. Default
	// DefaultUnauthenticatedIdleTimeout; negative: the server's IdleTimeout.
	UnauthenticatedIdleTimeout time.Duration
	// GovLimits bound every constitution and ballot call (zero: the
	// constitution package's defaults, 1 s and 100 MiB).
	GovLimits constitution.Limits
	// GovEffects add to or replace the functions that carry out the
	// effects a constitution's apply asks of the node (see govEffects).
	GovEffects map[string]gov.EffectFunc
	// Interfaces are the node's own network interfaces, reported by the
	// node endpoints (/node/network/nodes, /node/consensus) until its node
	// record carries them.
	Interfaces Interfaces
	// Forward, if set, makes the server a node of a network: on a backup,
	// writes (and a forwarded session's later requests) go to the primary
	// through it (forward.go). Nil: a backup answers writes 503.
	Forward Forwarder
	// Version is ledgerd's version, reported by /node/version. Default:
	// the binary's module version and VCS revision.
	Version string
	// Logger receives structured logs; never tokens, keys or contents.
	// Default slog.Default().
	Logger *slog.Logger
}

func (c Config) withDefaults() Config {
	if c.MaxCollections == 0 {
		c.MaxCollections = DefaultMaxCollections
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.Version == "" {
		c.Version = mainVersion()
	}
	if c.UnauthenticatedIdleTimeout == 0 {
		c.UnauthenticatedIdleTimeout = DefaultUnauthenticatedIdleTimeout
	}
	return c
}

func (c Config) validate() error {
	switch {
	case c.Node == nil:
		return errors.New("api: Config.Node is required")
	case c.Identities == nil || c.Identities.Service == nil || c.Identities.Node == nil:
		return errors.New("api: Config.Identities with service and node identities is required (see identity.LoadOrCreate)")
	case c.LedgerID == "":
		return errors.New("api: Config.LedgerID is required")
	case c.Attestation == nil:
		return errors.New("api: Config.Attestation is required (attest.NewVirtual(\"\") for the virtual platform)")
	case c.MaxCollections < 1:
		return fmt.Errorf("api: Config.MaxCollections must be positive, got %d", c.MaxCollections)
	case c.MaxConnections < 0:
		return fmt.Errorf("api: Config.MaxConnections must not be negative, got %d", c.MaxConnections)
	}
	return nil
}

// Server serves the ACL data-plane API of one node over HTTPS. It is an
// http.Handler; HTTPServer wraps it in a configured http.Server. It is safe
// for concurrent use.
type Server struct {
	cfg Config
	log *slog.Logger
	// node is the write side: Submit, Exec, and the node's health (Err,
	// Stalled, Stats). Every read goes through reads.
	node    *node.Node
	reads   *node.Reader
	mux     *http.ServeMux
	metrics *metrics
	quote   []byte // the node's raw quote, fixed for the node's life
	// startupSeqno is the last seqno when the server was created.
	startupSeqno   uint64
	maxCollections int
	conns          *connTracker
	// jwt verifies tokens of the governed JWT issuers.
	jwt *auth.GovernedVerifier
	// openInfo is the last service record seen with status Open
	// (frontendOpen).
	openInfo atomic.Pointer[[]byte]
	// gov judges signed governance requests by the constitution.
	gov *gov.Engine
	// apps is the installed bundle of user-defined endpoints, compiled.
	apps appCache
	// appOpts is the runtime options in force, decoded (udapp.go).
	appOpts atomic.Pointer[optsCache]
}

// New returns a server for cfg.
func New(cfg Config) (*Server, error) {
	cfg = cfg.withDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	s := &Server{
		cfg:            cfg,
		log:            cfg.Logger,
		node:           cfg.Node,
		reads:          &cfg.Node.Reader,
		metrics:        newMetrics(),
		startupSeqno:   cfg.Node.Reader.LastSeqno(),
		maxCollections: cfg.MaxCollections,
		conns:          newConnTracker(cfg.MaxConnections, cfg.UnauthenticatedIdleTimeout, cfg.Logger),
	}
	jwtOpts := cfg.JWTOptions
	if jwtOpts.Logger == nil {
		jwtOpts.Logger = cfg.Logger
	}
	jwt, err := auth.NewGovernedVerifier(jwtOpts, cfg.JWKSClient)
	if err != nil {
		return nil, fmt.Errorf("api: Config.JWTOptions: %w", err)
	}
	s.jwt = jwt
	if err := s.takeQuote(); err != nil {
		return nil, err
	}
	s.gov = &gov.Engine{Limits: cfg.GovLimits, Effects: s.govEffects(cfg.GovEffects), Host: govHost{s}}
	s.mux = s.routes()
	return s, nil
}

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mux.ServeHTTP(w, r)
}

// TLSConfig returns the TLS configuration clients expect: the node
// certificate chain (node certificate issued by the service certificate that
// clients pin), TLS 1.2 or later, and client certificates requested but not
// chain-verified. ACL user certificates are self-signed, of any key type;
// the handshake proves possession of the key, and the user id is the
// certificate's fingerprint.
func (s *Server) TLSConfig() *tls.Config {
	ids := s.cfg.Identities
	return &tls.Config{
		Certificates: []tls.Certificate{ids.Node.TLSCertificate(ids.Service)},
		ClientAuth:   tls.RequestClientCert,
		MinVersion:   tls.VersionTLS12,
	}
}

// Timeouts of the HTTP server. Writes wait to be sequenced and user
// management for commit, both well under WriteTimeout.
const (
	readHeaderTimeout = 10 * time.Second
	readTimeout       = 30 * time.Second
	writeTimeout      = 60 * time.Second
	idleTimeout       = 2 * time.Minute
	maxHeaderBytes    = 64 << 10
)

// HTTPServer returns an http.Server for addr that serves s with TLSConfig
// (HTTP/1.1 with keep-alive, and HTTP/2) and bounded timeouts. Start it
// with ServeTLS(s.Listener(listener), "", "") to cap connections (see
// Listener), or ServeTLS(listener, "", "") or ListenAndServeTLS("", "").
func (s *Server) HTTPServer(addr string) *http.Server {
	return &http.Server{
		Addr:              addr,
		Handler:           s,
		TLSConfig:         s.TLSConfig(),
		ReadHeaderTimeout: readHeaderTimeout,
		ReadTimeout:       readTimeout,
		WriteTimeout:      writeTimeout,
		IdleTimeout:       idleTimeout,
		MaxHeaderBytes:    maxHeaderBytes,
		ConnState:         s.conns.connState,
		ConnContext:       s.conns.connContext,
		// TLS handshake failures of scanners and probes are routine.
		ErrorLog: slog.NewLogLogger(s.log.Handler(), slog.LevelDebug),
	}
}
