package main

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ledgerd/ledgerd/client"
	"github.com/ledgerd/ledgerd/internal/cose"
	"github.com/ledgerd/ledgerd/internal/identity"
	"github.com/ledgerd/ledgerd/internal/ledger"
	"github.com/ledgerd/ledgerd/internal/node"
	"github.com/ledgerd/ledgerd/internal/tables"
	"github.com/ledgerd/ledgerd/internal/testbin"
)

// TestAuditGovernance governs a real ledgerd over HTTPS (a proposal
// accepted by the member's ballot, a proposal withdrawn), stops it, and
// audits its directory with --governance: the history lists the signed
// requests and the state changes in seqno order. A modified history entry
// fails the audit, and so does an envelope that is validly in the ledger
// but signed with a key that is not the member's.
func TestAuditGovernance(t *testing.T) {
	isolateEnv(t)
	l := startLedger(t, testbin.Command(t, "LEDGERD_BIN", "github.com/ledgerd/ledgerd/cmd/ledgerd"))
	mf := l.memberFlags()
	signer, err := client.LoadMemberSigner(filepath.Join(l.data, "member0.pem"))
	if err != nil {
		t.Fatal(err)
	}
	userFile, _ := newUserCert(t, "newuser")
	args, _ := json.Marshal(map[string]string{"cert": certPEMOfFile(t, userFile), "role": "Reader"})
	var accepted, withdrawn client.Proposal
	ctl(append([]string{"gov", "propose", "--action", "set_user", "--args", string(args), "--vote", "--json"}, mf...)...).decode(t, &accepted)
	ctl(append([]string{"gov", "propose", "--action", "set_member_data", "--args",
		`{"member_id":"` + signer.MemberID() + `","member_data":{"x":1}}`, "--json"}, mf...)...).decode(t, &withdrawn)
	ctl(append([]string{"gov", "withdraw", withdrawn.ProposalID}, mf...)...).ok(t)
	// A second member, whose certificate a proposal records, acks: its
	// requests verify against that certificate.
	secondFile, _ := newUserCert(t, "member1")
	second, err := client.LoadMemberSigner(secondFile)
	if err != nil {
		t.Fatal(err)
	}
	margs, _ := json.Marshal(map[string]string{"cert": certPEMOfFile(t, secondFile)})
	var added client.Proposal
	ctl(append([]string{"gov", "propose", "--action", "set_member", "--args", string(margs), "--vote", "--json"}, mf...)...).decode(t, &added)
	ctl("gov", "ack", "--endpoint", l.endpoint, "--cert", secondFile, "--service-cert", l.servicePEM).ok(t)
	stopLedger(t, l)

	out := ctl("audit", "-q", "--governance", l.data).ok(t)
	_, hist, ok := strings.Cut(out, "governance history (seqno, event):\n")
	if !ok {
		t.Fatalf("no governance history:\n%s", out)
	}
	var got []string
	seqnos := []int{}
	for _, line := range strings.Split(hist, "\n") {
		if !strings.HasPrefix(line, "  ") {
			continue
		}
		f := strings.Fields(line)
		var s int
		json.Unmarshal([]byte(f[0]), &s)
		seqnos = append(seqnos, s)
		got = append(got, strings.Join(f[1:], " "))
	}
	me, a, w := signer.MemberID(), accepted.ProposalID, withdrawn.ProposalID
	created := `created_at \d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ`
	want := []string{
		`^proposal member ` + me + `, ` + created + `, proposal ` + a + `, actions set_user$`,
		`^proposal ` + a + ` is Open$`,
		`^ballot member ` + me + `, ` + created + `, proposal ` + a + `, ballot yes$`,
		`^proposal ` + a + ` is Accepted$`,
		`^proposal member ` + me + `, ` + created + `, proposal ` + w + `, actions set_member_data$`,
		`^proposal ` + w + ` is Open$`,
		`^withdrawal member ` + me + `, ` + created + `, proposal ` + w + `$`,
		`^proposal ` + w + ` is Withdrawn$`,
		`^proposal member ` + me + `, ` + created + `, proposal ` + added.ProposalID + `, actions set_member$`,
		`^proposal ` + added.ProposalID + ` is Open$`,
		`^ballot member ` + me + `, ` + created + `, proposal ` + added.ProposalID + `, ballot yes$`,
		`^proposal ` + added.ProposalID + ` is Accepted$`,
		`^state_digest member ` + second.MemberID() + `, ` + created + `$`,
		`^ack member ` + second.MemberID() + `, ` + created + `$`,
	}
	if len(got) != len(want) {
		t.Fatalf("history:\n%s", hist)
	}
	for i := range want {
		if !regexp.MustCompile(want[i]).MatchString(got[i]) {
			t.Errorf("line %d: %q, want %s", i, got[i], want[i])
		}
		if i > 0 && seqnos[i] < seqnos[i-1] {
			t.Errorf("not in seqno order: %v", seqnos)
		}
	}
	if !strings.Contains(out, "OK: 8 signed governance requests (3 proposal, 2 ballot, 1 withdrawal, 1 state_digest, 1 ack)") {
		t.Errorf("summary:\n%s", out)
	}

	// A modified history value: a byte of an envelope's created_at.
	tampered := filepath.Join(t.TempDir(), "data")
	copyTree(t, l.data, tampered)
	files, _ := filepath.Glob(filepath.Join(tampered, "ledger", "ledger_*"))
	flipped := false
	for _, f := range files {
		b, _ := os.ReadFile(f)
		if i := bytes.Index(b, []byte("ccf.gov.msg.created_at")); i >= 0 {
			b[i+len("ccf.gov.msg.created_at")+2] ^= 1
			os.WriteFile(f, b, 0o600)
			flipped = true
			break
		}
	}
	if !flipped {
		t.Fatal("no history envelope found in the chunk files")
	}
	r := ctl("audit", "-q", "--governance", tampered)
	r.fails(t, 1, "audit failed at seqno")
	if !strings.HasPrefix(r.stdout, "FAIL: seqno ") {
		t.Fatalf("audit of the modified ledger:\n%s", r.stdout)
	}

	// An envelope validly included in the ledger (written by the node
	// itself) whose signature is not the member's: only the governance
	// check finds it.
	forged := filepath.Join(t.TempDir(), "data")
	copyTree(t, l.data, forged)
	other, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	env, err := cose.Sign(other, cose.Headers{KID: me, MsgType: cose.MsgBallot, ProposalID: a, CreatedAt: uint64(time.Now().Unix())},
		[]byte(`{"ballot":"export function vote () { return true; }"}`), nil)
	if err != nil {
		t.Fatal(err)
	}
	submitOffline(t, forged, []ledger.MapWrites{{Name: tables.HistoryMap, Writes: []ledger.KV{{Key: []byte(me), Value: env}}}})
	if out := ctl("audit", "-q", forged).ok(t); !strings.HasPrefix(out, "OK: ") {
		t.Fatalf("the forged ledger's integrity audit:\n%s", out)
	}
	r = ctl("audit", "-q", "--governance", forged)
	r.fails(t, 1, "governance audit failed at seqno")
	if !strings.Contains(r.stdout, "FAIL: seqno ") || !strings.Contains(r.stdout, "does not verify with the member's certificate") ||
		!strings.Contains(r.stdout, "member "+second.MemberID()) {
		t.Fatalf("audit of the forged ledger:\n%s", r.stdout)
	}
}

