package main

import (
	"bytes"
	"context"
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/ledgerd/ledgerd/internal/api"
	"github.com/ledgerd/ledgerd/internal/attest"
	"github.com/ledgerd/ledgerd/internal/durable"
	"github.com/ledgerd/ledgerd/internal/identity"
	"github.com/ledgerd/ledgerd/internal/join"
	"github.com/ledgerd/ledgerd/internal/node"
)

// Files of a node that joined a service (next to the identity files).
const (
	// membershipFile records the node's Raft id once the service has
	// trusted it: a restart rejoins with it.
	membershipFile = "membership.json"
	// joinKeyFile is the X25519 key the service seals its secrets to while
	// the node waits to be trusted (0600; removed once they are received).
	joinKeyFile = "join.key"
)

// membership is membershipFile's content: the node's Raft id and the
// peers it was given when it joined, which it trusts to reach until its
// own copy of the nodes table (caught up from them) says otherwise.
type membership struct {
	RaftID uint64      `json:"raft_id"`
	Peers  []join.Peer `json:"peers"`
}

// readMembership returns the membership recorded in dir, or the zero value
// if the node has not joined a service (it founded one, or is new).
func readMembership(dir string) (membership, error) {
	b, err := os.ReadFile(filepath.Join(dir, membershipFile))
	if errors.Is(err, os.ErrNotExist) {
		return membership{}, nil
	}
	if err != nil {
		return membership{}, err
	}
	var m membership
	if err := json.Unmarshal(b, &m); err != nil || m.RaftID < 2 {
		return membership{}, fmt.Errorf("%s is corrupt: %q", membershipFile, b)
	}
	return m, nil
}

// joinService runs the join protocol of a new node (--join): it asks a
// node of the service to admit it (POST /node/join) with its certificate
// signing request, an encryption key and its virtual quote, waits while
// it is Pending (the consortium must pass transition_node_to_trusted),
// then saves the service identity, its endorsed certificate and the
// ledger secret it receives sealed to its key, and records its Raft id.
// It returns the membership it recorded.
func joinService(ctx context.Context, cfg config, rpcAddr, peerAddr string, log *slog.Logger, stdout io.Writer) (membership, error) {
	if cfg.ServiceCert == "" {
		return membership{}, errors.New("--join needs --service-cert: the certificate of the service to join (its service.pem), to authenticate it")
	}
	svcPEM, err := os.ReadFile(cfg.ServiceCert)
	if err != nil {
		return membership{}, fmt.Errorf("--service-cert: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(svcPEM) {
		return membership{}, fmt.Errorf("--service-cert %s holds no PEM certificate", cfg.ServiceCert)
	}
	key, err := identity.LoadOrCreateNodeKey(cfg.Data, log)
	if err != nil {
		return membership{}, err
	}
	enc, encPub, err := loadOrCreateJoinKey(cfg.Data)
	if err != nil {
		return membership{}, err
	}
	req, clientCert, err := joinRequest(cfg, key, encPub, rpcAddr, peerAddr)
	if err != nil {
		return membership{}, err
	}
	hc := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{
		RootCAs: pool, Certificates: []tls.Certificate{clientCert}, MinVersion: tls.VersionTLS12}}}
	defer hc.CloseIdleConnections()
	body, _ := json.Marshal(req)
	target := strings.TrimRight(cfg.Join, "/")
	pendingSaid := false
	for attempt := 0; ; attempt++ {
		resp, next, err := askToJoin(ctx, hc, target, body)
		var refused *joinRefused
		switch {
		case errors.As(err, &refused):
			return membership{}, fmt.Errorf("the service refused to admit this node: %w", err)
		case err != nil:
			log.Warn("join request failed; retrying", "node", target, "err", err)
		case next != "":
			log.Info("asking the primary", "primary", next)
			target = next
			continue
		case resp.NodeStatus == "Trusted" && resp.Welcome != nil:
			return saveWelcome(cfg.Data, key, enc, resp, log)
		case resp.NodeStatus == "Pending":
			if !pendingSaid {
				fmt.Fprintf(stdout, "node %s is Pending: the consortium must trust it (ledgerctl nodes trust %s)\n", resp.NodeID, resp.NodeID)
				pendingSaid = true
			}
		default:
			return membership{}, fmt.Errorf("the service answered the join request with status %q", resp.NodeStatus)
		}
		select {
		case <-ctx.Done():
			return membership{}, ctx.Err()
		case <-time.After(min(time.Duration(attempt+1)*250*time.Millisecond, 2*time.Second)):
		}
	}
}

// askToJoin posts the request to target. A backup answers 503 with the
// primary's address in the x-ledgerd-primary header: next is then where
// to ask.
func askToJoin(ctx context.Context, hc *http.Client, target string, body []byte) (*join.Response, string, error) {
	r, err := http.NewRequestWithContext(ctx, "POST", target+join.Path, bytes.NewReader(body))
	if err != nil {
		return nil, "", err
	}
	r.Header.Set("Content-Type", "application/json")
	resp, err := hc.Do(r)
	if err != nil {
		return nil, "", err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return nil, "", err
	}
	if resp.StatusCode == http.StatusServiceUnavailable {
		if p := resp.Header.Get(primaryHeader); p != "" && "https://"+p != target {
			return nil, "https://" + p, nil
		}
	}
	if resp.StatusCode >= 400 && resp.StatusCode < 500 {
		return nil, "", &joinRefused{fmt.Sprintf("%s: %s", resp.Status, bytes.TrimSpace(data))}
	}
	if resp.StatusCode != http.StatusOK {
		return nil, "", fmt.Errorf("%s: %s", resp.Status, bytes.TrimSpace(data))
	}
	var jr join.Response
	if err := json.Unmarshal(data, &jr); err != nil {
		return nil, "", fmt.Errorf("the join answer is not JSON: %w", err)
	}
	return &jr, "", nil
}

