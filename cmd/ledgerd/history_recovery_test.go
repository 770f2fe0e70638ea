package main

import (
	"context"
	"encoding/json"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ledgerd/ledgerd/client"
	"github.com/ledgerd/ledgerd/internal/ledger"
	"github.com/ledgerd/ledgerd/internal/node"
	"github.com/ledgerd/ledgerd/internal/testbin"
	"github.com/ledgerd/ledgerd/receipt"
)

// serviceEra is one service of a ledger that goes from disaster to
// disaster: its directory, process, certificate and the writes it took.
type serviceEra struct {
	dir   string
	p     *process
	base  string
	cert  string // its service.pem
	admin *http.Client
	ids   []string // its writes, "<prefix><i>"
	pre   string
}

// TestRecoveredServiceHistory: a service (era 1) takes writes and a rekey
// and is lost;
// --recover starts era 2 over its ledger, its members accept the recovery
// and submit their share. Era 2 takes writes and snapshots; a node joins it
// with --fetch-history: it replays the whole ledger, era 1's signatures
// verified against era 1's certificate as era 2's recovery transaction
// records it, serves era 1's and era 2's entries and receipts that verify
// against era 2's certificate, and ledgerctl audit passes on both
// directories (no recovery.json needed: the ledger names its previous
// service). A ledger that ends with a recovery transaction no signature
// covers is refused by the audit (else any ledger, signed by anyone,
// would audit against any certificate by naming its own signer as the
// previous service). Then a second disaster: era 2 (rekeyed too) is lost,
// the joiner's copy of its ledger is recovered as era 3, the member's share
// of era 2's recovery shares recovers every secret of both previous
// services, and every write of the three eras reads back, on era 3, after
// its restart, and on a node that joins it with the history; their
// receipts verify against era 3's certificate (era 1's through a chain of
// two endorsements), and ledgerctl audit passes on era 3's directories.
func TestRecoveredServiceHistory(t *testing.T) {
	if testing.Short() {
		t.Skip("starts three ledgerd processes")
	}
	bin := testbin.Command(t, "", "github.com/ledgerd/ledgerd/cmd/ledgerd")
	ctl := testbin.Command(t, "LEDGERCTL_BIN", "github.com/ledgerd/ledgerd/cmd/ledgerctl")
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	root := t.TempDir()
	dir1 := filepath.Join(root, "era1")
	member, encKey, adminCred := filepath.Join(dir1, memberFile), filepath.Join(dir1, memberEncPrivFile), filepath.Join(dir1, "admin.pem")
	e1 := &serviceEra{dir: dir1, p: startLedgerd(t, bin, "--data", dir1), cert: filepath.Join(dir1, "service.pem"), pre: "era1-"}
	e1.base = "https://" + e1.p.addr
	e1.admin = adminHTTP(t, e1.cert, adminCred)
	e1.write(t, 3)
	e1.rekey(t, ctx, member)
	e1.write(t, 2)
	e1.waitCommitted(t)
	e1.lose()

	e2 := recoverEra(t, ctx, bin, e1, filepath.Join(root, "era2"), member, encKey, adminCred, "era2-",
		"--peer-listen", freeAddr(t), "--election-timeout", "500ms", "--snapshot-tx-interval", "20")
	e2.write(t, 3)
	e2.rekey(t, ctx, member)
	e2.write(t, 2)
	first, _ := receipt.ParseTxID(e2.ids[0])
	for i := 0; snapshotSeqno(t, e2.dir) <= first.Seqno; i++ {
		if i > 2000 {
			t.Fatalf("no snapshot after %d in %s", first.Seqno, e2.dir)
		}
		e2.write(t, 1)
	}
	e2.waitCommitted(t)

	// A node joins era 2 with the whole history.
	dir3 := filepath.Join(root, "joiner")
	addr, stderr, stop := joinTrustedAs(t, bin, ctl, e2.base, e2.cert, member, dir3, "--fetch-history")
	if !strings.Contains(stderr.String(), "fetched the ledger before the snapshot") {
		t.Fatalf("no history fetched:\n%s", stderr.String())
	}
	joiner := "https://" + addr
	waitCommittedHTTP(t, e2.admin, joiner, e2.ids[len(e2.ids)-1])
	for _, e := range []*serviceEra{e1, e2} {
		for i, id := range e.ids[:3] {
			readEntry(t, e2.admin, joiner, id, e.pre+strconv.Itoa(i))
			if err := receipt.VerifyPEM(waitReceipt(t, e2.admin, joiner, id), mustRead(t, e2.cert)); err != nil {
				t.Fatalf("the joiner's receipt of %s against era 2's certificate: %v", id, err)
			}
		}
	}
	stop()
	e2.p.stop(t)
	for _, dir := range []string{e2.dir, dir3} {
		if out, err := exec.Command(ctl, "audit", dir).CombinedOutput(); err != nil || !strings.Contains(string(out), "every entry was authenticated with the ledger secret of its seqno") {
			t.Fatalf("ledgerctl audit %s: %v\n%s", dir, err, out)
		}
	}
	os.Remove(filepath.Join(dir3, node.RecoveryFile))
	if out, err := exec.Command(ctl, "audit", dir3).CombinedOutput(); err != nil {
		t.Fatalf("ledgerctl audit of the joiner without its recovery.json: %v\n%s", err, out)
	}

	// The ledger up to era 2's recovery transaction, and no further: era
	// 1's signatures verify against the identity it records, but no
	// signature of era 2 vouches for it.
	prevs, err := node.PreviousServices(e2.dir, filepath.Join(e2.dir, "ledger"), false)
	if err != nil || len(prevs) != 1 || prevs[0].At == 0 {
		t.Fatalf("previous services of era 2's ledger: %+v %v", prevs, err)
	}
	forged := filepath.Join(root, "forged")
	copyLedgerPrefix(t, filepath.Join(e2.dir, "ledger"), filepath.Join(forged, "ledger"), prevs[0].At)
	other := writeMemberCred(t, t.TempDir())
	out, err := exec.Command(ctl, "audit", "--service-cert", other, forged).CombinedOutput()
	if err == nil || !strings.Contains(string(out), "covered by no signature") {
		t.Fatalf("audit of a ledger whose recovery transaction no signature covers: %v\n%s", err, out)
	}

	// A second disaster: era 2's nodes are lost; the joiner's files (the
	// whole ledger) are recovered as era 3. The ledger spans two service
	// identities, each segment's signatures verified against its own; the
	// member's share of era 2's recovery shares recovers every secret, era
	// 2's and, through the link era 2's opening wrote, era 1's, rekeys
	// included.
	e3 := recoverEra(t, ctx, bin, &serviceEra{dir: dir3, cert: filepath.Join(dir3, "service.pem")}, filepath.Join(root, "era3"), member, encKey, adminCred, "era3-",
		"--peer-listen", freeAddr(t), "--election-timeout", "500ms", "--snapshot-tx-interval", "20")
	e3.write(t, 3)
	eras := []*serviceEra{e1, e2, e3}
	checkEras := func(base string) {
		t.Helper()
		for n, e := range eras {
			for i, id := range e.ids {
				readEntry(t, e3.admin, base, id, e.pre+strconv.Itoa(i))
			}
			for _, id := range []string{e.ids[0], e.ids[len(e.ids)-1]} {
				r := waitReceipt(t, e3.admin, base, id)
				if err := receipt.VerifyPEM(r, mustRead(t, e3.cert)); err != nil {
					t.Fatalf("receipt of era %d's %s against era 3's certificate: %v\n%s", n+1, id, err, r)
				}
				parsed, err := receipt.Parse(r)
				if err != nil || len(parsed.ServiceEndorsements) != len(eras)-1-n {
					t.Fatalf("receipt of era %d's %s: %d service endorsements, want %d (%v)", n+1, id, len(parsed.ServiceEndorsements), len(eras)-1-n, err)
				}
			}
		}
	}
	checkEras(e3.base)
	// A restart reads every era's entries without any share.
	e3.p.stop(t)
	e3.p = startLedgerd(t, bin, "--data", e3.dir, "--peer-listen", freeAddr(t), "--election-timeout", "500ms", "--snapshot-tx-interval", "20")
	e3.base = "https://" + e3.p.addr
	checkEras(e3.base)
	// A node joins era 3 with the whole history: it replays three
	// services' signatures, each against its own identity.
	first, _ = receipt.ParseTxID(e3.ids[0])
	for i := 0; snapshotSeqno(t, e3.dir) <= first.Seqno; i++ {
		if i > 2000 {
			t.Fatalf("no snapshot after %d in %s", first.Seqno, e3.dir)
		}
		e3.write(t, 1)
	}
	e3.waitCommitted(t)
	dir4 := filepath.Join(root, "joiner3")
	addr, _, stop = joinTrustedAs(t, bin, ctl, e3.base, e3.cert, member, dir4, "--fetch-history")
	waitCommittedHTTP(t, e3.admin, "https://"+addr, e3.ids[len(e3.ids)-1])
	checkEras("https://" + addr)
	stop()
	e3.p.stop(t)
	for _, dir := range []string{e3.dir, dir4} {
		if out, err := exec.Command(ctl, "audit", dir).CombinedOutput(); err != nil || !strings.Contains(string(out), "every entry was authenticated with the ledger secret of its seqno") {
			t.Fatalf("ledgerctl audit %s: %v\n%s", dir, err, out)
		}
	}
}

