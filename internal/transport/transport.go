package transport

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"go.etcd.io/raft/v3/raftpb"
)

// RaftStreamPath is the route of the Raft message stream on the peer server.
const RaftStreamPath = "/ledgerd/raft/stream"

// Defaults of Config.
const (
	DefaultQueueSize       = 4096
	DefaultMaxMessageBytes = 64 << 20
)

// Errors of the API.
var (
	ErrUnknownPeer = errors.New("transport: unknown peer")
	ErrClosed      = errors.New("transport: closed")
)

// Config configures a Transport.
type Config struct {
	// RaftID is this node's Raft id (non-zero). Messages received for
	// another id are dropped.
	RaftID uint64
	// Cert is this node's TLS certificate: the chain [node certificate,
	// service certificate] with the node key (identity.Node.TLSCertificate).
	// It must itself pass the node certificate rule (VerifyNodeCert).
	Cert tls.Certificate
	// ServiceCert is the service certificate of this service: the only root
	// a peer's certificate may chain to.
	ServiceCert *x509.Certificate
	// ClientInterface is the local IP address this node's outgoing
	// connections (Raft streams and RPCs) are made from, as CCF's
	// node_client_interface: on a machine with several addresses, peers
	// and firewalls then see the node at the one it is configured with.
	// Nil: the operating system chooses.
	ClientInterface net.IP
	// Allowed reports whether a node may take part in the service (CCF:
	// Trusted, not Retired). It is asked at every TLS handshake (both
	// sides), at every RPC request and for every Raft message received, so
	// it must be cheap and must not block. Required.
	Allowed func(nodeID string) bool
	// Deliver receives the Raft messages of peers (node.Step). It is
	// called from one goroutine per sending peer, in the order that peer
	// sent them; while it blocks, that peer's stream stalls (and that
	// peer's sender drops and reports), no other. Required.
	Deliver func(raftpb.Message)
	// Unreachable is told a peer's messages were dropped (queue full,
	// stream down): Raft then probes that peer again
	// (node.ReportUnreachable). It must not block. Optional.
	Unreachable func(raftID uint64)
	// ReportSnapshot is told when a MsgSnap (a small descriptor: the peer
	// fetches the snapshot over an RPC route) is dropped
	// (node.ReportSnapshot). It must not block. Optional.
	ReportSnapshot func(raftID uint64, failed bool)
	// Logger receives refusals and stream failures (never a key). Default:
	// discard.
	Logger *slog.Logger
	// QueueSize bounds each peer's queue of outgoing messages. Default
	// DefaultQueueSize.
	QueueSize int
	// MaxMessageBytes bounds a marshalled Raft message, sent or received.
	// It must exceed Raft's MaxSizePerMsg (4 MiB) by the largest entry.
	// Default DefaultMaxMessageBytes.
	MaxMessageBytes int
	// Now is the clock that certificate validity is checked against.
	// Default time.Now.
	Now func() time.Time
}

// Transport is a node's end of the node-to-node network: the peer server,
// one outgoing Raft stream per peer, and the peer RPC client. Its methods
// are safe for concurrent use.
type Transport struct {
	cfg    Config
	nodeID string
	log    *slog.Logger
	mux    *http.ServeMux
	srv    *http.Server

	mu       sync.RWMutex
	peers    map[uint64]*peer
	closed   bool
	handlers sync.WaitGroup // Raft stream handlers (Deliver callers)

	wrapConn    func(net.Conn) net.Conn // tests: wraps each connection dialled to a peer
	noRaftProto atomic.Bool             // tests: the server offers h2 only, as an older node
}

