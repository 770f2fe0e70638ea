package main

import (
	"context"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ledgerd/ledgerd/client"
	"github.com/ledgerd/ledgerd/internal/testbin"
	"github.com/ledgerd/ledgerd/receipt"
)

// TestJoinRecoveringService: CCF's disaster recovery with the recovered
// network's nodes joining before it opens. Three nodes are killed; one
// recovers their ledger (--recover, Recovering); two new nodes join it while
// it is Recovering: they are trusted at once and become voters (CCF), and,
// given the previous service's identity by the join, replay the whole
// ledger from it, the previous nodes' signatures verified against that
// identity, its private entries unread. The members accept the recovery and
// submit their shares; the service opens; the joined nodes then read the
// private entries written before the disaster (they installed the
// recovered secrets from the ledger, as the primary did), a new write
// replicates to them, a joined node restarted still reads them, the
// network commits with the recovering node killed, and ledgerctl audit
// passes on a joined node's directory. Without the join of a Recovering
// service the joiners stay Pending; without the recovery record they
// refuse the previous signatures; without the recovered secrets installed
// from the ledger they cannot read the old entries.
// recoveringNet is a recovered service (node 0, --recover over a killed
// three-node service's files) that two nodes joined while it was
// Recovering (nodes 1 and 2), before the members accept the recovery.
type recoveringNet struct {
	w                     *network3
	ids                   []string // written before the disaster, "before-a".. "before-c"
	oldCert, newCert, rec string
	procs                 []*process
	dirs, peers           []string
	admin                 *http.Client
}

func (r *recoveringNet) at(i int) string { return "https://" + r.procs[i].addr }

// recoverAndJoin builds a recoveringNet, checking that the joiners are
// Trusted voters with a recovery record and that no node serves /app.
func recoverAndJoin(t *testing.T) *recoveringNet {
	w := startNetwork(t)
	alive := func(int) bool { return true }
	var ids []string
	for i := range 3 {
		id, _ := w.appendOnPrimary(t, "before-"+string(rune('a'+i)), alive)
		ids = append(ids, id)
	}
	for i, id := range ids {
		w.waitReadable(t, 2, id, "before-"+string(rune('a'+i)))
	}
	oldCert := filepath.Join(w.dirs[2], "service.pem")
	for _, p := range w.procs {
		p.cmd.Process.Kill()
		<-p.done
	}

	base := t.TempDir()
	rec := filepath.Join(base, "rec")
	copyDir(t, filepath.Join(w.dirs[2], "ledger"), filepath.Join(rec, "ledger"))
	os.WriteFile(filepath.Join(rec, "service.pem"), mustRead(t, oldCert), 0o644)
	procs := []*process{startLedgerd(t, w.bin, "--data", rec, "--recover", "--peer-listen", freeAddr(t), "--election-timeout", "500ms")}
	dirs := []string{rec}
	t.Cleanup(func() {
		if t.Failed() {
			for i, p := range procs {
				t.Logf("node %d's log (end):\n%s", i, tailOf(p.stderr.String(), 6000))
			}
		}
	})
	newCert := filepath.Join(rec, "service.pem")
	admin := adminHTTP(t, newCert, filepath.Join(w.dirs[0], "admin.pem"))
	at := func(i int) string { return "https://" + procs[i].addr }
	expectService(t, admin, at(0), "Recovering")

	// Two nodes join the Recovering service.
	peers := []string{""}
	for i := 1; i <= 2; i++ {
		dir := filepath.Join(base, "j"+string(rune('0'+i)))
		dirs = append(dirs, dir)
		peers = append(peers, freeAddr(t))
		procs = append(procs, startLedgerd(t, w.bin, "--data", dir, "--peer-listen", peers[i], "--election-timeout", "500ms",
			"--join", at(0), "--service-cert", newCert))
	}
	for i := 1; i <= 2; i++ {
		if _, err := os.Stat(filepath.Join(dirs[i], "recovery.json")); err != nil {
			t.Fatalf("joiner %d has no recovery record: %v", i, err)
		}
	}
	waitFor(t, "three Trusted voters on the recovering node", func() bool {
		_, _, nodes := call(t, admin, "GET", at(0)+"/node/network/nodes", "")
		trusted := 0
		list, _ := nodes["nodes"].([]any)
		for _, n := range list {
			if n.(map[string]any)["status"] == "Trusted" {
				trusted++
			}
		}
		_, _, cons := call(t, admin, "GET", at(0)+"/node/consensus", "")
		details, _ := cons["details"].(map[string]any)
		configs, _ := details["configs"].([]any)
		if len(configs) == 0 {
			return false
		}
		last, _ := configs[len(configs)-1].(map[string]any)
		voters, _ := last["nodes"].(map[string]any)
		return trusted == 3 && len(voters) == 3
	})
	// Still Recovering on every node: /app is refused.
	for i := range procs {
		if st, _, body := call(t, admin, "GET", at(i)+"/app/transactions/"+ids[0]+"?api-version=2022-05-13", ""); st == 200 {
			t.Fatalf("node %d serves an entry before the service opens: %v", i, body)
		}
	}

	return &recoveringNet{w: w, ids: ids, oldCert: oldCert, newCert: newCert, rec: rec, procs: procs, dirs: dirs, peers: peers, admin: admin}
}