// stopLedger stops ledgerd with SIGTERM and waits for it.
func stopLedger(t *testing.T, l *testLedger) {
	t.Helper()
	l.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-l.exited:
	case <-time.After(20 * time.Second):
		t.Fatal("ledgerd did not stop on SIGTERM")
	}
}

// submitOffline opens a stopped node's data directory with the node
// package and commits one transaction of writes.
func submitOffline(t *testing.T, dir string, writes []ledger.MapWrites) {
	t.Helper()
	ids, err := identity.LoadOrCreate(dir, identity.Options{})
	if err != nil {
		t.Fatal(err)
	}
	n, err := node.Open(node.Config{Dir: dir, Identities: ids, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	f, err := n.Submit(writes)
	if err != nil {
		t.Fatal(err)
	}
	id, err := f.Wait(ctx)
	if err == nil {
		err = n.WaitCommitted(ctx, id)
	}
	if err != nil {
		t.Fatal(err)
	}
	if err := n.Close(); err != nil {
		t.Fatal(err)
	}
}

// copyTree copies a data directory.
func copyTree(t *testing.T, src, dst string) {
	t.Helper()
	err := filepath.Walk(src, func(p string, info os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		if info.IsDir() {
			return os.MkdirAll(filepath.Join(dst, rel), 0o700)
		}
		if !info.Mode().IsRegular() {
			return nil
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(dst, rel), b, info.Mode())
	})
	if err != nil {
		t.Fatal(err)
	}
}
