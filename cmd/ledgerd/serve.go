package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ledgerd/ledgerd/internal/api"
	"github.com/ledgerd/ledgerd/internal/attest"
	"github.com/ledgerd/ledgerd/internal/auth"
	"github.com/ledgerd/ledgerd/internal/gov"
	"github.com/ledgerd/ledgerd/internal/identity"
	"github.com/ledgerd/ledgerd/internal/node"
	"github.com/ledgerd/ledgerd/internal/tables"
)

// Start-up and shutdown bounds.
const (
	genesisTimeout  = 30 * time.Second
	shutdownTimeout = 10 * time.Second
)

// serve opens the data directory and the node, serves the API until ctx is
// cancelled or the node fails, and shuts down gracefully.
func serve(ctx context.Context, cfg config, log *slog.Logger, stdout io.Writer) error {
	maxConns, err := connectionLimit(cfg.MaxConnections, descriptorLimit())
	if err != nil {
		return err
	}
	if err := os.MkdirAll(cfg.Data, 0o700); err != nil {
		return fmt.Errorf("couldn't create the data directory: %w", err)
	}
	unlock, err := lockDataDir(cfg.Data)
	if err != nil {
		return err
	}
	defer unlock()
	// Listen first: the node records its addresses in its record of the
	// nodes table, where joiners and peers find it.
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return fmt.Errorf("couldn't listen: %w", err)
	}
	defer ln.Close()
	pln, err := net.Listen("tcp", cfg.PeerListen)
	if err != nil {
		return fmt.Errorf("couldn't listen for peers (--peer-listen): %w", err)
	}
	defer pln.Close()
	rpcAddr, peerAddr := publishedAddress(ln.Addr().String()), publishedAddress(pln.Addr().String())
	if cfg.PeerPublish != "" {
		peerAddr = cfg.PeerPublish
	}
	m, err := membershipOf(ctx, cfg, rpcAddr, peerAddr, log, stdout)
	if err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return err
	}
	raftID := m.RaftID
	n, plan, ids, netw, err := openNode(ctx, cfg, log, m, rpcAddr, peerAddr)
	if err != nil {
		return err
	}
	defer func() {
		if err := n.Close(); err != nil {
			log.Error("couldn't close the node cleanly", "err", err)
		}
	}()
	defer netw.tr.Close()
	netw.attach(n)
	// Writes a backup receives come here over the node-to-node interface,
	// once this node serves its API (503 until then).
	var apiSrv atomic.Pointer[api.Server]
	netw.tr.Handle(api.ForwardedPrefix+"/", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if srv := apiSrv.Load(); srv != nil {
			srv.ForwardedHandler().ServeHTTP(w, r)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusServiceUnavailable)
		w.Write([]byte(`{"error":{"code":"ServiceUnavailable","message":"The primary is starting; retry shortly."}}`))
	}))
	go netw.tr.Serve(pln)
	nctx, stopNetwork := context.WithCancel(ctx)
	defer stopNetwork()
	go netw.run(nctx)
	recovered, _ := n.PreviousEnd()
	if err := waitFounded(ctx, n, ids.Node.ID, raftID != 1 || recovered > 0); err != nil {
		if ctx.Err() != nil {
			return nil // stopped by a signal while starting
		}
		return err
	}
	warnFlagIssuers(plan, n.Reader.State(), log)
	srv, err := newServer(cfg, n, ids, maxConns, interfaces(cfg, rpcAddr, peerAddr), netw.tr.Do, log)
	if err != nil {
		return err
	}
	apiSrv.Store(srv)
	if status := gov.ServiceStatus(n.Reader.State()); status != tables.ServiceOpen {
		fmt.Fprintf(stdout, "service status: %s (/app/* is refused until the members open the service with a transition_service_to_open proposal)\n", status)
	}
	announce(stdout, cfg, ln.Addr().String(), plan)
	log.Info("serving", "addr", ln.Addr().String(), "peer_addr", pln.Addr().String(), "raft_id", raftID, "ledger_id", cfg.LedgerID, "node_id", ids.Node.ID,
		"max_connections", maxConns, "rlimit_nofile", descriptorLimit())
	return serveUntilDone(ctx, srv.HTTPServer(cfg.Listen), srv.Listener(ln), n, log)
}

