package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/ledgerd/ledgerd/internal/auth"
	"github.com/ledgerd/ledgerd/internal/consensus"
)

// config is ledgerd's configuration: flags, or the keys of a --config
// file, which share their names.
type config struct {
	Data              string   `json:"data"`
	Listen            string   `json:"listen"`
	LedgerID          string   `json:"ledger-id"`
	SANDNS            []string `json:"san-dns"`
	SANIP             []string `json:"san-ip"`
	SignatureInterval duration `json:"signature-interval"`
	SyncInterval      duration `json:"sync-interval"`
	ElectionTimeout   duration `json:"election-timeout"`
	CommitWindow      duration `json:"commit-window"`
	ChunkSize         int64    `json:"chunk-size"`
	SnapshotInterval  int      `json:"snapshot-tx-interval"`
	MaxConnections    int      `json:"max-connections"`
	Users             []string `json:"user"`
	JWTIssuers        []string `json:"jwt-issuer"`
	AADTenant         string   `json:"aad-tenant"`
	JWTMaxLifetime    duration `json:"jwt-max-lifetime"`
	LogLevel          string   `json:"log-level"`
	LogFormat         string   `json:"log-format"`
	StartOpening      bool     `json:"start-opening"`
	PeerListen        string   `json:"peer-listen"`
	// PeerPublish is the node-to-node address recorded in the node's
	// record, which the other nodes dial (CCF's
	// node_to_node_interface.published_address); default: --peer-listen's.
	PeerPublish string `json:"peer-publish"`
	// PeerClientInterface is the local IP address the node's own
	// node-to-node connections are made from (CCF's node_client_interface);
	// default: the operating system's choice.
	PeerClientInterface string `json:"peer-client-interface"`
	Join                string `json:"join"`
	FetchHistory        bool   `json:"fetch-history"`
	ServiceCert         string `json:"service-cert"`
	// UnsafeAcceptLostTail is a command-line-only override, never read
	// from a configuration file: see node.Config.UnsafeAcceptLostTail.
	UnsafeAcceptLostTail bool `json:"-"`
	// Recover starts a new service over the ledger files of a previous one
	// (command line only; see recover.go).
	Recover bool `json:"-"`
}

// defaultConfig is the configuration without flags or file.
func defaultConfig() config {
	return config{
		Data:              "./data",
		Listen:            "127.0.0.1:8443",
		LedgerID:          "ledger",
		SignatureInterval: duration(5 * time.Millisecond),
		SyncInterval:      duration(2 * time.Millisecond),
		ElectionTimeout:   duration(time.Second),
		CommitWindow:      duration(20 * time.Millisecond),
		ChunkSize:         5_000_000,
		SnapshotInterval:  10_000,
		JWTMaxLifetime:    duration(auth.DefaultMaxLifetime),
		LogLevel:          "info",
		LogFormat:         "text",
	}
}

// duration is a time.Duration written as "5ms" in flags and JSON.
type duration time.Duration

func (d duration) String() string { return time.Duration(d).String() }

// Set implements flag.Value.
func (d *duration) Set(s string) error {
	v, err := time.ParseDuration(s)
	if err != nil {
		return err
	}
	*d = duration(v)
	return nil
}

// UnmarshalText implements encoding.TextUnmarshaler, for JSON strings.
func (d *duration) UnmarshalText(b []byte) error { return d.Set(string(b)) }

// listFlag is a repeatable flag. Values given on the command line replace
// those of the configuration file rather than adding to them.
type listFlag struct {
	list *[]string
	set  bool
}

func (l *listFlag) String() string {
	if l.list == nil {
		return ""
	}
	return strings.Join(*l.list, ", ")
}

// Set implements flag.Value.
func (l *listFlag) Set(s string) error {
	if !l.set {
		*l.list, l.set = nil, true
	}
	*l.list = append(*l.list, s)
	return nil
}

// options are the command line's actions besides configuration.
type options struct {
	configFile string
	version    bool
	cpuProfile string
}

