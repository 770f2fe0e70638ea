// Command ledgerctl is the command-line client and auditor of ledgerd.
//
//	ledgerctl audit [--service-cert FILE] [--secret FILE] DIR
//	ledgerctl verify --service-cert FILE RECEIPT.json
//	ledgerctl append|get|list|status|wait|receipt|collections|tags|users|consortium|
//	          constitution|quotes|identity|import|export [flags] [ARGS]
//	ledgerctl gov propose|vote|withdraw|list|show|members|ack|constitution [flags] [ARGS]
//
// The client commands take the ledger and credentials from flags or from
// the environment: LEDGER_ENDPOINT, LEDGER_CERT (or LEDGER_TOKEN_FILE) and
// LEDGER_SERVICE_CERT (see `ledgerctl help`). The gov commands sign
// governance requests with the member certificate and key of LEDGER_CERT
// (see `ledgerctl gov help`).
//
// Exit codes: 0 success, 1 failure (including any verification failure),
// 2 usage error.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
)

// errUsage marks a usage error (exit code 2).
var errUsage = errors.New("usage error")

type command struct {
	name, synopsis string
	run            func(args []string, stdout, stderr io.Writer) error
}

func commands() []command {
	return []command{
		{"append", "append an entry (--wait: until committed)", runAppend},
		{"get", "print an entry, or the latest of a collection", runGet},
		{"list", "list the entries of a collection, in a range of transactions", runList},
		{"status", "print the network's nodes, commit points and lag; or a transaction's state", runStatus},
		{"wait", "wait until a transaction is committed", runWait},
		{"receipt", "get a transaction's receipt (--verify: check it; INVALID exits 1)", runReceipt},
		{"collections", "list the collections", runCollections},
		{"tags", "list the tags of each collection's entries", runTags},
		{"users", "add, get or remove (rm) a user and its role", runUsers},
		{"consortium", "list the consortium members", runConsortium},
		{"constitution", "print the governance constitution", runConstitution},
		{"gov", "govern as a consortium member: propose, vote, withdraw, list, show, members, ack, constitution", runGov},
		{"nodes", "list the network's nodes; trust or remove one (as a member)", runNodes},
		{"quotes", "list the nodes' enclave quotes", runQuotes},
		{"identity", "fetch the ledger's service certificate from the identity service", runIdentity},
		{"import", "append a file's lines (or JSON lines), resumably, exactly once each", runImport},
		{"export", "write a range of a collection as JSON lines", runExport},
		{"audit", "verify a ledger directory offline (every entry, leaf and signature)", runAudit},
		{"verify", "verify a receipt offline against the service certificate", runVerify},
		{"bench", "load-test a ledger: appends/s, latency, append-to-Committed, vs. a cheap GET", runBench},
		{"help", "show this help", nil},
	}
}

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] == "help" || args[0] == "-h" || args[0] == "--help" {
		usage(stdout)
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	for _, c := range commands() {
		if c.name == args[0] && c.run != nil {
			err := c.run(args[1:], stdout, stderr)
			switch {
			case err == nil:
				return 0
			case errors.Is(err, errUsage), errors.Is(err, flag.ErrHelp):
				if !errors.Is(err, flag.ErrHelp) {
					fmt.Fprintln(stderr, "ledgerctl:", err)
				}
				return 2
			default:
				fmt.Fprintln(stderr, "ledgerctl:", err)
				return 1
			}
		}
	}
	fmt.Fprintf(stderr, "ledgerctl: unknown command %q\n", args[0])
	usage(stderr)
	return 2
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "ledgerctl: client and offline auditor for ledgerd")
	fmt.Fprintln(w, "\nCommands:")
	for _, c := range commands() {
		fmt.Fprintf(w, "  %-13s %s\n", c.name, c.synopsis)
	}
	fmt.Fprintln(w, "\nThe client commands (append to export) print text, or JSON with --json.")
	fmt.Fprintln(w, envHelp)
	fmt.Fprintln(w, "\nRun 'ledgerctl COMMAND -h' for a command's flags.")
	fmt.Fprintln(w, "Exit codes: 0 success, 1 failure (a verification failure is never success), 2 usage error.")
}

func newFlags(name string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("ledgerctl "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	return fs
}

// flagError marks a flag parsing error (an unknown flag, a bad value) as a
// usage error; -h stays flag.ErrHelp.
func flagError(err error) error {
	if errors.Is(err, flag.ErrHelp) {
		return err
	}
	return fmt.Errorf("%w: %w", errUsage, err)
}

func usagef(format string, args ...any) error {
	return fmt.Errorf("%w: %s", errUsage, fmt.Sprintf(format, args...))
}