// New checks the configuration (the node's own certificate must pass the
// node certificate rule) and returns a Transport with no peers that serves
// nothing until Serve.
func New(cfg Config) (*Transport, error) {
	switch {
	case cfg.RaftID == 0:
		return nil, errors.New("transport: RaftID must be non-zero")
	case cfg.ServiceCert == nil:
		return nil, errors.New("transport: ServiceCert is required")
	case cfg.Allowed == nil || cfg.Deliver == nil:
		return nil, errors.New("transport: Allowed and Deliver are required")
	case len(cfg.Cert.Certificate) == 0 || cfg.Cert.PrivateKey == nil:
		return nil, errors.New("transport: Cert needs a certificate and its key")
	}
	if cfg.Unreachable == nil {
		cfg.Unreachable = func(uint64) {}
	}
	if cfg.ReportSnapshot == nil {
		cfg.ReportSnapshot = func(uint64, bool) {}
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.QueueSize <= 0 {
		cfg.QueueSize = DefaultQueueSize
	}
	if cfg.MaxMessageBytes <= 0 {
		cfg.MaxMessageBytes = DefaultMaxMessageBytes
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	leaf, err := x509.ParseCertificate(cfg.Cert.Certificate[0])
	if err != nil {
		return nil, fmt.Errorf("transport: own certificate: %w", err)
	}
	id, err := VerifyNodeCert([]*x509.Certificate{leaf}, cfg.ServiceCert, cfg.Now())
	if err != nil {
		return nil, fmt.Errorf("transport: own certificate: %w", err)
	}
	t := &Transport{
		cfg:    cfg,
		nodeID: id,
		log:    cfg.Logger.With("component", "transport"),
		mux:    http.NewServeMux(),
		peers:  map[uint64]*peer{},
	}
	t.mux.Handle("POST "+RaftStreamPath, t.authenticated(http.HandlerFunc(t.serveRaft)))
	// Answered before a stream is opened, so that the stream's sender has
	// this server's HTTP/2 settings (peer.go: settingsSeen).
	t.mux.Handle("GET "+RaftStreamPath, t.authenticated(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusNoContent)
	})))
	t.srv = &http.Server{
		// HTTP/2 (Protocols) for the RPC routes and older nodes' streams;
		// RaftProto for Raft streams on connections of their own.
		TLSNextProto:      map[string]func(*http.Server, *tls.Conn, http.Handler){RaftProto: t.serveRaftConn},
		Handler:           t.mux,
		TLSConfig:         t.serverTLS(),
		Protocols:         h2Only(),
		HTTP2:             h2Config(),
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       5 * time.Minute,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(t.log.Handler(), slog.LevelDebug),
	}
	return t, nil
}

// NodeID is this node's id, from its certificate.
func (t *Transport) NodeID() string { return t.nodeID }

// Serve serves the peer interface on ln (TLS is added here) until Close.
// It returns nil after Close.
func (t *Transport) Serve(ln net.Listener) error {
	err := t.srv.ServeTLS(ln, "", "")
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}

// Handle adds an authenticated node-to-node route to the peer server
// (pattern as http.ServeMux's). The handler runs only for a peer that passes
// the node certificate rule and Allowed (re-asked for every request); its
// node id is PeerNodeID(r.Context()). Routes may be added at any time
// (http.ServeMux); a pattern already added panics, as ServeMux does.
func (t *Transport) Handle(pattern string, h http.Handler) {
	t.mux.Handle(pattern, t.authenticated(h))
}

type peerKey struct{}

// PeerNodeID returns the verified node id of the peer that sent a request
// to a route added with Handle.
func PeerNodeID(ctx context.Context) (string, bool) {
	id, ok := ctx.Value(peerKey{}).(string)
	return id, ok
}

// AddPeer makes raftID reachable: node nodeID at addr (host:port of its peer
// interface). Messages from raftID are accepted only from that node. Adding
// the same peer again does nothing; a new node id or address replaces it.
func (t *Transport) AddPeer(raftID uint64, nodeID, addr string) error {
	if raftID == 0 || raftID == t.cfg.RaftID {
		return fmt.Errorf("transport: AddPeer: bad raft id %d", raftID)
	}
	if !validNodeID(nodeID) {
		return fmt.Errorf("transport: AddPeer: bad node id %q", nodeID)
	}
	if _, _, err := net.SplitHostPort(addr); err != nil {
		return fmt.Errorf("transport: AddPeer: bad address: %w", err)
	}
	t.mu.Lock()
	if t.closed {
		t.mu.Unlock()
		return ErrClosed
	}
	old := t.peers[raftID]
	if old != nil && old.nodeID == nodeID && old.addr == addr {
		t.mu.Unlock()
		return nil
	}
	p := t.newPeer(raftID, nodeID, addr)
	t.peers[raftID] = p
	t.mu.Unlock()
	if old != nil {
		old.stop()
	}
	go t.runPeer(p)
	return nil
}

