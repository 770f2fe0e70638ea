package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"

	"github.com/ledgerd/ledgerd/client"
)

// ledgerctl gov: CCF's governance API (api-version 2024-07-01) as a
// consortium member. Writes are COSE_Sign1 envelopes signed with the
// member's certificate and key, the --cert file (LEDGER_CERT).

type govCommand struct {
	name, synopsis string
	run            func(args []string, stdout, stderr io.Writer) error
}

func govCommands() []govCommand {
	return []govCommand{
		{"propose", "propose actions: FILE.json, or --action NAME --args JSON (--vote: vote yes at once)", runGovPropose},
		{"vote", "vote on a proposal: ID --yes, --no or --ballot FILE.js", runGovVote},
		{"withdraw", "withdraw a proposal of yours: ID", runGovWithdraw},
		{"list", "list the proposals", runGovList},
		{"show", "show a proposal, its actions and votes: ID", runGovShow},
		{"members", "list the consortium members and their status", runGovMembers},
		{"ack", "ack the state digest, to become an Active member", runGovAck},
		{"submit-share", "recovery: fetch this member's encrypted recovery share, decrypt it with --enc-key and submit it", runGovSubmitShare},
		{"constitution", "print the constitution (--diff FILE: compare it with a local file)", runGovConstitution},
	}
}

const govHelp = `usage: ledgerctl gov COMMAND [flags] [ARGS]

Governs the service as a consortium member, through CCF's governance API (api-version 2024-07-01).
Proposals, ballots, withdrawals and acks are signed (COSE_Sign1) with the member certificate and
ECDSA key in --cert (env LEDGER_CERT; ledgerd writes the first member's as DATA/member0.pem); the
endpoint and service certificate are taken as by every client command.`

func govUsage(w io.Writer) {
	fmt.Fprintln(w, govHelp)
	fmt.Fprintln(w, "\nCommands:")
	for _, c := range govCommands() {
		fmt.Fprintf(w, "  %-13s %s\n", c.name, c.synopsis)
	}
	fmt.Fprintln(w, "\nRun 'ledgerctl gov COMMAND -h' for a command's flags.")
}

func runGov(args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		govUsage(stderr)
		return usagef("gov needs a command")
	}
	if args[0] == "help" || args[0] == "-h" || args[0] == "--help" {
		govUsage(stdout)
		return nil
	}
	for _, c := range govCommands() {
		if c.name == args[0] {
			return c.run(args[1:], stdout, stderr)
		}
	}
	govUsage(stderr)
	return usagef("unknown gov command %q", args[0])
}

// addGovConnFlags defines the connection flags of a gov command.
func addGovConnFlags(fs *flag.FlagSet) *connFlags {
	conn := addConnFlags(fs, cliDefaultTimeout)
	fs.Lookup("api-version").Usage = "api-version of the ACL requests; the governance requests are always " + client.GovAPIVersion
	return conn
}

// withMember is withClient for a governance write: it needs --cert, a
// member's certificate and key, to sign.
func withMember(conn *connFlags, fn func(ctx context.Context, c *client.Client) error) error {
	if conn.cert == "" || setOnCommandLine(conn.fs, "token-file") && !setOnCommandLine(conn.fs, "cert") {
		return usagef("governance writes are signed with a member's certificate and key: give --cert FILE or set %s (ledgerd: DATA/member0.pem)", envCert)
	}
	conn.tokenFile = ""
	return withClient(conn, true, fn)
}

const govProposeUsage = `
usage: ledgerctl gov propose [flags] FILE.json        (- reads it from standard input)
       ledgerctl gov propose [flags] --action NAME [--args JSON]

Proposes actions of the constitution (POST /gov/members/proposals:create) and prints the proposal
id and state. FILE.json is a proposal document, {"actions":[{"name":"set_user","args":{...}}]}, sent
as it is; --action makes one of a single action (--args: its arguments, a JSON object, default {}).
With --vote, the proposer votes yes at once (the proposal may then be Accepted and applied).`

// proposeArgs are the parsed arguments of gov propose.
type proposeArgs struct {
	body []byte
	vote bool
}

