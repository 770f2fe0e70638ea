package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/ledgerd/ledgerd/client"
)

func TestGovProposeFlags(t *testing.T) {
	isolateEnv(t)
	dir := t.TempDir()
	file := filepath.Join(dir, "p.json")
	doc := `{"actions":[{"name":"set_constitution","args":{"constitution":"x"}}]}`
	if err := os.WriteFile(file, []byte(doc), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		args  []string
		stdin string
		body  string // "" : an error
		usage bool
		vote  bool
	}{
		{args: []string{"--action", "set_user", "--args", `{"cert":"PEM"}`}, body: `{"actions":[{"name":"set_user","args":{"cert":"PEM"}}]}`},
		{args: []string{"--action", "transition_service_to_open", "--vote"}, body: `{"actions":[{"name":"transition_service_to_open","args":{}}]}`, vote: true},
		{args: []string{file}, body: doc},
		{args: []string{"--vote", file}, body: doc, vote: true},
		{args: []string{"-"}, stdin: doc, body: doc},
		{args: []string{}, usage: true},
		{args: []string{file, "--action", "x"}, usage: true},
		{args: []string{file, "--args", "{}"}, usage: true},
		{args: []string{"--action", "x", "--args", "[1]"}, usage: true},
		{args: []string{"--action", "x", "--args", "{"}, usage: true},
		{args: []string{"a.json", "b.json"}, usage: true},
		{args: []string{"-"}, stdin: `{"actions":[]}`},
		{args: []string{"-"}, stdin: `{"actions":[{"args":{}}]}`},
		{args: []string{"-"}, stdin: `not json`},
		{args: []string{filepath.Join(dir, "missing.json")}},
	} {
		pa, _, err := parseGovPropose(c.args, strings.NewReader(c.stdin), io.Discard)
		switch {
		case c.body != "":
			if err != nil || string(pa.body) != c.body || pa.vote != c.vote {
				t.Errorf("propose %q: %v, %+v", c.args, err, pa)
			}
		case err == nil:
			t.Errorf("propose %q: no error", c.args)
		case errors.Is(err, errUsage) != c.usage:
			t.Errorf("propose %q: %v, usage error %v", c.args, err, c.usage)
		}
	}
}

func TestGovVoteFlags(t *testing.T) {
	isolateEnv(t)
	ballot := filepath.Join(t.TempDir(), "b.js")
	js := "export function vote (proposal, proposerId) { return proposerId !== ''; }"
	if err := os.WriteFile(ballot, []byte(js), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		args   []string
		ballot string // "": a usage error
	}{
		{[]string{"p1", "--yes"}, client.BallotYes},
		{[]string{"--no", "p1"}, client.BallotNo},
		{[]string{"p1", "--ballot", ballot}, js},
		{[]string{"p1"}, ""},
		{[]string{"p1", "--yes", "--no"}, ""},
		{[]string{"p1", "--yes", "--ballot", ballot}, ""},
		{[]string{"--yes"}, ""},
		{[]string{"p1", "p2", "--yes"}, ""},
	} {
		va, _, err := parseGovVote(c.args, io.Discard)
		if c.ballot == "" {
			if !errors.Is(err, errUsage) {
				t.Errorf("vote %q: %v, want a usage error", c.args, err)
			}
			continue
		}
		if err != nil || va.proposalID != "p1" || va.ballot != c.ballot {
			t.Errorf("vote %q: %v, %+v", c.args, err, va)
		}
	}
}