// RemovePeer forgets raftID: its stream and connections are closed, its
// queued messages dropped, and its messages no longer accepted. It returns
// once its sender has stopped.
func (t *Transport) RemovePeer(raftID uint64) {
	t.mu.Lock()
	p := t.peers[raftID]
	delete(t.peers, raftID)
	t.mu.Unlock()
	if p != nil {
		p.stop()
	}
}

// Send queues messages to their peers and returns at once (it implements
// consensus.Transport). A message to a peer whose queue is full, or to an
// unknown peer, is dropped and Unreachable reported (and, for a MsgSnap,
// reported failed to ReportSnapshot). A MsgSnap is a small descriptor (the
// peer fetches the snapshot file over an RPC route), sent like the others.
func (t *Transport) Send(msgs []raftpb.Message) {
	var unreachable, snaps []uint64
	t.mu.RLock()
	for i := range msgs {
		m := msgs[i]
		p := t.peers[m.To]
		if p == nil {
			unreachable = append(unreachable, m.To)
			if m.Type == raftpb.MsgSnap {
				snaps = append(snaps, m.To)
			}
			continue
		}
		select {
		case p.queue <- m:
		default:
			p.dropped.Add(1)
			unreachable = append(unreachable, m.To)
			if m.Type == raftpb.MsgSnap {
				snaps = append(snaps, m.To)
			}
		}
	}
	t.mu.RUnlock()
	for i, id := range unreachable {
		if i == 0 || id != unreachable[i-1] {
			t.cfg.Unreachable(id)
		}
	}
	for _, id := range snaps {
		t.log.Debug("dropped a Raft snapshot descriptor", "to", id)
		t.cfg.ReportSnapshot(id, true)
	}
}

// Do sends an RPC request to the peer raftID over its mutually
// authenticated connection (the server must be that peer's node and
// Allowed). The request's URL needs only its path (and query): the scheme
// and host are the peer's. The caller closes the response body.
func (t *Transport) Do(ctx context.Context, raftID uint64, req *http.Request) (*http.Response, error) {
	t.mu.RLock()
	p := t.peers[raftID]
	t.mu.RUnlock()
	if p == nil {
		return nil, fmt.Errorf("%w: %d", ErrUnknownPeer, raftID)
	}
	r := req.Clone(ctx)
	r.URL.Scheme, r.URL.Host, r.Host, r.RequestURI = "https", p.addr, "", ""
	return p.client.Do(r)
}

// Close stops the server, every stream and connection, and waits for the
// senders and for Deliver calls in progress to return.
func (t *Transport) Close() error {
	t.mu.Lock()
	if t.closed {
		t.mu.Unlock()
		return nil
	}
	t.closed = true
	peers := t.peers
	t.peers = map[uint64]*peer{}
	t.mu.Unlock()
	err := t.srv.Close()
	for _, p := range peers {
		p.stop()
	}
	t.handlers.Wait()
	return err
}

// check applies the node certificate rule, the expected node id (if want
// is not empty) and Allowed to a peer's chain.
func (t *Transport) check(chain []*x509.Certificate, want string) (string, error) {
	id, err := VerifyNodeCert(chain, t.cfg.ServiceCert, t.cfg.Now())
	if err != nil {
		return "", err
	}
	if want != "" && id != want {
		return id, fmt.Errorf("transport: peer is node %s, not the node %s dialled", id, want)
	}
	if !t.cfg.Allowed(id) {
		return id, fmt.Errorf("transport: node %s is not allowed (not Trusted, or Retired)", id)
	}
	return id, nil
}