// joinedRecovering reports whether a joined node's directory names the
// previous services of the service it joined while it was being recovered
// (recovery.json, from the join's welcome): it replays the whole ledger
// from its peers, never a snapshot, since the previous service's private
// domain is installed from the ledger once the members' shares are in
// (and a snapshot taken while recovering holds only its public domain).
func joinedRecovering(dir string) bool {
	_, err := os.Stat(filepath.Join(dir, node.RecoveryFile))
	return err == nil
}

// membershipOf returns the node's Raft id: 1 for the node that founds (or
// founded) its service, the one recorded when it joined, or, with --join on
// a new node, the one the service gives it (joinService).
func membershipOf(ctx context.Context, cfg config, rpcAddr, peerAddr string, log *slog.Logger, stdout io.Writer) (membership, error) {
	m, err := readMembership(cfg.Data)
	if err != nil || m.RaftID != 0 {
		return m, err
	}
	if cfg.Join == "" {
		return membership{RaftID: 1}, nil
	}
	fresh, err := ledgerIsEmpty(cfg.Data, log)
	if err != nil {
		return membership{}, err
	}
	if _, err := os.Stat(filepath.Join(cfg.Data, identity.ServiceKeyFile)); !fresh || err == nil {
		return membership{}, fmt.Errorf("%s belongs to a service this node founded; --join is for a new node's empty data directory", cfg.Data)
	}
	return joinService(ctx, cfg, rpcAddr, peerAddr, log, stdout)
}

// openNode loads the identities, plans genesis (for the founding node),
// builds the node-to-node network and opens the node.
func openNode(ctx context.Context, cfg config, log *slog.Logger, m membership, rpcAddr, peerAddr string) (*node.Node, *genesisPlan, *identity.Identities, *network, error) {
	raftID := m.RaftID
	fresh, err := ledgerIsEmpty(cfg.Data, log)
	if err != nil {
		return nil, nil, nil, nil, err
	}
	var rec *node.Recover
	if cfg.Recover {
		if raftID != 1 {
			return nil, nil, nil, nil, errors.New("--recover starts a new service's first node; it does not go with --join")
		}
		if rec, err = prepareRecovery(cfg, log); err != nil {
			return nil, nil, nil, nil, err
		}
	}
	if !fresh && rec == nil {
		if err := checkIdentityFiles(cfg.Data); err != nil {
			return nil, nil, nil, nil, err
		}
	}
	dns, ips := certificateNames(cfg)
	ids, err := identity.LoadOrCreate(cfg.Data, identity.Options{DNSNames: dns, IPs: ips, Logger: log})
	if err != nil {
		return nil, nil, nil, nil, fmt.Errorf("couldn't load the identities: %w", err)
	}
	plan := &genesisPlan{}
	if raftID == 1 {
		if plan, err = planGenesis(cfg, fresh, ids.LedgerSecret, log); err != nil {
			return nil, nil, nil, nil, err
		}
	}
	raftCfg, err := cfg.raftTiming()
	if err != nil {
		return nil, nil, nil, nil, err
	}
	raftCfg.ID = raftID
	raftCfg.Joining = raftID != 1
	quote, err := ownQuote(ids)
	if err != nil {
		return nil, nil, nil, nil, err
	}
	netw, err := newNetwork(ids, raftID, m.Peers, rpcAddr, peerAddr, net.ParseIP(cfg.PeerClientInterface), log)
	if err != nil {
		return nil, nil, nil, nil, fmt.Errorf("couldn't set up the node-to-node transport: %w", err)
	}
	netw.dataDir = cfg.Data
	if raftID != 1 && fresh && !hasStartupSnapshot(cfg.Data) && !joinedRecovering(cfg.Data) {
		netw.fetchSnapshot(ctx, cfg.Data, ids, cfg.FetchHistory)
	}
	n, err := node.Open(node.Config{
		Dir:                cfg.Data,
		Identities:         ids,
		Genesis:            plan.writes,
		StartOpening:       cfg.StartOpening,
		SignatureInterval:  time.Duration(cfg.SignatureInterval),
		SyncInterval:       nodeSyncInterval(cfg.SyncInterval),
		ChunkSize:          cfg.ChunkSize,
		SnapshotTxInterval: snapshotInterval(cfg.SnapshotInterval),
		CommitWindow:       time.Duration(cfg.CommitWindow),
		Raft:               raftCfg,
		Transport:          netw.tr,
		FetchSnapshot:      netw.fetchSnapshotFile,
		NoBootstrap:        raftID != 1,
		RPCAddress:         rpcAddr,
		PeerAddress:        peerAddr,
		Quote:              quote,
		Logger:             log,
		Recover:            rec,

		UnsafeAcceptLostTail: cfg.UnsafeAcceptLostTail,
	})
	if err != nil {
		netw.tr.Close()
		return nil, nil, nil, nil, fmt.Errorf("couldn't open the node: %w", err)
	}
	return n, plan, ids, netw, nil
}