func parseGovPropose(args []string, stdin io.Reader, stderr io.Writer) (*proposeArgs, *connFlags, error) {
	fs := newFlags("gov propose", stderr)
	conn := addGovConnFlags(fs)
	action := fs.String("action", "", "name of the one action to propose, instead of FILE.json")
	argsJSON := fs.String("args", "", "the action's arguments, a JSON object (with --action; default {})")
	vote := fs.Bool("vote", false, "vote yes at once")
	commandUsage(fs, stderr, govProposeUsage)
	pos, err := parseCommand(fs, args, 0, 1, "propose takes one proposal file, or --action")
	if err != nil {
		return nil, nil, err
	}
	var body []byte
	switch {
	case len(pos) == 1 && *action != "":
		return nil, nil, usagef("give a proposal file or --action, not both")
	case len(pos) == 1:
		if setOnCommandLine(fs, "args") {
			return nil, nil, usagef("--args goes with --action, not with a proposal file")
		}
		if body, err = readArgFile(pos[0], stdin); err != nil {
			return nil, nil, err
		}
		if err := checkProposal(body); err != nil {
			return nil, nil, fmt.Errorf("%s: %w", pos[0], err)
		}
	case *action != "":
		a := *argsJSON
		if a == "" {
			a = "{}"
		}
		var obj map[string]json.RawMessage
		if err := json.Unmarshal([]byte(a), &obj); err != nil || obj == nil {
			return nil, nil, usagef("--args must be a JSON object, such as '{\"cert\":\"...\"}'")
		}
		body, _ = json.Marshal(map[string][]client.Action{"actions": {{Name: *action, Args: json.RawMessage(a)}}})
	default:
		fs.Usage()
		return nil, nil, usagef("propose needs a proposal file, or --action NAME")
	}
	return &proposeArgs{body: body, vote: *vote}, conn, nil
}

// readArgFile reads a file named on the command line; "-" is standard
// input.
func readArgFile(name string, stdin io.Reader) ([]byte, error) {
	if name == "-" {
		b, err := io.ReadAll(io.LimitReader(stdin, maxStdinEntry+1))
		if err != nil {
			return nil, fmt.Errorf("couldn't read standard input: %w", err)
		}
		if len(b) > maxStdinEntry {
			return nil, fmt.Errorf("standard input holds more than %d bytes", maxStdinEntry)
		}
		return b, nil
	}
	return os.ReadFile(name)
}

// checkProposal checks that a proposal document is a JSON object with a
// non-empty list of named actions.
func checkProposal(body []byte) error {
	var p struct {
		Actions *[]struct {
			Name *string `json:"name"`
		} `json:"actions"`
	}
	if err := json.Unmarshal(body, &p); err != nil {
		return fmt.Errorf("not a proposal document (a JSON object {\"actions\":[...]}): %w", err)
	}
	if p.Actions == nil || len(*p.Actions) == 0 {
		return errors.New(`the proposal has no actions: want {"actions":[{"name":...,"args":{...}}]}`)
	}
	for i, a := range *p.Actions {
		if a.Name == nil || *a.Name == "" {
			return fmt.Errorf("action %d has no name", i)
		}
	}
	return nil
}

func runGovPropose(args []string, stdout, stderr io.Writer) error {
	pa, conn, err := parseGovPropose(args, os.Stdin, stderr)
	if err != nil {
		return err
	}
	return withMember(conn, func(ctx context.Context, c *client.Client) error {
		p, err := c.CreateProposalJSON(ctx, pa.body)
		if err != nil {
			return err
		}
		if pa.vote && p.State == client.ProposalOpen {
			voted, err := c.Vote(ctx, p.ProposalID, true)
			if err != nil {
				return fmt.Errorf("proposed %s, but the vote failed: %w", p.ProposalID, err)
			}
			p = voted
		}
		return printProposal(stdout, conn.json, p, nil)
	})
}

const govVoteUsage = `
usage: ledgerctl gov vote [flags] PROPOSAL_ID --yes | --no | --ballot FILE.js

Votes on an Open proposal (POST /gov/members/proposals/{id}/ballots/{memberId}:submit) and prints
its state after the vote. --yes and --no send the ballots that vote for or against it; --ballot
sends a JavaScript ballot of your own, a module exporting vote(proposal, proposerId) that returns
true to vote for it.`

// voteArgs are the parsed arguments of gov vote.
type voteArgs struct {
	proposalID, ballot string
}