// serverTLS is the peer server's TLS: TLS 1.3, HTTP/2, a client
// certificate required and checked by the node certificate rule at the
// handshake; refusals are logged with the remote address. No session
// tickets: every connection is a full handshake with its certificates
// checked.
func (t *Transport) serverTLS() *tls.Config {
	base := &tls.Config{
		MinVersion:             tls.VersionTLS13,
		Certificates:           []tls.Certificate{t.cfg.Cert},
		ClientAuth:             tls.RequireAnyClientCert,
		NextProtos:             []string{RaftProto, "h2"}, // the server's preference decides
		SessionTicketsDisabled: true,
	}
	return &tls.Config{
		MinVersion:   tls.VersionTLS13,
		Certificates: []tls.Certificate{t.cfg.Cert},
		NextProtos:   []string{RaftProto, "h2"},
		GetConfigForClient: func(hello *tls.ClientHelloInfo) (*tls.Config, error) {
			c := base.Clone()
			if t.noRaftProto.Load() {
				c.NextProtos = []string{"h2"}
			}
			remote := hello.Conn.RemoteAddr().String()
			c.VerifyConnection = func(cs tls.ConnectionState) error {
				id, err := t.check(cs.PeerCertificates, "")
				if err != nil {
					t.log.Warn("refused a node-to-node connection", "remote", remote, "node_id", id, "reason", err.Error())
				}
				return err
			}
			return c, nil
		},
	}
}

// clientTLS is the TLS of connections to the peer nodeID: the same rule on
// the server's certificate, which must be nodeID's.
func (t *Transport) clientTLS(nodeID, addr string) *tls.Config {
	return &tls.Config{
		MinVersion:   tls.VersionTLS13,
		Certificates: []tls.Certificate{t.cfg.Cert},
		NextProtos:   []string{"h2"},
		// The chain is checked by VerifyConnection against the service
		// certificate, and the peer is named by its node id, not a host
		// name.
		InsecureSkipVerify: true,
		VerifyConnection: func(cs tls.ConnectionState) error {
			id, err := t.check(cs.PeerCertificates, nodeID)
			if err != nil {
				t.log.Warn("refused a node-to-node server", "remote", addr, "node_id", id, "reason", err.Error())
			}
			return err
		},
	}
}

func h2Only() *http.Protocols {
	p := new(http.Protocols)
	p.SetHTTP2(true)
	return p
}

func h2Config() *http.HTTP2Config {
	return &http.HTTP2Config{
		// A Raft stream's batch (a round's MsgApp: tens of KiB under
		// load) is written as one DATA frame of up to 512 KiB (the
		// client's body buffer); see peer.go, settingsSeen.
		MaxReadFrameSize:              1 << 20,
		MaxReceiveBufferPerConnection: 3 << 20,
		MaxReceiveBufferPerStream:     2 << 20,
		SendPingTimeout:               5 * time.Second,
		PingTimeout:                   5 * time.Second,
		WriteByteTimeout:              10 * time.Second,
	}
}

// authenticated runs h for a peer that is a node of this service and
// Allowed now, with its node id in the request's context. The chain was
// checked at the handshake; the node id is recomputed from the certificate
// (cheap) and Allowed asked again, so that a node retired since its
// connection was made is refused, and its connection closed.
func (t *Transport) authenticated(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.TLS == nil || len(r.TLS.PeerCertificates) == 0 {
			writeError(w, http.StatusUnauthorized, "Unauthorized", "no node certificate")
			return
		}
		id, err := nodeID(r.TLS.PeerCertificates[0].PublicKey)
		if err != nil || !t.cfg.Allowed(id) {
			t.log.Warn("refused a node-to-node request", "remote", r.RemoteAddr, "node_id", id, "path", r.URL.Path)
			// The connection goes too (HTTP/2 GOAWAY once idle): the
			// peer's next one is a handshake, refused there.
			w.Header().Set("Connection", "close")
			writeError(w, http.StatusForbidden, "Forbidden", "node is not allowed")
			return
		}
		h.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), peerKey{}, id)))
	})
}

// writeError writes an ACL-style error body.
func writeError(w http.ResponseWriter, status int, code, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(map[string]any{"error": map[string]string{"code": code, "message": msg}})
}

// dropped returns how many messages to raftID were dropped (tests).
func (t *Transport) dropped(raftID uint64) uint64 {
	t.mu.RLock()
	defer t.mu.RUnlock()
	if p := t.peers[raftID]; p != nil {
		return p.dropped.Load()
	}
	return 0
}