func TestJoinRecoveringService(t *testing.T) {
	r := recoverAndJoin(t)
	w, ids, oldCert, newCert, rec, procs, dirs, peers, admin := r.w, r.ids, r.oldCert, r.newCert, r.rec, r.procs, r.dirs, r.peers, r.admin
	at := func(i int) string { return "https://" + procs[i].addr }
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	// The members accept the recovery and submit their shares.
	m0 := memberClient(t, at(0), filepath.Join(w.dirs[0], memberFile), newCert)
	pass(t, ctx, m0, client.Action{Name: "transition_service_to_open", Args: map[string]any{
		"previous_service_identity": string(mustRead(t, oldCert)),
		"next_service_identity":     string(mustRead(t, newCert))}})
	ctl := testbin.Command(t, "", "github.com/ledgerd/ledgerd/cmd/ledgerctl")
	submit := exec.Command(ctl, "gov", "submit-share", "--enc-key", filepath.Join(w.dirs[0], memberEncPrivFile))
	submit.Env = append(os.Environ(), "LEDGER_ENDPOINT="+at(0), "LEDGER_SERVICE_CERT="+newCert, "LEDGER_CERT="+filepath.Join(w.dirs[0], memberFile))
	if out, err := submit.CombinedOutput(); err != nil || !strings.Contains(string(out), "1/1 recovery shares successfully submitted") {
		t.Fatalf("ledgerctl gov submit-share: %v\n%s", err, out)
	}

	// Every node: Open, the old private entries readable.
	readOld := func(i int) {
		t.Helper()
		waitFor(t, "the service open on node "+string(rune('0'+i)), func() bool {
			_, _, info := call(t, admin, "GET", at(i)+"/gov/service/info?api-version=2024-07-01", "")
			return info["status"] == "Open"
		})
		for k, id := range ids {
			want := "before-" + string(rune('a'+k))
			waitFor(t, "entry "+id+" on node "+string(rune('0'+i)), func() bool {
				st, _, body := call(t, admin, "GET", at(i)+"/app/transactions/"+id+"?api-version=2022-05-13", "")
				entry, _ := body["entry"].(map[string]any)
				return st == 200 && body["state"] == "Ready" && entry["contents"] == want
			})
		}
	}
	for i := range procs {
		readOld(i)
	}
	// The snapshot the opening triggers is the same file on every node: the
	// joined nodes' state, the previous private domain included, is the
	// recovering node's.
	snapOf := func(dir string) (string, []byte) {
		ents, _ := os.ReadDir(filepath.Join(dir, "snapshots"))
		for _, e := range ents {
			if strings.HasSuffix(e.Name(), ".committed") {
				b, err := os.ReadFile(filepath.Join(dir, "snapshots", e.Name()))
				if err == nil {
					return e.Name(), b
				}
			}
		}
		return "", nil
	}
	var want string
	var wantBytes []byte
	waitFor(t, "the opening's snapshot on the recovering node", func() bool { want, wantBytes = snapOf(rec); return want != "" })
	for i := 1; i <= 2; i++ {
		waitFor(t, "the opening's snapshot on node "+string(rune('0'+i)), func() bool {
			got, b := snapOf(dirs[i])
			return got == want && string(b) == string(wantBytes)
		})
	}
	// A new write replicates to the joined nodes; old and new receipts
	// verify against the new certificate on a joined node.
	status, h, body := call(t, admin, "POST", at(0)+"/app/transactions?api-version=2022-05-13", `{"contents":"after"}`)
	if status != 200 {
		t.Fatalf("append after recovery: %d %v", status, body)
	}
	after := h.Get("x-ms-ccf-transaction-id")
	for i := 1; i <= 2; i++ {
		waitCommittedHTTP(t, admin, at(i), after)
		readEntry(t, admin, at(i), after, "after")
	}
	for _, id := range []string{ids[1], after} {
		if err := receipt.VerifyPEM(waitReceipt(t, admin, at(1), id), mustRead(t, newCert)); err != nil {
			t.Fatalf("receipt of %s on a joined node against the recovered certificate: %v", id, err)
		}
	}
	// A joined node restarted on its directory still reads them.
	procs[1].stop(t)
	procs[1] = startLedgerd(t, w.bin, "--data", dirs[1], "--peer-listen", peers[1], "--election-timeout", "500ms")
	readOld(1)
	// The recovering node killed, the joined nodes commit a write.
	procs[0].cmd.Process.Kill()
	<-procs[0].done
	var last string
	waitFor(t, "a write committed without the recovering node", func() bool {
		for i := 1; i <= 2; i++ {
			if !isPrimaryAt(admin, procs[i].addr) {
				continue
			}
			st, h, _, err := try(admin, "POST", at(i)+"/app/transactions?api-version=2022-05-13", `{"contents":"without the first"}`)
			if err == nil && st == 200 {
				last = h.Get("x-ms-ccf-transaction-id")
				return true
			}
		}
		return false
	})
	for i := 1; i <= 2; i++ {
		waitCommittedHTTP(t, admin, at(i), last)
	}
	procs[2].stop(t)
	if out, err := exec.Command(ctl, "audit", dirs[2]).CombinedOutput(); err != nil {
		t.Fatalf("ledgerctl audit of a joined node's directory: %v\n%s", err, out)
	}
}