// newFlagSet binds the flags to cfg and opts.
func newFlagSet(cfg *config, opts *options, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("ledgerd", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&cfg.Data, "data", cfg.Data, "data `directory`")
	fs.StringVar(&cfg.Listen, "listen", cfg.Listen, "HTTPS `address` HOST:PORT")
	fs.StringVar(&opts.configFile, "config", "", "JSON configuration `file` (flags override it)")
	fs.StringVar(&cfg.LedgerID, "ledger-id", cfg.LedgerID, "ledger `name` reported by /ledgerIdentity")
	fs.Var(&listFlag{list: &cfg.SANDNS}, "san-dns", "extra DNS `name` of the node certificate (repeatable)")
	fs.Var(&listFlag{list: &cfg.SANIP}, "san-ip", "extra IP `address` of the node certificate (repeatable)")
	fs.Var(&cfg.SignatureInterval, "signature-interval", "longest `duration` a transaction waits for a signature, e.g. 5ms")
	fs.Var(&cfg.SyncInterval, "sync-interval", "shortest `duration` between two fsyncs of the ledger (group commit; 0: none)")
	fs.Var(&cfg.ElectionTimeout, "election-timeout", "`duration` a follower waits without hearing the primary before it stands for election (Raft's election timeout; heartbeats every tenth of it), e.g. 1s")
	fs.Int64Var(&cfg.ChunkSize, "chunk-size", cfg.ChunkSize, "ledger chunk size in `bytes`")
	fs.Var(&cfg.CommitWindow, "commit-window", "`duration` the primary sequences new writes only while its oldest write not yet committed is younger than this (latency against throughput), e.g. 20ms")
	fs.IntVar(&cfg.SnapshotInterval, "snapshot-tx-interval", cfg.SnapshotInterval, "take a snapshot at the first signature of every `N` seqnos (CCF's snapshots.tx_count; the same on every node; 0: none)")
	fs.IntVar(&cfg.MaxConnections, "max-connections", cfg.MaxConnections, "most client connections open at once (0: RLIMIT_NOFILE minus a reserve for the ledger)")
	fs.Var(&listFlag{list: &cfg.Users}, "user", "initial user `CERTFILE:ROLE` (repeatable; first start only)")
	fs.Var(&listFlag{list: &cfg.JWTIssuers}, "jwt-issuer", "JWT issuer `ISSUER,AUDIENCE,JWKS[,NAMESPACE]` (JWKS: file or https URL; repeatable)")
	fs.StringVar(&cfg.AADTenant, "aad-tenant", cfg.AADTenant, "accept the Azure AD tokens of the tenant with this directory `id` (a GUID), as ACL does")
	fs.Var(&cfg.JWTMaxLifetime, "jwt-max-lifetime", "longest `duration` a bearer JWT may be valid (exp - iat; exp - now without iat)")
	fs.BoolVar(&cfg.StartOpening, "start-opening", cfg.StartOpening, "found the service Opening rather than Open: /app/* is refused until the members open it with a transition_service_to_open proposal (first start only)")
	fs.StringVar(&cfg.PeerListen, "peer-listen", cfg.PeerListen, "node-to-node `address` HOST:PORT (mutual TLS between the service's nodes; default: the --listen host, port + 1)")
	fs.StringVar(&cfg.PeerPublish, "peer-publish", cfg.PeerPublish, "node-to-node `address` HOST:PORT the other nodes are told to dial (behind NAT, a port forward or a proxy; default: the --peer-listen address)")
	fs.StringVar(&cfg.PeerClientInterface, "peer-client-interface", cfg.PeerClientInterface, "local IP `address` this node's node-to-node connections are made from (default: the system's choice)")
	fs.BoolVar(&cfg.FetchHistory, "fetch-history", cfg.FetchHistory, "with --join: also fetch the committed ledger chunks before the snapshot the node starts from, verified against it, so that it serves the whole history (first start only)")
	fs.StringVar(&cfg.Join, "join", cfg.Join, "join the service of the node at this `URL` (https://HOST:PORT, any node of it) instead of founding one (first start only)")
	fs.StringVar(&cfg.ServiceCert, "service-cert", cfg.ServiceCert, "the service certificate `file` of the service to --join (its service.pem)")
	fs.StringVar(&cfg.LogLevel, "log-level", cfg.LogLevel, "log `level`: debug, info, warn or error")
	fs.StringVar(&cfg.LogFormat, "log-format", cfg.LogFormat, "log `format`: text or json")
	fs.BoolVar(&cfg.Recover, "recover", false, "disaster recovery: start a new service from a previous service's ledger files copied into --data (DATA/ledger/ and the previous service.pem as DATA/service.pem, without its keys or ledger.secret); the recovery members then accept the recovery and submit their recovery shares (see README)")
	fs.BoolVar(&cfg.UnsafeAcceptLostTail, "unsafe-accept-lost-tail", false, "start even though committed transactions are missing from the ledger (a lost chunk): their seqnos are issued again and two signed histories exist; restore the ledger files instead")
	fs.BoolVar(&opts.version, "version", false, "print the version and exit")
	fs.StringVar(&opts.cpuProfile, "cpuprofile", "", "write a CPU profile to `file` until shutdown (for performance work)")
	return fs
}

// errUsage marks command-line and configuration errors (exit code 2).
var errUsage = errors.New("usage error")