// joinRefused is a 4xx answer to a join request: asking again will not
// change it.
type joinRefused struct{ msg string }

func (e *joinRefused) Error() string { return e.msg }

// primaryHeader is api.PrimaryHeader.
const primaryHeader = api.PrimaryHeader

// joinRequest builds the request and the self-signed TLS certificate that
// proves the node holds its key.
func joinRequest(cfg config, key *ecdsa.PrivateKey, encPub, rpcAddr, peerAddr string) (join.Request, tls.Certificate, error) {
	dns, ips := certificateNames(cfg)
	csr, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{
		Subject: pkix.Name{CommonName: "CCF Node"}, DNSNames: dns, IPAddresses: ips}, key)
	if err != nil {
		return join.Request{}, tls.Certificate{}, err
	}
	platform, err := thisPlatform()
	if err != nil {
		return join.Request{}, tls.Certificate{}, err
	}
	rd, err := attest.ReportData(&key.PublicKey)
	if err != nil {
		return join.Request{}, tls.Certificate{}, err
	}
	quote, err := platform.Quote(rd)
	if err != nil {
		return join.Request{}, tls.Certificate{}, err
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "CCF Node (joining)"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return join.Request{}, tls.Certificate{}, err
	}
	return join.Request{
		CSR:           string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: csr})),
		EncryptionKey: encPub,
		QuoteInfo:     join.QuoteInfo{Format: attest.FormatVirtual, Quote: quote},
		RPCAddress:    rpcAddr,
		PeerAddress:   peerAddr,
	}, tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, nil
}

// publishedAddress is the address peers use for a listen address: an
// unspecified host (":8443", "0.0.0.0:8443") is published as 127.0.0.1 —
// across machines, listen on the address others reach.
func publishedAddress(listen string) string {
	host, port, err := net.SplitHostPort(listen)
	if err != nil {
		return listen
	}
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		host = "127.0.0.1"
	}
	return net.JoinHostPort(host, port)
}

// loadOrCreateJoinKey keeps the node's X25519 join key in DIR/join.key
// (0600), so that a restart while Pending can still open the secrets
// sealed to the key it first sent.
func loadOrCreateJoinKey(dir string) (*ecdh.PrivateKey, string, error) {
	path := filepath.Join(dir, joinKeyFile)
	if b, err := os.ReadFile(path); err == nil {
		blk, _ := pem.Decode(b)
		if blk == nil {
			return nil, "", fmt.Errorf("%s is not PEM", path)
		}
		k, err := x509.ParsePKCS8PrivateKey(blk.Bytes)
		if err != nil {
			return nil, "", fmt.Errorf("%s: %w", path, err)
		}
		priv, ok := k.(*ecdh.PrivateKey)
		if !ok {
			return nil, "", fmt.Errorf("%s is not an X25519 key", path)
		}
		der, err := x509.MarshalPKIXPublicKey(priv.PublicKey())
		if err != nil {
			return nil, "", err
		}
		return priv, string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})), nil
	} else if !errors.Is(err, os.ErrNotExist) {
		return nil, "", err
	}
	priv, pub, err := join.NewEncryptionKey()
	if err != nil {
		return nil, "", err
	}
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return nil, "", err
	}
	if err := durable.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600); err != nil {
		return nil, "", err
	}
	return priv, pub, nil
}

// saveWelcome opens the sealed secrets and saves the joined node's files,
// the membership last (a crash before it asks again: the answer is the
// same).
func saveWelcome(dir string, key *ecdsa.PrivateKey, enc *ecdh.PrivateKey, resp *join.Response, log *slog.Logger) (membership, error) {
	w := resp.Welcome
	secrets, err := join.OpenSecrets(enc, w.Secrets)
	if err != nil {
		return membership{}, err
	}
	defer clear(secrets.LedgerSecret)
	defer clear(secrets.ServiceKey)
	if err := identity.WriteJoined(dir, key, []byte(w.ServiceCert), secrets.ServiceKey, secrets.LedgerSecret, []byte(w.EndorsedCert)); err != nil {
		return membership{}, err
	}
	if w.Recovery != nil {
		// A service being recovered: the previous services' identities,
		// to verify the previous ledger this node replays from its peers.
		if err := node.WriteJoinedRecovery(dir, w.Recovery); err != nil {
			return membership{}, err
		}
		log.Info("joining a service being recovered: this node replays its whole ledger from its peers")
	}
	m := membership{RaftID: w.RaftID, Peers: w.Peers}
	b, _ := json.Marshal(m)
	if err := durable.WriteFile(filepath.Join(dir, membershipFile), b, 0o600); err != nil {
		return membership{}, err
	}
	if err := os.Remove(filepath.Join(dir, joinKeyFile)); err != nil {
		log.Warn("couldn't remove the join key", "err", err)
	}
	log.Info("joined the service", "node_id", resp.NodeID, "raft_id", w.RaftID, "peers", len(w.Peers))
	return m, nil
}
