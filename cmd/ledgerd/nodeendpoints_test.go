package main

import (
	"bufio"
	"encoding/json"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ledgerd/ledgerd/internal/testbin"
)

// TestNetworkNodeEndpoints: on a three-node network, every node's
// /node/network/nodes lists the three nodes Trusted, each at the client
// address it listens on and the peer address it was given, and every node
// names the same primary there, in /node/network and in /node/consensus
// (three voters at their peer addresses). ledgerctl status shows each node's
// commit point asked of the node itself, and a killed node as not answering.
func TestNetworkNodeEndpoints(t *testing.T) {
	if testing.Short() {
		t.Skip("starts three ledgerd processes")
	}
	w := startNetwork(t)
	all := func(int) bool { return true }
	txid, _ := w.appendOnPrimary(t, "seen by all", all)
	for i := range w.procs {
		w.waitReadable(t, i, txid, "seen by all")
	}

	type node struct {
		NodeID        string `json:"node_id"`
		Status        string `json:"status"`
		Primary       bool   `json:"primary"`
		RPCInterfaces map[string]struct {
			PublishedAddress string `json:"published_address"`
		} `json:"rpc_interfaces"`
		NodeToNode *struct {
			PublishedAddress string `json:"published_address"`
		} `json:"node_to_node_interface"`
	}
	get := func(i int, path string, v any) {
		t.Helper()
		resp, err := w.admin[i].Get("https://" + w.procs[i].addr + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("node %d %s: %d", i, path, resp.StatusCode)
		}
		if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
			t.Fatal(err)
		}
	}
	// Every node knows the leader once it has heard from it; wait for all
	// three to agree (an election may still be settling).
	var primary string
	deadline := time.Now().Add(15 * time.Second)
	for {
		var ids []string
		for i := range w.procs {
			var network struct {
				PrimaryID string `json:"primary_id"`
			}
			get(i, "/node/network", &network)
			ids = append(ids, network.PrimaryID)
		}
		if ids[0] != "" && ids[0] == ids[1] && ids[1] == ids[2] {
			primary = ids[0]
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the nodes name primaries %q", ids)
		}
		time.Sleep(50 * time.Millisecond) // polling external processes, bounded by the deadline
	}
	addrs := map[string]bool{}
	peers := map[string]bool{}
	for i := range w.procs {
		addrs[w.procs[i].addr], peers[w.peers[i]] = true, true
	}
	for i := range w.procs {
		var list struct{ Nodes []node }
		get(i, "/node/network/nodes", &list)
		seenAddrs, seenPeers, primaries := map[string]bool{}, map[string]bool{}, 0
		for _, n := range list.Nodes {
			if n.Status != "Trusted" || n.NodeToNode == nil {
				t.Fatalf("node %d lists %+v", i, n)
			}
			seenAddrs[n.RPCInterfaces["primary_rpc_interface"].PublishedAddress] = true
			seenPeers[n.NodeToNode.PublishedAddress] = true
			if n.Primary {
				primaries++
				if n.NodeID != primary {
					t.Fatalf("node %d marks %s primary, /node/network says %s", i, n.NodeID, primary)
				}
			}
		}
		if len(list.Nodes) != 3 || primaries != 1 || !mapsEqual(seenAddrs, addrs) || !mapsEqual(seenPeers, peers) {
			t.Fatalf("node %d lists %+v (addresses %v, peers %v)", i, list.Nodes, seenAddrs, seenPeers)
		}
		var c struct {
			Details struct {
				Configs []struct {
					Nodes map[string]struct{ Address string }
				}
				PrimaryID string `json:"primary_id"`
			}
		}
		get(i, "/node/consensus", &c)
		if len(c.Details.Configs) != 1 || len(c.Details.Configs[0].Nodes) != 3 || c.Details.PrimaryID != primary {
			t.Fatalf("node %d /node/consensus %+v", i, c)
		}
		for id, n := range c.Details.Configs[0].Nodes {
			if strings.HasPrefix(id, "raft:") || !peers[n.Address] {
				t.Fatalf("node %d /node/consensus voter %s at %q", i, id, n.Address)
			}
		}
	}

	// ledgerctl status, through node 0.
	ctl := testbin.Command(t, "LEDGERCTL_BIN", "github.com/ledgerd/ledgerd/cmd/ledgerctl")
	status := func() string {
		t.Helper()
		out, err := exec.Command(ctl, "status", "--endpoint", "https://"+w.procs[0].addr,
			"--service-cert", filepath.Join(w.dirs[0], "service.pem"), "--node-timeout", "2s").CombinedOutput()
		if err != nil {
			t.Fatalf("ledgerctl status: %v\n%s", err, out)
		}
		return string(out)
	}
	out := status()
	if !strings.Contains(out, "primary "+primary+"\n") || len(regexp.MustCompile(`(?m) +Trusted +(yes|no) +\S+ +\d+\.\d+ +\d+$`).FindAllString(out, -1)) != 3 {
		t.Fatalf("ledgerctl status:\n%s", out)
	}
	// Kill a node that is not node 0: it is shown as not answering.
	victim := 1
	w.procs[victim].cmd.Process.Signal(syscall.SIGKILL)
	<-w.procs[victim].done
	out = status()
	if !regexp.MustCompile(regexp.QuoteMeta(w.procs[victim].addr) + ` +not answering: .* +-\n`).MatchString(out) {
		t.Fatalf("ledgerctl status with node %d killed:\n%s", victim, out)
	}
}