// parseConfig builds the configuration: defaults, then the --config file,
// then the flags. The flags are parsed twice: once to find --config, and
// again over the file's values so that they override them.
func parseConfig(args []string, stderr io.Writer) (config, options, error) {
	var opts options
	probe := defaultConfig()
	if err := newFlagSet(&probe, &opts, io.Discard).Parse(args); err != nil {
		newFlagSet(&probe, &opts, stderr).Parse(args) // print the error and usage
		return config{}, opts, fmt.Errorf("%w: %w", errUsage, err)
	}
	cfg := defaultConfig()
	if opts.configFile != "" {
		if err := loadConfigFile(opts.configFile, &cfg); err != nil {
			return config{}, opts, fmt.Errorf("%w: %w", errUsage, err)
		}
	}
	fs := newFlagSet(&cfg, &opts, stderr)
	if err := fs.Parse(args); err != nil {
		return config{}, opts, fmt.Errorf("%w: %w", errUsage, err)
	}
	if fs.NArg() > 0 {
		return config{}, opts, fmt.Errorf("%w: unexpected arguments %q", errUsage, fs.Args())
	}
	if err := cfg.validate(); err != nil {
		return config{}, opts, fmt.Errorf("%w: %w", errUsage, err)
	}
	return cfg, opts, nil
}

// loadConfigFile reads a JSON configuration file over cfg. Unknown keys
// are errors, so that a misspelt key is not silently ignored.
func loadConfigFile(path string, cfg *config) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("couldn't read configuration file: %w", err)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(cfg); err != nil {
		return fmt.Errorf("couldn't parse configuration file %s: %w", path, err)
	}
	return nil
}

// validate checks the configuration, with messages that say how to fix it.
func (c *config) validate() error {
	if c.Data == "" {
		return errors.New("--data must not be empty")
	}
	if _, _, err := net.SplitHostPort(c.Listen); err != nil {
		return fmt.Errorf("--listen %q is not HOST:PORT: %w", c.Listen, err)
	}
	if c.LedgerID == "" {
		return errors.New("--ledger-id must not be empty")
	}
	if c.PeerListen == "" {
		c.PeerListen = defaultPeerListen(c.Listen)
	}
	if _, _, err := net.SplitHostPort(c.PeerListen); err != nil {
		return fmt.Errorf("--peer-listen %q is not HOST:PORT: %w", c.PeerListen, err)
	}
	if c.PeerPublish != "" {
		host, port, err := net.SplitHostPort(c.PeerPublish)
		if p, perr := strconv.Atoi(port); err != nil || perr != nil || p < 1 || p > 65535 || host == "" || net.ParseIP(host).IsUnspecified() {
			return fmt.Errorf("--peer-publish %q is not HOST:PORT with a host the other nodes can reach and a port", c.PeerPublish)
		}
	}
	if c.PeerClientInterface != "" && net.ParseIP(c.PeerClientInterface) == nil {
		return fmt.Errorf("--peer-client-interface %q is not an IP address", c.PeerClientInterface)
	}
	if c.Join != "" && !strings.HasPrefix(c.Join, "https://") {
		return fmt.Errorf("--join %q is not an https:// URL of a node of the service", c.Join)
	}
	for _, ip := range c.SANIP {
		if net.ParseIP(ip) == nil {
			return fmt.Errorf("--san-ip %q is not an IP address", ip)
		}
	}
	for _, name := range c.SANDNS {
		if name == "" || strings.ContainsAny(name, " /:") {
			return fmt.Errorf("--san-dns %q is not a DNS name", name)
		}
	}
	if c.SignatureInterval < 0 {
		return errors.New("--signature-interval must not be negative")
	}
	if c.SyncInterval < 0 {
		return errors.New("--sync-interval must not be negative")
	}
	if _, err := c.raftTiming(); err != nil {
		return err
	}
	if c.MaxConnections < 0 {
		return fmt.Errorf("--max-connections must not be negative (0: sized from RLIMIT_NOFILE), got %d", c.MaxConnections)
	}
	if w := time.Duration(c.CommitWindow); w < time.Millisecond || w > time.Minute {
		return fmt.Errorf("--commit-window must be between 1ms and 1m, got %v", w)
	}
	if c.SnapshotInterval < 0 {
		return fmt.Errorf("--snapshot-tx-interval must be 0 (no snapshots) or positive, got %d", c.SnapshotInterval)
	}
	if c.ChunkSize < 1 || c.ChunkSize > 1<<32-1 {
		return fmt.Errorf("--chunk-size must be between 1 and 4294967295 bytes, got %d", c.ChunkSize)
	}
	for _, u := range c.Users {
		if _, _, err := parseUserSpec(u); err != nil {
			return err
		}
	}
	if issuers, err := c.jwtIssuers(); err != nil {
		return err
	} else if len(issuers) > 0 {
		if err := auth.ValidateIssuers(issuers); err != nil {
			return errors.New(strings.TrimPrefix(err.Error(), "auth: "))
		}
	}
	if c.JWTMaxLifetime <= 0 {
		return errors.New("--jwt-max-lifetime must be positive, e.g. 24h")
	}
	if _, err := parseLevel(c.LogLevel); err != nil {
		return err
	}
	if c.LogFormat != "text" && c.LogFormat != "json" {
		return fmt.Errorf("--log-format %q: use text or json", c.LogFormat)
	}
	return nil
}