// rekey has the member trigger a ledger rekey (and new recovery shares).
func (e *serviceEra) rekey(t *testing.T, ctx context.Context, member string) {
	t.Helper()
	pass(t, ctx, memberClient(t, e.base, member, e.cert), client.Action{Name: "trigger_ledger_rekey", Args: json.RawMessage("null")})
}

// write appends n entries to the era's service.
func (e *serviceEra) write(t *testing.T, n int) {
	t.Helper()
	for range n {
		i := len(e.ids)
		status, h, body := call(t, e.admin, "POST", e.base+"/app/transactions?api-version=2022-05-13", `{"contents":"`+e.pre+strconv.Itoa(i)+`"}`)
		if status != 200 {
			t.Fatalf("append to %s: %d %v", e.dir, status, body)
		}
		e.ids = append(e.ids, h.Get("x-ms-ccf-transaction-id"))
	}
}

func (e *serviceEra) waitCommitted(t *testing.T) {
	t.Helper()
	waitCommittedHTTP(t, e.admin, e.base, e.ids[len(e.ids)-1])
}

// lose kills the era's node: every node of the service is lost.
func (e *serviceEra) lose() {
	e.p.cmd.Process.Kill()
	<-e.p.done
}

// recoverEra recovers a lost era's ledger as CCF's operators and members
// do: copy its chunks and certificate, --recover, transition_service_to_open
// with the previous and next identities, the member's share.
func recoverEra(t *testing.T, ctx context.Context, bin string, prev *serviceEra, dir, member, encKey, adminCred, pre string, extra ...string) *serviceEra {
	t.Helper()
	copyDir(t, filepath.Join(prev.dir, "ledger"), filepath.Join(dir, "ledger"))
	os.WriteFile(filepath.Join(dir, "service.pem"), mustRead(t, prev.cert), 0o644)
	e := &serviceEra{dir: dir, p: startLedgerd(t, bin, append([]string{"--data", dir, "--recover"}, extra...)...), cert: filepath.Join(dir, "service.pem"), pre: pre}
	e.base = "https://" + e.p.addr
	e.admin = adminHTTP(t, e.cert, adminCred)
	expectService(t, e.admin, e.base, "Recovering")
	m := memberClient(t, e.base, member, e.cert)
	pass(t, ctx, m, client.Action{Name: "transition_service_to_open", Args: map[string]any{
		"previous_service_identity": string(mustRead(t, prev.cert)),
		"next_service_identity":     string(mustRead(t, e.cert))}})
	expectService(t, e.admin, e.base, "WaitingForRecoveryShares")
	if _, err := m.SubmitRecoveryShare(ctx, decryptShare(t, ctx, m, mustRead(t, encKey))); err != nil {
		t.Fatalf("share: %v", err)
	}
	expectService(t, e.admin, e.base, "Open")
	return e
}

// copyLedgerPrefix writes the entries 1..last of a ledger directory into a
// new one.
func copyLedgerPrefix(t *testing.T, from, to string, last uint64) {
	t.Helper()
	l, err := ledger.Open(to, ledger.Options{})
	if err != nil {
		t.Fatal(err)
	}
	err = ledger.Walk(from, func(s uint64, raw []byte) error {
		if s > last {
			return nil
		}
		return l.Append(append([]byte(nil), raw...))
	}, ledger.WalkOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
}