func mapsEqual(a, b map[string]bool) bool {
	if len(a) != len(b) {
		return false
	}
	for k := range a {
		if !b[k] {
			return false
		}
	}
	return true
}

// TestNodesTrustPendingJoiner: a node joining an Open service is listed
// Pending (and not primary); ledgerctl nodes trust, as the member, makes it
// Trusted: it then joins, serves, and reads the service's committed data.
func TestNodesTrustPendingJoiner(t *testing.T) {
	if testing.Short() {
		t.Skip("starts four ledgerd processes")
	}
	w := startNetwork(t)
	txid, _ := w.appendOnPrimary(t, "before the fourth", func(int) bool { return true })
	ctl := testbin.Command(t, "LEDGERCTL_BIN", "github.com/ledgerd/ledgerd/cmd/ledgerctl")
	serviceCert := filepath.Join(w.dirs[0], "service.pem")

	data := filepath.Join(t.TempDir(), "d")
	cmd := exec.Command(w.bin, "--data", data, "--listen", "127.0.0.1:0", "--peer-listen", freeAddr(t),
		"--election-timeout", "500ms", "--join", "https://"+w.procs[0].addr, "--service-cert", serviceCert)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	stderr := &stderrWriter{}
	cmd.Stderr = stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	listening := make(chan string, 1)
	pending := make(chan string, 1)
	go func() {
		defer close(exited)
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			line := sc.Text()
			if a, ok := strings.CutPrefix(line, "listening on https://"); ok {
				listening <- a
			}
			if rest, ok := strings.CutPrefix(line, "node "); ok && strings.Contains(rest, " is Pending") {
				pending <- strings.Fields(rest)[0]
			}
		}
		cmd.Wait()
	}()
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(20 * time.Second):
			cmd.Process.Kill()
			<-exited
		}
	})
	var id string
	select {
	case id = <-pending:
	case <-exited:
		t.Fatalf("the joiner exited:\n%s", stderr.String())
	case <-time.After(30 * time.Second):
		t.Fatalf("the joiner never said it is Pending:\n%s", stderr.String())
	}
	conn := []string{"--endpoint", "https://" + w.procs[0].addr, "--service-cert", serviceCert}
	var list struct {
		Nodes []struct {
			NodeID  string `json:"node_id"`
			Status  string `json:"status"`
			Primary bool   `json:"primary"`
		} `json:"nodes"`
	}
	b, err := exec.Command(ctl, append([]string{"nodes", "list", "--json"}, conn...)...).Output()
	if err != nil || json.Unmarshal(b, &list) != nil {
		t.Fatalf("nodes list: %v %s", err, b)
	}
	found := false
	for _, n := range list.Nodes {
		if n.NodeID == id {
			found = n.Status == "Pending" && !n.Primary
		}
	}
	if len(list.Nodes) != 4 || !found {
		t.Fatalf("nodes list with %s joining: %s", id, b)
	}

	b, err = exec.Command(ctl, append([]string{"nodes", "trust", id, "--cert", filepath.Join(w.dirs[0], "member0.pem")}, conn...)...).CombinedOutput()
	if err != nil || !regexp.MustCompile(`^proposal [0-9a-f]{64} Accepted\n`).Match(b) {
		t.Fatalf("nodes trust %s: %v\n%s", id, err, b)
	}
	var addr string
	select {
	case addr = <-listening:
	case <-exited:
		t.Fatalf("the trusted joiner exited:\n%s", stderr.String())
	case <-time.After(60 * time.Second):
		t.Fatalf("the trusted joiner does not serve:\n%s", stderr.String())
	}
	admin := httpsClientWith(t, serviceCert, filepath.Join(w.dirs[0], "admin.pem"))
	waitCommittedHTTP(t, admin, "https://"+addr, txid)
	readEntry(t, admin, "https://"+addr, txid, "before the fourth")
	b, err = exec.Command(ctl, append([]string{"nodes", "list", "--json"}, conn...)...).Output()
	if err != nil || json.Unmarshal(b, &list) != nil || len(list.Nodes) != 4 {
		t.Fatalf("nodes list: %v %s", err, b)
	}
	for _, n := range list.Nodes {
		if n.Status != "Trusted" {
			t.Fatalf("after trust: %s", b)
		}
	}
}

// stderrWriter collects a process's standard error, safe to read while
// the process writes.
type stderrWriter struct {
	mu sync.Mutex
	b  strings.Builder
}

func (w *stderrWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.Write(p)
}

func (w *stderrWriter) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.String()
}