func parseGovVote(args []string, stderr io.Writer) (*voteArgs, *connFlags, error) {
	fs := newFlags("gov vote", stderr)
	conn := addGovConnFlags(fs)
	yes := fs.Bool("yes", false, "vote for the proposal")
	no := fs.Bool("no", false, "vote against the proposal")
	ballotFile := fs.String("ballot", "", "JavaScript ballot file (- for standard input)")
	commandUsage(fs, stderr, govVoteUsage)
	pos, err := parseCommand(fs, args, 1, 1, "vote needs one proposal id")
	if err != nil {
		return nil, nil, err
	}
	n := 0
	for _, set := range []bool{*yes, *no, *ballotFile != ""} {
		if set {
			n++
		}
	}
	if n != 1 {
		return nil, nil, usagef("vote needs exactly one of --yes, --no and --ballot FILE.js")
	}
	va := &voteArgs{proposalID: pos[0]}
	switch {
	case *yes:
		va.ballot = client.BallotYes
	case *no:
		va.ballot = client.BallotNo
	default:
		b, err := readArgFile(*ballotFile, os.Stdin)
		if err != nil {
			return nil, nil, err
		}
		if strings.TrimSpace(string(b)) == "" {
			return nil, nil, fmt.Errorf("the ballot %s is empty", *ballotFile)
		}
		va.ballot = string(b)
	}
	return va, conn, nil
}

func runGovVote(args []string, stdout, stderr io.Writer) error {
	va, conn, err := parseGovVote(args, stderr)
	if err != nil {
		return err
	}
	return withMember(conn, func(ctx context.Context, c *client.Client) error {
		p, err := c.SubmitBallot(ctx, va.proposalID, va.ballot)
		if err != nil {
			return err
		}
		return printProposal(stdout, conn.json, p, nil)
	})
}

const govWithdrawUsage = `
usage: ledgerctl gov withdraw [flags] PROPOSAL_ID

Withdraws an Open proposal of yours (POST /gov/members/proposals/{id}:withdraw). A proposal the
service does not know is reported as such, and is not an error (CCF answers 204).`

func runGovWithdraw(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("gov withdraw", stderr)
	conn := addGovConnFlags(fs)
	commandUsage(fs, stderr, govWithdrawUsage)
	pos, err := parseCommand(fs, args, 1, 1, "withdraw needs one proposal id")
	if err != nil {
		return err
	}
	return withMember(conn, func(ctx context.Context, c *client.Client) error {
		p, err := c.WithdrawProposal(ctx, pos[0])
		if err != nil {
			return err
		}
		if p.State == "" {
			if conn.json {
				return writeJSON(stdout, map[string]string{"proposalId": pos[0]})
			}
			_, err := fmt.Fprintf(stdout, "proposal %s: the service has no such proposal; nothing withdrawn\n", pos[0])
			return err
		}
		return printProposal(stdout, conn.json, p, nil)
	})
}

const govListUsage = `
usage: ledgerctl gov list [flags]

Lists the proposals the service keeps (GET /gov/members/proposals): id, state, proposer and
number of ballots; --json prints {"value":[...]} as the service does.`

func runGovList(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("gov list", stderr)
	conn := addGovConnFlags(fs)
	commandUsage(fs, stderr, govListUsage)
	if _, err := parseCommand(fs, args, 0, 0, "list takes no arguments"); err != nil {
		return err
	}
	return withClient(conn, false, func(ctx context.Context, c *client.Client) error {
		ps, err := c.ListProposals(ctx)
		if err != nil {
			return err
		}
		if conn.json {
			if ps == nil {
				ps = []client.Proposal{}
			}
			return writeJSON(stdout, struct {
				Value []client.Proposal `json:"value"`
			}{ps})
		}
		if len(ps) == 0 {
			_, err := fmt.Fprintln(stdout, "no proposals")
			return err
		}
		for _, p := range ps {
			fmt.Fprintf(stdout, "%s %-9s proposer %s, %s\n", p.ProposalID, p.State, shortID(p.ProposerID), plural(p.BallotCount, "ballot"))
		}
		return nil
	})
}

const govShowUsage = `
usage: ledgerctl gov show [flags] PROPOSAL_ID

Shows a proposal (GET /gov/members/proposals/{id}): its state, proposer, ballots, final votes and
failure if any, and its actions (GET .../actions), the document its proposer signed.`

func runGovShow(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("gov show", stderr)
	conn := addGovConnFlags(fs)
	commandUsage(fs, stderr, govShowUsage)
	pos, err := parseCommand(fs, args, 1, 1, "show needs one proposal id")
	if err != nil {
		return err
	}
	return withClient(conn, false, func(ctx context.Context, c *client.Client) error {
		p, err := c.GetProposal(ctx, pos[0])
		if err != nil {
			return err
		}
		actions, err := c.GetProposalActions(ctx, pos[0])
		if err != nil {
			return err
		}
		return printProposal(stdout, conn.json, p, actions)
	})
}