// checkIdentityFiles refuses to start a ledger that holds transactions if
// a key or the ledger secret is missing: creating new ones would make the
// ledger unreadable, or found a second service on top of it.
func checkIdentityFiles(dir string) error {
	for _, name := range []string{identity.ServiceKeyFile, identity.NodeKeyFile, identity.LedgerSecretFile} {
		if _, err := os.Stat(filepath.Join(dir, name)); errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("the ledger in %s holds transactions but %s is missing; restore it from a backup "+
				"(ledgerd will not create a new one for an existing ledger)", dir, name)
		}
	}
	return nil
}

// certificateNames are the node certificate's SANs: localhost, 127.0.0.1,
// the listen host unless unspecified, and the configured extras.
func certificateNames(cfg config) ([]string, []net.IP) {
	dns := []string{"localhost"}
	ips := []net.IP{net.IPv4(127, 0, 0, 1)}
	host, _, _ := net.SplitHostPort(cfg.Listen)
	if ip := net.ParseIP(host); ip != nil {
		if !ip.IsUnspecified() {
			ips = append(ips, ip)
		}
	} else if host != "" {
		dns = append(dns, host)
	}
	dns = append(dns, cfg.SANDNS...)
	for _, s := range cfg.SANIP {
		ips = append(ips, net.ParseIP(s))
	}
	return uniqueNames(dns), uniqueIPs(ips)
}

func uniqueNames(names []string) []string {
	seen := map[string]bool{}
	var out []string
	for _, n := range names {
		if !seen[n] {
			seen[n] = true
			out = append(out, n)
		}
	}
	return out
}

func uniqueIPs(ips []net.IP) []net.IP {
	seen := map[string]bool{}
	var out []net.IP
	for _, ip := range ips {
		if !seen[ip.String()] {
			seen[ip.String()] = true
			out = append(out, ip)
		}
	}
	return out
}

// waitFounded waits until the service's genesis transaction is committed,
// so that the first requests find the initial users.
//
// A node that joined waits instead until it has caught up far enough to
// hold its own record in the nodes table (the service's state as of its
// admission), with no time limit: catching up a long ledger takes as long
// as it takes, and the node serves nothing stale meanwhile.
func waitFounded(ctx context.Context, n *node.Node, nodeID string, joined bool) error {
	if joined {
		st := n.Reader.State()
		for {
			if _, ok := st.GetCommitted(tables.NodesInfoMap, []byte(nodeID)); ok {
				return nil
			}
			if err := n.Err(); err != nil {
				return err
			}
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(20 * time.Millisecond):
			}
		}
	}
	ctx, cancel := context.WithTimeout(ctx, genesisTimeout)
	defer cancel()
	for n.CommittedSeqno() == 0 {
		if err := n.Err(); err != nil {
			return err
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("the node did not commit its genesis transaction: %w", ctx.Err())
		case <-time.After(10 * time.Millisecond):
		}
	}
	return nil
}

// newServer builds the API server.
func newServer(cfg config, n *node.Node, ids *identity.Identities, maxConns int, ifaces api.Interfaces, forward api.Forwarder, log *slog.Logger) (*api.Server, error) {
	platform, err := thisPlatform()
	if err != nil {
		return nil, err
	}
	return api.New(api.Config{
		Node:           n,
		Identities:     ids,
		LedgerID:       cfg.LedgerID,
		JWTOptions:     auth.JWTOptions{Logger: log, MaxLifetime: time.Duration(cfg.JWTMaxLifetime)},
		Attestation:    platform,
		LedgerDir:      filepath.Join(cfg.Data, "ledger"),
		MaxConnections: maxConns,
		Interfaces:     ifaces,
		Forward:        forward,
		Version:        version(),
		Logger:         log,
	})
}

