package main

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ledgerd/ledgerd/internal/auth"
)

func TestConfigDefaults(t *testing.T) {
	cfg, _, err := parseConfig(nil, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Data != "./data" || cfg.Listen != "127.0.0.1:8443" || cfg.LedgerID != "ledger" ||
		time.Duration(cfg.SignatureInterval) != 5*time.Millisecond || cfg.LogFormat != "text" ||
		nodeSyncInterval(cfg.SyncInterval) != 2*time.Millisecond || time.Duration(cfg.JWTMaxLifetime) != 24*time.Hour {
		t.Fatalf("defaults %+v", cfg)
	}
}

func TestConfigFileAndFlags(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ledgerd.json")
	file := `{"data":"/srv/l","listen":"0.0.0.0:443","ledger-id":"contoso","san-dns":["a.example"],
		"signature-interval":"20ms","sync-interval":"0s","user":["u.pem:Reader"],"log-format":"json"}`
	if err := os.WriteFile(path, []byte(file), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, _, err := parseConfig([]string{"--config", path, "--ledger-id", "flagged", "--san-dns", "b.example", "--san-dns", "c.example"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Data != "/srv/l" || cfg.Listen != "0.0.0.0:443" || cfg.LedgerID != "flagged" || cfg.LogFormat != "json" ||
		time.Duration(cfg.SignatureInterval) != 20*time.Millisecond || !slices.Equal(cfg.Users, []string{"u.pem:Reader"}) ||
		nodeSyncInterval(cfg.SyncInterval) >= 0 ||
		!slices.Equal(cfg.SANDNS, []string{"b.example", "c.example"}) {
		t.Fatalf("merged %+v", cfg)
	}
	dns, ips := certificateNames(cfg)
	if !slices.Equal(dns, []string{"localhost", "b.example", "c.example"}) || len(ips) != 1 {
		t.Fatalf("names %v %v", dns, ips)
	}
}

func TestConfigErrors(t *testing.T) {
	dir := t.TempDir()
	unknown := filepath.Join(dir, "unknown.json")
	os.WriteFile(unknown, []byte(`{"listen":"127.0.0.1:1","lisen":"x"}`), 0o600)
	for _, args := range [][]string{
		{"--listen", "nocolon"},
		{"--ledger-id", ""},
		{"--san-ip", "not-an-ip"},
		{"--signature-interval", "-1s"},
		{"--sync-interval", "-1ms"},
		{"--chunk-size", "0"},
		{"--election-timeout", "0s"},
		{"--election-timeout", "9ms"},
		{"--election-timeout", "2h"},
		{"--commit-window", "0s"},
		{"--commit-window", "2m"},
		{"--user", "cert.pem"},
		{"--user", "cert.pem:Owner"},
		{"--jwt-issuer", "only,two"},
		{"--jwt-issuer", "iss,aud,jwks.json,"},
		{"--jwt-issuer", "iss,aud,jwks.json,ns,extra"},
		{"--jwt-issuer", "iss,aud,jwks.json,bad:ns"},
		{"--jwt-issuer", "https://a/,aud,a.json", "--jwt-issuer", "https://b/,aud,b.json"},
		{"--jwt-issuer", "https://a/,aud,a.json,x", "--jwt-issuer", "https://b/,aud,b.json,x"},
		{"--aad-tenant", "contoso.onmicrosoft.com"},
		{"--aad-tenant", "72f988bf-86f1-41af-91ab-2d7cd011db47", "--jwt-issuer", "https://b/,aud,b.json"},
		{"--jwt-max-lifetime", "0s"},
		{"--jwt-max-lifetime", "-1h"},
		{"--log-level", "loud"},
		{"--log-format", "xml"},
		{"--config", unknown},
		{"--config", filepath.Join(dir, "missing.json")},
		{"extra-argument"},
		{"--peer-publish", "nocolon"},
		{"--peer-publish", ":9000"},
		{"--peer-publish", "0.0.0.0:9000"},
		{"--peer-publish", "ledger.example:0"},
		{"--peer-client-interface", "ledger.example"},
	} {
		if _, _, err := parseConfig(args, io.Discard); err == nil {
			t.Errorf("parseConfig(%q) accepted", args)
		}
	}
}

// TestPeerPublishFlags: --peer-publish and --peer-client-interface are
// taken as given (flags or file).
func TestPeerPublishFlags(t *testing.T) {
	cfg, _, err := parseConfig([]string{"--peer-listen", "10.0.0.5:9001", "--peer-publish", "ledger0.example:443",
		"--peer-client-interface", "10.0.0.5"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.PeerPublish != "ledger0.example:443" || cfg.PeerClientInterface != "10.0.0.5" {
		t.Fatalf("%+v", cfg)
	}
	if cfg, _, err = parseConfig(nil, io.Discard); err != nil || cfg.PeerPublish != "" || cfg.PeerClientInterface != "" {
		t.Fatalf("defaults: %+v %v", cfg, err)
	}
}

func TestSpecs(t *testing.T) {
	path, role, err := parseUserSpec("C:/certs/a:b.pem:Contributor")
	if err != nil || path != "C:/certs/a:b.pem" || role != auth.RoleContributor {
		t.Fatalf("%q %v %v", path, role, err)
	}
	ic, err := parseIssuerSpec("https://sts.windows.net/t/,https://confidential-ledger.azure.com,https://login.example/keys")
	if err != nil || ic.JWKSURL != "https://login.example/keys" || ic.JWKSFile != "" {
		t.Fatalf("%+v %v", ic, err)
	}
	ic, _ = parseIssuerSpec("iss,aud,/etc/jwks.json")
	if ic.JWKSFile != "/etc/jwks.json" || ic.Namespace != "" {
		t.Fatalf("%+v", ic)
	}
	ic, _ = parseIssuerSpec("iss,aud,/etc/jwks.json,partner")
	if ic.JWKSFile != "/etc/jwks.json" || ic.Namespace != "partner" {
		t.Fatalf("%+v", ic)
	}
	for _, args := range [][]string{
		{"--jwt-issuer", "https://a/,aud,a.json", "--jwt-issuer", "https://b/,aud,b.json,b"},
		{"--aad-tenant", "72f988bf-86f1-41af-91ab-2d7cd011db47", "--jwt-issuer", "https://b/,aud,b.json,b"},
	} {
		if _, _, err := parseConfig(args, io.Discard); err != nil {
			t.Errorf("parseConfig(%q): %v", args, err)
		}
	}
}

func TestCertificateNames(t *testing.T) {
	for listen, want := range map[string]string{
		"0.0.0.0:443":     "[localhost] [127.0.0.1]",
		"10.0.0.5:443":    "[localhost] [127.0.0.1 10.0.0.5]",
		"ledger.lan:8443": "[localhost ledger.lan] [127.0.0.1]",
		":8443":           "[localhost] [127.0.0.1]",
	} {
		dns, ips := certificateNames(config{Listen: listen})
		if got := fmt.Sprint(dns, " ", ips); got != want {
			t.Errorf("%s: %s, want %s", listen, got, want)
		}
	}
}

func TestConnectionLimit(t *testing.T) {
	for _, c := range []struct {
		requested int
		rlimit    uint64
		want      int
		err       string
	}{
		{0, 256, 128, ""},              // reserve 128: the ledger's 64 chunk files for reads, and 64
		{0, 1024, 768, ""},             // reserve a quarter
		{0, 1 << 20, 1<<20 - 1024, ""}, // reserve at most 1024
		{100, 256, 100, ""},
		{129, 256, 0, "use at most 128"},
		{0, 140, 0, "too low to serve"},
		{0, 0, defaultMaxConnections, ""}, // unknown limit
		{5, 0, 5, ""},
	} {
		got, err := connectionLimit(c.requested, c.rlimit)
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Errorf("connectionLimit(%d, %d) = %d, %v; want an error with %q", c.requested, c.rlimit, got, err, c.err)
			}
			continue
		}
		if err != nil || got != c.want {
			t.Errorf("connectionLimit(%d, %d) = %d, %v; want %d", c.requested, c.rlimit, got, err, c.want)
		}
	}
	if _, _, err := parseConfig([]string{"--max-connections", "-1"}, io.Discard); err == nil {
		t.Error("--max-connections -1 accepted")
	}
}

// TestElectionTimeout: --election-timeout (default 1s) becomes Raft's
// clock: 10ms ticks (a tenth of the timeout below 100ms), the timeout in
// whole ticks, a heartbeat every tenth of it; every accepted value is one
// etcd raft accepts.
func TestElectionTimeout(t *testing.T) {
	for _, c := range []struct {
		args            []string
		tick            time.Duration
		election, heart int
	}{
		{nil, 10 * time.Millisecond, 100, 10},
		{[]string{"--election-timeout", "3s"}, 10 * time.Millisecond, 300, 30},
		{[]string{"--election-timeout", "155ms"}, 10 * time.Millisecond, 15, 1},
		{[]string{"--election-timeout", "50ms"}, 5 * time.Millisecond, 10, 1},
		{[]string{"--election-timeout", "10ms"}, time.Millisecond, 10, 1},
	} {
		cfg, _, err := parseConfig(c.args, io.Discard)
		if err != nil {
			t.Fatalf("%v: %v", c.args, err)
		}
		rc, err := cfg.raftTiming()
		if err != nil {
			t.Fatalf("%v: %v", c.args, err)
		}
		if rc.TickInterval != c.tick || rc.ElectionTicks != c.election || rc.HeartbeatTicks != c.heart {
			t.Errorf("%v: tick %v, election %d ticks, heartbeat %d ticks; want %v, %d, %d", c.args, rc.TickInterval, rc.ElectionTicks, rc.HeartbeatTicks, c.tick, c.election, c.heart)
		}
		rc.ID = 1
		if err := rc.Validate(); err != nil {
			t.Errorf("%v: Raft refuses the mapping: %v", c.args, err)
		}
	}
	file := filepath.Join(t.TempDir(), "c.json")
	if err := os.WriteFile(file, []byte(`{"election-timeout":"2s"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, _, err := parseConfig([]string{"--config", file}, io.Discard)
	if err != nil || time.Duration(cfg.ElectionTimeout) != 2*time.Second {
		t.Fatalf("election-timeout from a config file: %v, %v", cfg.ElectionTimeout, err)
	}
}