// TestJoinedNodesFinishTheRecovery: the recovering node is killed after two
// nodes joined it while it was Recovering, before the members accepted the
// recovery. The joined nodes (two of the three voters) elect a primary; the
// members accept the recovery and submit their shares there: it recovers
// the previous ledger secrets from the ledger it replayed, both joined nodes
// read the entries written before the disaster, and a new write commits on
// both.
func TestJoinedNodesFinishTheRecovery(t *testing.T) {
	r := recoverAndJoin(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	r.procs[0].cmd.Process.Kill()
	<-r.procs[0].done
	p := 0
	waitFor(t, "a primary among the joined nodes", func() bool {
		for i := 1; i <= 2; i++ {
			if isPrimaryAt(r.admin, r.procs[i].addr) {
				p = i
				return true
			}
		}
		return false
	})
	m0 := memberClient(t, r.at(p), filepath.Join(r.w.dirs[0], memberFile), r.newCert)
	pass(t, ctx, m0, client.Action{Name: "transition_service_to_open", Args: map[string]any{
		"previous_service_identity": string(mustRead(t, r.oldCert)),
		"next_service_identity":     string(mustRead(t, r.newCert))}})
	ctl := testbin.Command(t, "", "github.com/ledgerd/ledgerd/cmd/ledgerctl")
	submit := exec.Command(ctl, "gov", "submit-share", "--enc-key", filepath.Join(r.w.dirs[0], memberEncPrivFile))
	submit.Env = append(os.Environ(), "LEDGER_ENDPOINT="+r.at(p), "LEDGER_SERVICE_CERT="+r.newCert, "LEDGER_CERT="+filepath.Join(r.w.dirs[0], memberFile))
	if out, err := submit.CombinedOutput(); err != nil || !strings.Contains(string(out), "1/1 recovery shares successfully submitted") {
		t.Fatalf("ledgerctl gov submit-share on joined node %d: %v\n%s", p, err, out)
	}
	for i := 1; i <= 2; i++ {
		waitFor(t, "the service open on node "+string(rune('0'+i)), func() bool {
			_, _, info := call(t, r.admin, "GET", r.at(i)+"/gov/service/info?api-version=2024-07-01", "")
			return info["status"] == "Open"
		})
		for k, id := range r.ids {
			want := "before-" + string(rune('a'+k))
			waitFor(t, "entry "+id+" on node "+string(rune('0'+i)), func() bool {
				st, _, body := call(t, r.admin, "GET", r.at(i)+"/app/transactions/"+id+"?api-version=2022-05-13", "")
				entry, _ := body["entry"].(map[string]any)
				return st == 200 && body["state"] == "Ready" && entry["contents"] == want
			})
		}
	}
	status, h, body := call(t, r.admin, "POST", r.at(p)+"/app/transactions?api-version=2022-05-13", `{"contents":"after"}`)
	if status != 200 {
		t.Fatalf("append after recovery: %d %v", status, body)
	}
	after := h.Get("x-ms-ccf-transaction-id")
	for i := 1; i <= 2; i++ {
		waitCommittedHTTP(t, r.admin, r.at(i), after)
		readEntry(t, r.admin, r.at(i), after, "after")
	}
	if err := receipt.VerifyPEM(waitReceipt(t, r.admin, r.at(3-p), r.ids[0]), mustRead(t, r.newCert)); err != nil {
		t.Fatalf("receipt of %s against the recovered certificate: %v", r.ids[0], err)
	}
}

// waitFor polls cond (an HTTP check) for up to 30 s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(50 * time.Millisecond) // polling another process, bounded by the deadline
	}
}

func tailOf(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}
