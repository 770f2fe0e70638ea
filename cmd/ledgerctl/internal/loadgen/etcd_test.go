package loadgen

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestRunEtcd runs the etcd mode against a stand-in for etcd's v3 JSON
// gateway that requires a client certificate: every put is the gateway's
// shape (base64 key and value of the given size), each connection writes
// its own key, and the report counts what was answered.
func TestRunEtcd(t *testing.T) {
	var mu sync.Mutex
	keys := map[string]int{}
	bad := ""
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var body struct{ Key, Value string }
		b, _ := io.ReadAll(r.Body)
		err := json.Unmarshal(b, &body)
		k, kerr := base64.StdEncoding.DecodeString(body.Key)
		v, verr := base64.StdEncoding.DecodeString(body.Value)
		mu.Lock()
		defer mu.Unlock()
		switch {
		case r.Method != "POST" || r.URL.Path != "/v3/kv/put" || r.ProtoMajor != 1:
			bad = r.Method + " " + r.URL.Path + " " + r.Proto
		case len(r.TLS.PeerCertificates) == 0:
			bad = "no client certificate"
		case err != nil || kerr != nil || verr != nil || len(v) != 100 || !strings.HasPrefix(string(k), "kv/"):
			bad = "body " + string(b)
		default:
			keys[string(k)]++
			w.Write([]byte(`{"header":{"revision":"7"}}`))
			return
		}
		http.Error(w, "bad", 400)
	}))
	srv.TLS = &tls.Config{ClientAuth: tls.RequireAnyClientCert}
	srv.StartTLS()
	defer srv.Close()

	dir := t.TempDir()
	ca := filepath.Join(dir, "ca.pem")
	os.WriteFile(ca, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}), 0o600)
	cert := filepath.Join(dir, "client.pem")
	c := srv.TLS.Certificates[0] // any certificate with its key will do as the client's
	key, err := x509.MarshalPKCS8PrivateKey(c.PrivateKey)
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(cert, append(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Certificate[0]}),
		pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: key})...), 0o600)

	o := Options{Endpoint: srv.URL, CertFile: cert, ServiceCert: ca, Connections: 4, Duration: 200 * time.Millisecond,
		Warmup: 50 * time.Millisecond, Timeout: 5 * time.Second, Size: 100, Collection: "kv"}
	rep, err := RunEtcd(context.Background(), o, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if bad != "" {
		t.Fatalf("a request not in the gateway's shape: %s", bad)
	}
	if len(keys) != 4 {
		t.Fatalf("keys written %v, want one per connection", keys)
	}
	if rep.Appends.Requests == 0 || rep.Appends.Errors != 0 || rep.Committed.Measured != rep.Appends.Requests ||
		rep.Committed.Latency != rep.Appends.Latency || rep.Server != "etcd" || rep.Failures() != 0 {
		t.Fatalf("report %+v", rep)
	}
}
