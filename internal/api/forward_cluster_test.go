package api_test

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"go.etcd.io/raft/v3/raftpb"

	"github.com/ledgerd/ledgerd/internal/api"
	"github.com/ledgerd/ledgerd/internal/attest"
	"github.com/ledgerd/ledgerd/internal/auth"
	"github.com/ledgerd/ledgerd/internal/consensus"
	"github.com/ledgerd/ledgerd/internal/gov"
	"github.com/ledgerd/ledgerd/internal/identity"
	"github.com/ledgerd/ledgerd/internal/node"
	"github.com/ledgerd/ledgerd/internal/transport"
)

// raftNet carries Raft messages between in-process nodes; a cut node
// sends and receives none.
type raftNet struct {
	mu    sync.Mutex
	nodes map[uint64]*node.Node
	cut   map[uint64]bool
}

type raftNetTransport struct{ net *raftNet }

func (t raftNetTransport) Send(msgs []raftpb.Message) {
	t.net.mu.Lock()
	defer t.net.mu.Unlock()
	for _, m := range msgs {
		if t.net.cut[m.From] || t.net.cut[m.To] {
			if from := t.net.nodes[m.From]; from != nil {
				from.ReportUnreachable(m.To)
			}
			continue
		}
		if n := t.net.nodes[m.To]; n != nil {
			n.Step(m)
		}
	}
}

// cluster3 is a three-node service in one process: Raft over raftNet,
// node 1 the primary (the others' election timeouts are long), each node
// behind its own api.Server whose writes a backup forwards over a real
// node-to-node transport.
type cluster3 struct {
	net  *raftNet
	envs [3]*env
}

func newCluster3(t *testing.T) *cluster3 {
	t.Helper()
	return newCluster3JWT(t, nil)
}