// TestGovUsage: the gov commands' usage errors exit 2 with a message
// saying what is missing, before any connection.
func TestGovUsage(t *testing.T) {
	isolateEnv(t)
	var out, errOut bytes.Buffer
	if code := run([]string{"gov", "help"}, &out, &errOut); code != 0 {
		t.Fatalf("gov help: exit %d", code)
	}
	for _, c := range govCommands() {
		if !strings.Contains(out.String(), "  "+c.name+" ") {
			t.Errorf("gov help does not list %s:\n%s", c.name, out.String())
		}
	}
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"gov"}, "gov needs a command"},
		{[]string{"gov", "nope"}, `unknown gov command "nope"`},
		{[]string{"gov", "withdraw"}, "withdraw needs one proposal id"},
		{[]string{"gov", "show", "a", "b"}, "show needs one proposal id"},
		{[]string{"gov", "list", "x"}, "list takes no arguments"},
		{[]string{"gov", "withdraw", "p1", "--endpoint", "https://localhost:1", "--service-cert", "s.pem"}, "signed with a member's certificate and key: give --cert"},
		{[]string{"gov", "ack", "--endpoint", "https://localhost:1", "--service-cert", "s.pem", "--token-file", "t"}, "give --cert"},
		{[]string{"gov", "list"}, "no ledger: give --endpoint"},
	} {
		out.Reset()
		errOut.Reset()
		if code := run(c.args, &out, &errOut); code != 2 || !strings.Contains(errOut.String(), c.want) {
			t.Errorf("%q: exit %d, stderr %q, want 2 and %q", c.args, code, errOut.String(), c.want)
		}
	}
	// ledgerctl's own help lists gov.
	out.Reset()
	run([]string{"help"}, &out, &errOut)
	if !strings.Contains(out.String(), "  gov ") {
		t.Errorf("ledgerctl help does not list gov:\n%s", out.String())
	}
}

func TestLineDiff(t *testing.T) {
	same, err := lineDiff("a\nb\n", "a\nb", "f", "s")
	if err != nil || same != "" {
		t.Fatalf("equal texts (but a final newline): %q, %v", same, err)
	}
	a := "1\n2\n3\n4\n5\n6\n7\n8\n9\n10\n"
	b := "1\n2\n3\n4\nfive\n6\n7\n8\n9\n10\n11\n"
	d, err := lineDiff(a, b, "local.js", "service constitution")
	if err != nil {
		t.Fatal(err)
	}
	want := "--- local.js\n+++ service constitution\n" +
		"@@ -2,9 +2,10 @@\n 2\n 3\n 4\n-5\n+five\n 6\n 7\n 8\n 9\n 10\n+11\n"
	if d != want {
		t.Fatalf("diff\n%s\nwant\n%s", d, want)
	}
	// Far-apart changes make two hunks.
	var la, lb []string
	for i := 1; i <= 20; i++ {
		la = append(la, strconv.Itoa(i))
	}
	lb = append([]string{"one"}, la[1:19]...)
	lb = append(lb, "twenty")
	d, _ = lineDiff(strings.Join(la, "\n"), strings.Join(lb, "\n"), "a", "b")
	if strings.Count(d, "@@ -") != 2 || !strings.Contains(d, "@@ -1,4 +1,4 @@\n-1\n+one\n 2\n 3\n 4\n") || !strings.Contains(d, "@@ -17,4 +17,4 @@\n 17\n 18\n 19\n-20\n+twenty\n") {
		t.Fatalf("two hunks:\n%s", d)
	}
	d, _ = lineDiff("", "a\n", "a", "b")
	if d != "--- a\n+++ b\n@@ -0,0 +1,1 @@\n+a\n" {
		t.Fatalf("from empty:\n%s", d)
	}
}

// TestProposalText checks the text and JSON shapes of a proposal.
func TestProposalText(t *testing.T) {
	p := client.Proposal{ProposalID: "p1", ProposerID: "m1", State: client.ProposalAccepted, BallotCount: 1,
		FinalVotes: map[string]bool{"m1": true, "m2": false}}
	var out bytes.Buffer
	if err := printProposal(&out, false, p, json.RawMessage(`{"actions":[]}`)); err != nil {
		t.Fatal(err)
	}
	want := "proposal p1 Accepted\n  proposer m1, 1 ballot\n  vote m1 yes\n  vote m2 no\n  actions:\n  {\n    \"actions\": []\n  }\n"
	if out.String() != want {
		t.Fatalf("text\n%q\nwant\n%q", out.String(), want)
	}
	out.Reset()
	if err := printProposal(&out, true, p, json.RawMessage(`{"actions":[]}`)); err != nil {
		t.Fatal(err)
	}
	var back map[string]any
	if err := json.Unmarshal(out.Bytes(), &back); err != nil || back["proposalState"] != "Accepted" || back["actions"] == nil || back["proposalId"] != "p1" {
		t.Fatalf("json %s: %v", out.String(), err)
	}
}