// printProposal prints a proposal's state, and its actions if given.
func printProposal(w io.Writer, asJSON bool, p client.Proposal, actions json.RawMessage) error {
	if asJSON {
		if actions == nil {
			return writeJSON(w, p)
		}
		return writeJSON(w, struct {
			client.Proposal
			Actions json.RawMessage `json:"actions"`
		}{p, actions})
	}
	fmt.Fprintf(w, "proposal %s %s\n", p.ProposalID, p.State)
	fmt.Fprintf(w, "  proposer %s, %s\n", p.ProposerID, plural(p.BallotCount, "ballot"))
	for _, m := range slices.Sorted(mapKeys(p.FinalVotes)) {
		vote := "no"
		if p.FinalVotes[m] {
			vote = "yes"
		}
		fmt.Fprintf(w, "  vote %s %s\n", m, vote)
	}
	for _, m := range slices.Sorted(mapKeys(p.VoteFailures)) {
		fmt.Fprintf(w, "  ballot of %s failed: %s\n", m, terminalSafe(p.VoteFailures[m].Reason))
	}
	if p.Failure != nil {
		fmt.Fprintf(w, "  failure: %s\n", terminalSafe(p.Failure.Reason))
		if p.Failure.Trace != "" {
			fmt.Fprintf(w, "  trace:\n%s\n", terminalSafe(p.Failure.Trace))
		}
	}
	if actions != nil {
		var buf bytes.Buffer
		if err := json.Indent(&buf, actions, "  ", "  "); err != nil {
			buf.Reset()
			buf.Write(actions)
		}
		fmt.Fprintf(w, "  actions:\n  %s\n", terminalSafe(buf.String()))
	}
	return nil
}