// newCluster3JWT is newCluster3 whose servers verify bearer tokens with jwt.
func newCluster3JWT(t *testing.T, jwt *auth.JWTVerifier) *cluster3 {
	t.Helper()
	base := t.TempDir()
	admin, contributor, reader := newCredential(t, "admin"), newCredential(t, "contributor"), newCredential(t, "reader")
	stranger, member := newCredential(t, "stranger"), newCredential(t, "member")
	w := &cluster3{net: &raftNet{nodes: map[uint64]*node.Node{}, cut: map[uint64]bool{}}}
	var ids [3]*identity.Identities
	for i := range 3 {
		dir := filepath.Join(base, fmt.Sprint(i+1))
		if i > 0 {
			os.MkdirAll(dir, 0o700)
			for _, f := range []string{identity.ServiceCertFile, identity.ServiceKeyFile, identity.LedgerSecretFile} {
				b, err := os.ReadFile(filepath.Join(base, "1", f))
				if err != nil {
					t.Fatal(err)
				}
				os.WriteFile(filepath.Join(dir, f), b, 0o600)
			}
		}
		var err error
		if ids[i], err = identity.LoadOrCreate(dir, identity.Options{DNSNames: []string{"localhost"}, IPs: []net.IP{net.IPv4(127, 0, 0, 1)}}); err != nil {
			t.Fatal(err)
		}
	}
	genesis, err := gov.Genesis{
		Members: [][]byte{member.pem},
		Users: []gov.User{
			{ID: admin.userID(), Role: auth.RoleAdministrator},
			{ID: contributor.userID(), Role: auth.RoleContributor},
			{ID: reader.userID(), Role: auth.RoleReader},
		},
		EncryptionKeys: [][]byte{nil},
		LedgerSecret:   ids[0].LedgerSecret,
	}.Writes()
	if err != nil {
		t.Fatal(err)
	}
	known := map[string]bool{}
	for _, id := range ids {
		known[id.Node.ID] = true
	}
	var trs [3]*transport.Transport
	var peerAddrs [3]string
	for i := range 3 {
		raftID := uint64(i + 1)
		dir := filepath.Join(base, fmt.Sprint(i+1))
		cfg := node.Config{Dir: dir, Identities: ids[i], Logger: testLogger(t), NoBootstrap: i > 0,
			Raft:      consensus.Config{ID: raftID, Peers: []uint64{1, 2, 3}, TickInterval: 5 * time.Millisecond, ElectionTicks: 20, HeartbeatTicks: 2},
			Transport: raftNetTransport{w.net}}
		if i == 0 {
			cfg.Genesis = genesis
		} else {
			cfg.Raft.ElectionTicks = 4000 // never campaigns within a test
		}
		n, err := node.Open(cfg)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { n.Close() })
		w.net.mu.Lock()
		w.net.nodes[raftID] = n
		w.net.mu.Unlock()
		tr, err := transport.New(transport.Config{RaftID: raftID, Cert: ids[i].Node.TLSCertificate(ids[i].Service), ServiceCert: ids[i].Service.Cert,
			Allowed: func(id string) bool { return known[id] }, Deliver: func(raftpb.Message) {}, Logger: testLogger(t)})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { tr.Close() })
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		go tr.Serve(ln)
		trs[i], peerAddrs[i] = tr, ln.Addr().String()
	}
	for i := range 3 {
		for j := range 3 {
			if i != j {
				if err := trs[i].AddPeer(uint64(j+1), ids[j].Node.ID, peerAddrs[j]); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
	for i := range 3 {
		n := w.net.nodes[uint64(i+1)]
		waitFor(t, "genesis to commit everywhere", func() bool { return n.CommittedSeqno() > 0 && gov.ServiceStatus(n.Reader.State()) != "" })
		platform, err := attest.NewVirtual("")
		if err != nil {
			t.Fatal(err)
		}
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		srv, err := api.New(api.Config{Node: n, Identities: ids[i], LedgerID: "test-ledger", Attestation: platform, Logger: testLogger(t),
			Forward: trs[i].Do, JWT: jwt})
		if err != nil {
			t.Fatal(err)
		}
		trs[i].Handle(api.ForwardedPrefix+"/", srv.ForwardedHandler())
		hs := srv.HTTPServer(ln.Addr().String())
		go hs.ServeTLS(srv.Listener(ln), "", "")
		t.Cleanup(func() { hs.Close() })
		e := &env{t: t, dir: filepath.Join(base, fmt.Sprint(i+1)), ids: ids[i], node: n, srv: srv, base: "https://" + ln.Addr().String(),
			platform: platform, memberDER: member.der, members: []credential{member}}
		e.admin, e.contributor, e.reader = e.client(&admin), e.client(&contributor), e.client(&reader)
		e.stranger, e.member, e.anonymous = e.client(&stranger), e.client(&member), e.client(nil)
		w.envs[i] = e
	}
	return w
}

// TestForwardingInProcess: node 3, a backup cut off from Raft (it never
// receives the primary's new transactions, but still reaches it over the
// node-to-node transport), takes a Contributor's append by forwarding it:
// the answer is the primary's, with its transaction id. On the same
// connection the client then reads its own write (the session follows the
// primary), while a fresh connection to the backup is served by the
// backup, which has not received it: its status is Pending (never 404),
// the entry Loading. The backup's own checks still apply before anything
// is forwarded (a Reader's append is refused there). Once healed, the
// backup serves the entry itself.
func TestForwardingInProcess(t *testing.T) {
	w := newCluster3(t)
	primary, backup := w.envs[0], w.envs[2]
	waitFor(t, "node 1 to lead", primary.node.IsPrimary)
	waitFor(t, "node 3 to know the primary", func() bool { return backup.node.Reader.RaftInfo().Leader == 1 })
	w.net.mu.Lock()
	w.net.cut[3] = true
	w.net.mu.Unlock()

	backup.reader.post(q("/app/transactions", v2022), map[string]string{"contents": "x"}).expect(403, "NotAllowed")
	r := backup.contributor.post(q("/app/transactions", v2022), map[string]string{"contents": "via the backup"}).expect(200, "")
	id := r.txid()
	primary.commit(id)
	if backup.node.LastSeqno() >= id.Seqno {
		t.Fatalf("the cut-off backup holds %s", id)
	}
	// Same connection: answered by the primary.
	var got struct {
		Entry struct{ Contents string } `json:"entry"`
		State string                    `json:"state"`
	}
	backup.contributor.get(q("/app/transactions/"+id.String(), v2022)).expect(200, "").decode(&got)
	if got.State != "Ready" || got.Entry.Contents != "via the backup" {
		t.Fatalf("read back on the same connection: %+v", got)
	}
	var st struct{ State string }
	backup.contributor.get(q("/app/transactions/"+id.String()+"/status", v2022)).expect(200, "").decode(&st)
	if st.State != "Committed" {
		t.Fatalf("status on the same connection: %q", st.State)
	}
	// Another connection (the reader's): served by the backup.
	backup.reader.get(q("/app/transactions/"+id.String()+"/status", v2022)).expect(200, "").decode(&st)
	if st.State != "Pending" {
		t.Fatalf("the backup's status of an id it has not received: %q, want Pending", st.State)
	}
	got.State = ""
	backup.reader.get(q("/app/transactions/"+id.String(), v2022)).expect(200, "").decode(&got)
	if got.State != "Loading" {
		t.Fatalf("the backup's entry of an id it has not received: %+v", got)
	}

	// Governance through the cut-off backup: the member's proposal is
	// forwarded (the primary verifies its signature), and the same
	// connection reads it back; another connection to the backup does not
	// find it.
	p := backup.proposeOK(0, setUserProposal(newCredential(t, "new user"), "Reader"))
	if got := backup.proposal(p.ProposalID); got.ProposalID != p.ProposalID || got.ProposalState != "Open" {
		t.Fatalf("the proposal read back on the same connection: %+v", got)
	}
	backup.client(nil).get("/gov/members/proposals/"+p.ProposalID+govV).expect(404, "")

	w.net.mu.Lock()
	w.net.cut[3] = false
	w.net.mu.Unlock()
	backup.commit(id)
	backup.reader.get(q("/app/transactions/"+id.String(), v2022)).expect(200, "").decode(&got)
	if got.State != "Ready" || got.Entry.Contents != "via the backup" {
		t.Fatalf("the healed backup's entry: %+v", got)
	}
}
