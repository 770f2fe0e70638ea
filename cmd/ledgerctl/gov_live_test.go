package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ledgerd/ledgerd/client"
	"github.com/ledgerd/ledgerd/internal/testbin"
)

// memberFlags returns the connection flags of the first member,
// DATA/member0.pem.
func (l *testLedger) memberFlags() []string {
	return []string{"--endpoint", l.endpoint, "--cert", filepath.Join(l.data, "member0.pem"), "--service-cert", l.servicePEM}
}

// TestGovReadCommands runs gov members and gov constitution (with --diff)
// against a real ledgerd.
func TestGovReadCommands(t *testing.T) {
	isolateEnv(t)
	l := startLedger(t, testbin.Command(t, "LEDGERD_BIN", "github.com/ledgerd/ledgerd/cmd/ledgerd"))
	signer, err := client.LoadMemberSigner(filepath.Join(l.data, "member0.pem"))
	if err != nil {
		t.Fatal(err)
	}
	out := ctl(append([]string{"gov", "members"}, l.memberFlags()...)...).ok(t)
	if !strings.HasPrefix(out, "member "+signer.MemberID()+" ") || !strings.Contains(out, "(you)") || !strings.Contains(out, "subject CN=") {
		t.Fatalf("gov members:\n%s", out)
	}
	var members struct{ Value []client.Member }
	ctl(append([]string{"gov", "members", "--json"}, l.memberFlags()...)...).decode(t, &members)
	if len(members.Value) != 1 || members.Value[0].MemberID != signer.MemberID() {
		t.Fatalf("gov members --json: %+v", members)
	}

	script := ctl(append([]string{"gov", "constitution"}, l.memberFlags()...)...).ok(t)
	if !strings.Contains(script, "export function") {
		t.Fatalf("gov constitution:\n%s", script)
	}
	local := filepath.Join(t.TempDir(), "constitution.js")
	if err := os.WriteFile(local, []byte(script), 0o600); err != nil {
		t.Fatal(err)
	}
	out = ctl(append([]string{"gov", "constitution", "--diff", local}, l.memberFlags()...)...).ok(t)
	if !strings.Contains(out, "identical") {
		t.Fatalf("gov constitution --diff of the same text:\n%s", out)
	}
	if err := os.WriteFile(local, []byte("// a local change\n"+script), 0o600); err != nil {
		t.Fatal(err)
	}
	r := ctl(append([]string{"gov", "constitution", "--diff", local}, l.memberFlags()...)...)
	r.fails(t, 1, "differs from "+local)
	if !strings.Contains(r.stdout, "@@ -1,4 +1,3 @@\n-// a local change\n") {
		t.Fatalf("diff:\n%s", r.stdout)
	}
}