func mapKeys[V any](m map[string]V) func(func(string) bool) {
	return func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

func plural(n int, what string) string {
	if n == 1 {
		return "1 " + what
	}
	return fmt.Sprintf("%d %ss", n, what)
}

// shortID abbreviates a 64-hex id for a one-line listing.
func shortID(id string) string {
	if len(id) > 16 {
		return id[:16] + "…"
	}
	return id
}

const govMembersUsage = `
usage: ledgerctl gov members [flags]

Lists the consortium members (GET /gov/service/members): id, status (Accepted until the member acks
the state digest, then Active), certificate subject and expiry; the --cert member is marked.`

func runGovMembers(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("gov members", stderr)
	conn := addGovConnFlags(fs)
	commandUsage(fs, stderr, govMembersUsage)
	if _, err := parseCommand(fs, args, 0, 0, "members takes no arguments"); err != nil {
		return err
	}
	return withClient(conn, false, func(ctx context.Context, c *client.Client) error {
		ms, err := c.ListMembers(ctx)
		if err != nil {
			return err
		}
		if conn.json {
			if ms == nil {
				ms = []client.Member{}
			}
			return writeJSON(stdout, struct {
				Value []client.Member `json:"value"`
			}{ms})
		}
		me := ""
		if s := c.MemberSigner(); s != nil {
			me = s.MemberID()
		}
		for _, m := range ms {
			you := ""
			if m.MemberID == me {
				you = " (you)"
			}
			fmt.Fprintf(stdout, "member %s %s%s\n  %s\n", m.MemberID, m.Status, you, describeCertPEM(m.Certificate))
		}
		return nil
	})
}

const govAckUsage = `
usage: ledgerctl gov ack [flags]

Acks the service's state digest as the --cert member: asks for the current digest
(POST /gov/members/state-digests/{memberId}:update), then acks it (POST ...:ack). A member that
set_member made Accepted becomes Active, and so counts in votes.`

func runGovAck(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("gov ack", stderr)
	conn := addGovConnFlags(fs)
	commandUsage(fs, stderr, govAckUsage)
	if _, err := parseCommand(fs, args, 0, 0, "ack takes no arguments"); err != nil {
		return err
	}
	return withMember(conn, func(ctx context.Context, c *client.Client) error {
		d, err := c.UpdateStateDigest(ctx)
		if err != nil {
			return err
		}
		if err := c.AckStateDigest(ctx, d.StateDigest); err != nil {
			return err
		}
		status := ""
		if m, err := c.GetMember(ctx, c.MemberSigner().MemberID()); err == nil {
			status = m.Status
		}
		if conn.json {
			return writeJSON(stdout, struct {
				client.StateDigest
				Status string `json:"status,omitempty"`
			}{d, status})
		}
		fmt.Fprintf(stdout, "member %s acked state digest %s\n", c.MemberSigner().MemberID(), d.StateDigest)
		if status != "" {
			fmt.Fprintf(stdout, "status %s\n", status)
		}
		return nil
	})
}

const govConstitutionUsage = `
usage: ledgerctl gov constitution [flags] [--diff FILE]

Prints the constitution, the JavaScript that judges and applies proposals
(GET /gov/service/constitution). With --diff, prints the differences between FILE (-) and the
service's constitution (+) instead, as a unified diff, and exits 1 if they differ.`

func runGovConstitution(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("gov constitution", stderr)
	conn := addGovConnFlags(fs)
	diffFile := fs.String("diff", "", "compare the constitution with this local file")
	commandUsage(fs, stderr, govConstitutionUsage)
	if _, err := parseCommand(fs, args, 0, 0, "constitution takes no arguments (but --diff FILE)"); err != nil {
		return err
	}
	var local []byte
	if *diffFile != "" {
		var err error
		if local, err = os.ReadFile(*diffFile); err != nil {
			return err
		}
	}
	return withClient(conn, false, func(ctx context.Context, c *client.Client) error {
		script, err := c.GetServiceConstitution(ctx)
		if err != nil {
			return err
		}
		if *diffFile == "" {
			if conn.json {
				return writeJSON(stdout, map[string]string{"constitution": script})
			}
			_, err := fmt.Fprintln(stdout, terminalSafe(strings.TrimRight(script, "\n")))
			return err
		}
		d, err := lineDiff(string(local), script, *diffFile, "service constitution")
		if err != nil {
			return err
		}
		if d == "" {
			_, err := fmt.Fprintf(stdout, "the service's constitution is identical to %s\n", *diffFile)
			return err
		}
		if _, err := io.WriteString(stdout, terminalSafe(d)); err != nil {
			return err
		}
		return fmt.Errorf("the service's constitution differs from %s", *diffFile)
	})
}

// maxDiffLines bounds the lines of each side of lineDiff (its table is
// quadratic).
const maxDiffLines = 20000

// lineDiff returns a unified diff (3 lines of context) from a to b, "" if
// they are equal. It is a longest-common-subsequence diff of lines.
func lineDiff(a, b, nameA, nameB string) (string, error) {
	if a == b {
		return "", nil
	}
	la, lb := splitLines(a), splitLines(b)
	if len(la) > maxDiffLines || len(lb) > maxDiffLines {
		return "", fmt.Errorf("too large to diff (more than %d lines)", maxDiffLines)
	}
	// Trim the common prefix and suffix, then LCS the middle.
	pre := 0
	for pre < len(la) && pre < len(lb) && la[pre] == lb[pre] {
		pre++
	}
	suf := 0
	for suf < len(la)-pre && suf < len(lb)-pre && la[len(la)-1-suf] == lb[len(lb)-1-suf] {
		suf++
	}
	ma, mb := la[pre:len(la)-suf], lb[pre:len(lb)-suf]
	if int64(len(ma))*int64(len(mb)) > 50_000_000 {
		return "", errors.New("the files differ too much to diff")
	}
	// lcs[i][j] is the LCS length of ma[i:] and mb[j:].
	lcs := make([][]int32, len(ma)+1)
	for i := range lcs {
		lcs[i] = make([]int32, len(mb)+1)
	}
	for i := len(ma) - 1; i >= 0; i-- {
		for j := len(mb) - 1; j >= 0; j-- {
			if ma[i] == mb[j] {
				lcs[i][j] = lcs[i+1][j+1] + 1
			} else {
				lcs[i][j] = max(lcs[i+1][j], lcs[i][j+1])
			}
		}
	}
	type op struct {
		kind byte // ' ', '-', '+'
		text string
	}
	ops := make([]op, 0, len(la)+len(lb))
	for _, l := range la[:pre] {
		ops = append(ops, op{' ', l})
	}
	i, j := 0, 0
	for i < len(ma) || j < len(mb) {
		switch {
		case i < len(ma) && j < len(mb) && ma[i] == mb[j]:
			ops = append(ops, op{' ', ma[i]})
			i, j = i+1, j+1
		case i < len(ma) && (j == len(mb) || lcs[i+1][j] >= lcs[i][j+1]):
			ops = append(ops, op{'-', ma[i]})
			i++
		default:
			ops = append(ops, op{'+', mb[j]})
			j++
		}
	}
	for _, l := range la[len(la)-suf:] {
		ops = append(ops, op{' ', l})
	}
	if !slices.ContainsFunc(ops, func(o op) bool { return o.kind != ' ' }) {
		return "", nil // only line endings differ
	}
	// Hunks: changed ops with up to 3 lines of context around them.
	const context = 3
	var sb strings.Builder
	fmt.Fprintf(&sb, "--- %s\n+++ %s\n", nameA, nameB)
	lineA := make([]int, len(ops)+1) // line numbers before each op
	lineB := make([]int, len(ops)+1)
	for k, o := range ops {
		lineA[k+1], lineB[k+1] = lineA[k], lineB[k]
		if o.kind != '+' {
			lineA[k+1]++
		}
		if o.kind != '-' {
			lineB[k+1]++
		}
	}
	for k := 0; k < len(ops); {
		if ops[k].kind == ' ' {
			k++
			continue
		}
		start := max(k-context, 0)
		end := k // extend over changes separated by at most 2*context unchanged lines
		for end < len(ops) {
			if ops[end].kind != ' ' {
				end++
				continue
			}
			run := end
			for run < len(ops) && ops[run].kind == ' ' {
				run++
			}
			if run == len(ops) || run-end > 2*context {
				end = min(end+context, len(ops))
				break
			}
			end = run
		}
		fmt.Fprintf(&sb, "@@ -%s +%s @@\n", hunkRange(lineA[start], lineA[end]), hunkRange(lineB[start], lineB[end]))
		for _, o := range ops[start:end] {
			sb.WriteByte(o.kind)
			sb.WriteString(o.text)
			sb.WriteByte('\n')
		}
		k = end
	}
	return sb.String(), nil
}

// hunkRange formats lines [from, to) (0-based) as unified diff's
// "start,count".
func hunkRange(from, to int) string {
	n := to - from
	if n == 0 {
		return fmt.Sprintf("%d,0", from)
	}
	return fmt.Sprintf("%d,%d", from+1, n)
}

// splitLines splits text into lines, without their terminators; a final
// line without a newline counts, and a missing final newline is not a
// difference.
func splitLines(s string) []string {
	s = strings.ReplaceAll(s, "\r\n", "\n")
	s = strings.TrimSuffix(s, "\n")
	if s == "" {
		return nil
	}
	return strings.Split(s, "\n")
}

const govSubmitShareUsage = `
usage: ledgerctl gov submit-share [flags] --enc-key FILE

Disaster recovery (ledgerd --recover): fetches the member's encrypted recovery share
(GET /gov/recovery/encrypted-shares/{memberId}), decrypts it locally with the member's recovery
encryption key (--enc-key: RSA private key PEM; ledgerd writes the first member's as
DATA/member0_enc_privk.pem) and submits it, signed as the member (POST
/gov/recovery/members/{memberId}:recover). Prints the service's answer: how many shares of the
recovery threshold are in. The decrypted share never leaves this process but in that request.`

func runGovSubmitShare(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("gov submit-share", stderr)
	conn := addGovConnFlags(fs)
	encKey := fs.String("enc-key", "", "the member's recovery encryption private key `file` (PEM)")
	commandUsage(fs, stderr, govSubmitShareUsage)
	if _, err := parseCommand(fs, args, 0, 0, "submit-share takes no arguments"); err != nil {
		return err
	}
	if *encKey == "" {
		return usagef("submit-share needs the member's encryption key: --enc-key FILE")
	}
	keyPEM, err := os.ReadFile(*encKey)
	if err != nil {
		return err
	}
	return withMember(conn, func(ctx context.Context, c *client.Client) error {
		enc, err := c.GetEncryptedShare(ctx, c.MemberSigner().MemberID())
		if err != nil {
			return err
		}
		share, err := client.DecryptRecoveryShare(keyPEM, enc)
		if err != nil {
			return err
		}
		defer clear(share)
		res, err := c.SubmitRecoveryShare(ctx, share)
		if err != nil {
			return err
		}
		if conn.json {
			return writeJSON(stdout, res)
		}
		fmt.Fprintln(stdout, res.Message)
		return nil
	})
}