// parseUserSpec parses --user CERTFILE:ROLE. The role follows the last
// colon, so the file name may contain colons.
func parseUserSpec(s string) (string, auth.Role, error) {
	i := strings.LastIndexByte(s, ':')
	if i <= 0 {
		return "", auth.RoleNone, fmt.Errorf("--user %q: use CERTFILE:ROLE, e.g. alice.pem:Contributor", s)
	}
	role, err := auth.ParseRole(s[i+1:])
	if err != nil {
		return "", auth.RoleNone, fmt.Errorf("--user %q: %w", s, err)
	}
	return s[:i], role, nil
}

// aadKeysURL is where --aad-tenant fetches the tenant's keys; empty means
// Microsoft's (auth.AzureADKeysURL). Tests point it at a local server.
var aadKeysURL string

// jwtIssuers returns the JWT issuers of --aad-tenant and --jwt-issuer, in
// that order.
func (c *config) jwtIssuers() ([]auth.IssuerConfig, error) {
	var issuers []auth.IssuerConfig
	if c.AADTenant != "" {
		aad, err := auth.AzureADIssuers(c.AADTenant, aadKeysURL)
		if err != nil {
			return nil, fmt.Errorf("--aad-tenant: %s", strings.TrimPrefix(err.Error(), "auth: "))
		}
		issuers = append(issuers, aad...)
	}
	for _, spec := range c.JWTIssuers {
		ic, err := parseIssuerSpec(spec)
		if err != nil {
			return nil, err
		}
		issuers = append(issuers, ic)
	}
	return issuers, nil
}

// parseIssuerSpec parses --jwt-issuer ISSUER,AUDIENCE,JWKS[,NAMESPACE].
// JWKS is an http(s) URL or a file path. NAMESPACE prefixes the issuer's
// user ids (NAMESPACE:oid); every issuer but one needs one.
func parseIssuerSpec(s string) (auth.IssuerConfig, error) {
	parts := strings.Split(s, ",")
	if len(parts) < 3 || len(parts) > 4 || parts[0] == "" || parts[1] == "" || parts[2] == "" || len(parts) == 4 && parts[3] == "" {
		return auth.IssuerConfig{}, fmt.Errorf("--jwt-issuer %q: use ISSUER,AUDIENCE,JWKS[,NAMESPACE], e.g. "+
			"https://issuer.example/,https://confidential-ledger.azure.com,/etc/ledgerd/jwks.json,partner", s)
	}
	ic := auth.IssuerConfig{Issuer: parts[0], Audience: parts[1]}
	if strings.HasPrefix(parts[2], "https://") || strings.HasPrefix(parts[2], "http://") {
		ic.JWKSURL = parts[2]
	} else {
		ic.JWKSFile = parts[2]
	}
	if len(parts) == 4 {
		ic.Namespace = parts[3]
	}
	return ic, nil
}

// Raft's clock, from --election-timeout: a tick of 10ms (a tenth of the
// timeout below 100ms), the election timeout as a whole number of ticks
// (rounded down; Raft draws each follower's timeout in [E, 2E)), and a
// heartbeat every tenth of it (at least one tick). etcd raft needs the
// election timeout longer than the heartbeat: at least two ticks.
const (
	raftTick           = 10 * time.Millisecond
	minElectionTimeout = 10 * time.Millisecond
	maxElectionTimeout = time.Hour
)

// raftTiming maps --election-timeout to Raft's tick interval, election
// ticks and heartbeat ticks.
func (c *config) raftTiming() (consensus.Config, error) {
	e := time.Duration(c.ElectionTimeout)
	if e < minElectionTimeout || e > maxElectionTimeout {
		return consensus.Config{}, fmt.Errorf("--election-timeout must be between %v and %v, got %v", minElectionTimeout, maxElectionTimeout, e)
	}
	tick := raftTick
	if e < 10*raftTick {
		tick = e / 10
	}
	election := int(e / tick)
	rc := consensus.Config{TickInterval: tick, ElectionTicks: election, HeartbeatTicks: max(1, election/10)}
	return rc, nil
}

// defaultPeerListen is the --listen host with the port after the client
// port (port 0 stays 0: any free port).
func defaultPeerListen(listen string) string {
	host, port, err := net.SplitHostPort(listen)
	if err != nil {
		return ""
	}
	p, err := strconv.Atoi(port)
	if err != nil || p == 0 || p >= 65535 {
		return net.JoinHostPort(host, "0")
	}
	return net.JoinHostPort(host, strconv.Itoa(p+1))
}