// interfaces describes the node's network interfaces for the node
// endpoints: the client interface bound at --listen and the node-to-node
// one at --peer-listen, each published at the address recorded in the
// node's record (publishedAddress of the bound address, or --peer-publish).
func interfaces(cfg config, rpcAddr, peerAddr string) api.Interfaces {
	return api.Interfaces{
		Client: api.NetInterface{BindAddress: cfg.Listen, PublishedAddress: rpcAddr,
			Protocol: "tcp", AppProtocol: "HTTP2", Endorsement: &api.Endorsement{Authority: "Service"}},
		Peer: api.NetInterface{BindAddress: cfg.PeerListen, PublishedAddress: peerAddr, Protocol: "tcp"},
	}
}

// announce prints what an operator needs to connect. The address comes
// last: once it is printed, the node serves.
func announce(w io.Writer, cfg config, addr string, plan *genesisPlan) {
	fmt.Fprintf(w, "ledgerd %s\n", version())
	fmt.Fprintf(w, "ledger id: %s\n", cfg.LedgerID)
	fmt.Fprintf(w, "service certificate (pin it): %s\n", filepath.Join(cfg.Data, identity.ServiceCertFile))
	for _, f := range plan.created {
		switch filepath.Base(f) {
		case adminFile:
			fmt.Fprintf(w, "administrator credentials (certificate and key): %s\n", f)
		case memberEncPrivFile:
			fmt.Fprintf(w, "consortium member recovery key (decrypts its recovery share): %s\n", f)
		case memberEncPubFile:
			// The public half, recorded in the ledger: nothing to keep safe.
		default:
			fmt.Fprintf(w, "consortium member credentials (certificate and key): %s\n", f)
		}
	}
	fmt.Fprintf(w, "listening on https://%s\n", addr)
}

// serveUntilDone serves until ctx ends or the node stops after a fatal
// error, then stops accepting, lets requests in flight finish, and returns.
// The caller closes the node.
func serveUntilDone(ctx context.Context, srv *http.Server, ln net.Listener, n *node.Node, log *slog.Logger) error {
	errc := make(chan error, 1)
	go func() { errc <- srv.ServeTLS(ln, "", "") }()
	var failure error
loop:
	for {
		select {
		case err := <-errc:
			return fmt.Errorf("couldn't serve: %w", err)
		case <-ctx.Done():
			log.Info("shutting down")
			break loop
		case <-n.Done():
			if failure = n.Err(); failure == nil {
				failure = errors.New("the node stopped")
			}
			break loop
		}
	}
	sctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		log.Warn("requests still in flight at shutdown", "err", err)
	}
	return failure
}

// nodeSyncInterval maps --sync-interval to node.Config.SyncInterval, where
// zero means the default and a negative value no wait.
func nodeSyncInterval(d duration) time.Duration {
	if d == 0 {
		return -1
	}
	return time.Duration(d)
}

// ownQuote is this node's virtual quote, over the SHA-256 of its public key,
// as its record in the nodes table carries it.
func ownQuote(ids *identity.Identities) (*tables.NodeQuoteInfo, error) {
	platform, err := thisPlatform()
	if err != nil {
		return nil, err
	}
	rd, err := attest.ReportData(&ids.Node.Key.PublicKey)
	if err != nil {
		return nil, err
	}
	raw, err := platform.Quote(rd)
	if err != nil {
		return nil, err
	}
	return &tables.NodeQuoteInfo{Format: platform.Format(), Quote: raw}, nil
}

// thisPlatform is the virtual attestation platform of the running binary,
// measured once (hashing the binary) however many times start-up needs it:
// the join policy at genesis, the join request, the node's record, the API.
var thisPlatform = sync.OnceValues(func() (*attest.Virtual, error) { return attest.NewVirtual("") })

// snapshotInterval is node.Config.SnapshotTxInterval for
// --snapshot-tx-interval: 0 (none) is negative there.
func snapshotInterval(n int) int {
	if n == 0 {
		return -1
	}
	return n
}

// hasStartupSnapshot reports whether dir holds the snapshot its node
// started from (node.InstallSnapshot).
func hasStartupSnapshot(dir string) bool {
	_, err := os.Stat(filepath.Join(dir, "startup.snapshot"))
	return err == nil
}
