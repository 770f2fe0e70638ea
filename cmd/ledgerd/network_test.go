package main

import (
	"context"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ledgerd/ledgerd/client"
	"github.com/ledgerd/ledgerd/internal/testbin"
)

// network3 is a three-node service of real ledgerd processes.
type network3 struct {
	bin   string
	dirs  [3]string
	peers [3]string // node-to-node addresses
	procs [3]*process
	admin [3]*http.Client
}

// startNetwork founds a service on node 0 (Opening, so that joiners are
// trusted at once), joins nodes 1 and 2 to it, and opens the service.
// extra are flags given to every node.
func startNetwork(t *testing.T, extra ...string) *network3 {
	t.Helper()
	w := &network3{bin: testbin.Command(t, "", "github.com/ledgerd/ledgerd/cmd/ledgerd")}
	base := t.TempDir()
	for i := range w.dirs {
		w.dirs[i] = filepath.Join(base, string(rune('a'+i)))
	}
	for i := range w.peers {
		w.peers[i] = freeAddr(t)
	}
	w.procs[0] = startLedgerd(t, w.bin, append([]string{"--data", w.dirs[0], "--peer-listen", w.peers[0], "--start-opening", "--election-timeout", "500ms"}, extra...)...)
	for i := 1; i < 3; i++ {
		w.procs[i] = startLedgerd(t, w.bin, append([]string{"--data", w.dirs[i], "--peer-listen", w.peers[i], "--election-timeout", "500ms",
			"--join", "https://" + w.procs[0].addr, "--service-cert", filepath.Join(w.dirs[0], "service.pem")}, extra...)...)
	}
	// The joined nodes hold the service's certificate; the administrator's
	// credentials are the founder's.
	for i := range w.dirs {
		w.admin[i] = httpsClientWith(t, filepath.Join(w.dirs[0], "service.pem"), filepath.Join(w.dirs[0], "admin.pem"))
	}
	// Open the service: a proposal of member0, voted at once.
	c, err := client.New("https://"+w.procs[0].addr, client.CertificateFile(filepath.Join(w.dirs[0], "member0.pem")),
		&client.Options{ServiceCertFile: filepath.Join(w.dirs[0], "service.pem")})
	if err != nil {
		t.Fatal(err)
	}
	cert, err := os.ReadFile(filepath.Join(w.dirs[0], "service.pem"))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	p, err := c.CreateProposal(ctx, client.Action{Name: "transition_service_to_open",
		Args: map[string]any{"next_service_identity": string(cert)}})
	if err != nil {
		t.Fatal(err)
	}
	if p, err = c.Vote(ctx, p.ProposalID, true); err != nil || p.State != "Accepted" {
		t.Fatalf("opening the service: %+v %v", p, err)
	}
	return w
}

// freeAddr returns a loopback address with a port that was free a moment
// ago.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

func httpsClientWith(t *testing.T, serviceCert, credPEM string) *http.Client {
	t.Helper()
	dir := t.TempDir()
	for _, f := range []string{"service.pem", "admin.pem"} {
		src := serviceCert
		if f == "admin.pem" {
			src = credPEM
		}
		b, err := os.ReadFile(src)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, f), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return httpsClient(t, dir)
}

// appendOnPrimary appends through whichever node takes the write (backups
// answer 503 until writes are forwarded) and returns its transaction id
// and the node's index.
func (w *network3) appendOnPrimary(t *testing.T, contents string, alive func(int) bool) (string, int) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		for i, p := range w.procs {
			if !alive(i) {
				continue
			}
			status, h, _ := call(t, w.admin[i], "POST", "https://"+p.addr+"/app/transactions?api-version=2022-05-13",
				`{"contents":"`+contents+`"}`)
			if status == 200 {
				return h.Get("x-ms-ccf-transaction-id"), i
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("no node took the write %q", contents)
	return "", 0
}

// waitReadable waits until node i serves txid's entry, committed.
func (w *network3) waitReadable(t *testing.T, i int, txid, contents string) {
	t.Helper()
	base := "https://" + w.procs[i].addr
	waitCommittedHTTP(t, w.admin[i], base, txid)
	readEntry(t, w.admin[i], base, txid, contents)
}

// TestThreeNodeNetwork: two nodes join a founder; a write on the primary
// is committed and read on every node; after the primary is killed, the
// others elect one that commits a write; the killed node restarts on its
// directory, rejoins and catches up.
func TestThreeNodeNetwork(t *testing.T) {
	if testing.Short() {
		t.Skip("starts three ledgerd processes")
	}
	w := startNetwork(t)
	all := func(int) bool { return true }
	txid, primary := w.appendOnPrimary(t, "replicated", all)
	for i := range w.procs {
		w.waitReadable(t, i, txid, "replicated")
	}
	// Kill the primary.
	w.procs[primary].cmd.Process.Signal(syscall.SIGKILL)
	<-w.procs[primary].done
	killed := time.Now()
	alive := func(i int) bool { return i != primary }
	after, newPrimary := w.appendOnPrimary(t, "after failover", alive)
	for i := range w.procs {
		if alive(i) {
			w.waitReadable(t, i, after, "after failover")
		}
	}
	t.Logf("node %d killed; node %d committed a write %s later", primary, newPrimary, time.Since(killed).Round(time.Millisecond))
	// Restart it on its directory and addresses: it rejoins by itself and
	// catches up.
	args := []string{"--data", w.dirs[primary], "--election-timeout", "500ms",
		"--listen", w.procs[primary].addr, "--peer-listen", w.peers[primary]}
	w.procs[primary] = startLedgerd(t, w.bin, args...)
	w.waitReadable(t, primary, after, "after failover")
	w.waitReadable(t, primary, txid, "replicated")
	if !strings.Contains(strings.Join(w.procs[primary].stdout, "\n"), "listening on") {
		t.Fatal("no announcement")
	}
}
