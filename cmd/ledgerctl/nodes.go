package main

import (
	"context"
	"fmt"
	"io"
	"strconv"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/ledgerd/ledgerd/client"
)

// ledgerctl nodes and ledgerctl status (without a transaction id): the
// network's nodes, from CCF's node endpoints (docs/acl-api.md §10).

const nodesUsage = `
usage: ledgerctl nodes list [flags]
       ledgerctl nodes trust [flags] NODE_ID
       ledgerctl nodes remove [flags] NODE_ID

list prints the network's nodes (GET /node/network/nodes): id, status, whether it is the primary,
and its client address; with --json, the node's answer as it is. No credentials are needed.

trust and remove govern as a consortium member (--cert: the member's certificate and key): they
propose the constitution's transition_node_to_trusted (a Pending node becomes Trusted; its
certificate valid from now) or remove_node (a Pending node is deleted, another Retired), vote yes,
and print the proposal id and its state.`

func runNodes(args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprintln(stderr, strings.TrimSpace(nodesUsage))
		return usagef("nodes needs a command: list, trust or remove")
	}
	switch args[0] {
	case "help", "-h", "--help":
		fmt.Fprintln(stdout, strings.TrimSpace(nodesUsage))
		return nil
	case "list":
		return runNodesList(args[1:], stdout, stderr)
	case "trust", "remove":
		return runNodesGovern(args[0], args[1:], stdout, stderr)
	}
	fmt.Fprintln(stderr, strings.TrimSpace(nodesUsage))
	return usagef("unknown nodes command %q", args[0])
}

func runNodesList(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("nodes list", stderr)
	conn := addConnFlags(fs, cliDefaultTimeout)
	commandUsage(fs, stderr, nodesUsage)
	if _, err := parseCommand(fs, args, 0, 0, "nodes list takes no arguments"); err != nil {
		return err
	}
	return withClient(conn, false, func(ctx context.Context, c *client.Client) error {
		list, err := c.ListNodes(ctx)
		if err != nil {
			return err
		}
		if conn.json {
			_, err := stdout.Write(append([]byte(strings.TrimSpace(string(list.Raw))), '\n'))
			return err
		}
		tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "NODE ID\tSTATUS\tPRIMARY\tADDRESS")
		for _, n := range list.Nodes {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", printable(n.NodeID), printable(n.Status), yesNo(n.Primary), printable(orDash(n.Address())))
		}
		return tw.Flush()
	})
}

func runNodesGovern(verb string, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("nodes "+verb, stderr)
	conn := addGovConnFlags(fs)
	commandUsage(fs, stderr, nodesUsage)
	pos, err := parseCommand(fs, args, 1, 1, "nodes "+verb+" needs one node id")
	if err != nil {
		return err
	}
	return withMember(conn, func(ctx context.Context, c *client.Client) error {
		var p client.Proposal
		var err error
		if verb == "trust" {
			p, err = c.TrustNode(ctx, pos[0], time.Now())
		} else {
			p, err = c.RemoveNode(ctx, pos[0])
		}
		if err != nil {
			return err
		}
		return printProposal(stdout, conn.json, p, nil)
	})
}

const networkStatusUsage = `
usage: ledgerctl status [flags]                   (the network)
       ledgerctl status [flags] TRANSACTION_ID    (a transaction)

Without a transaction id, prints the network's state: the service status, the view and the primary
(GET /node/network), then each node (GET /node/network/nodes) with its commit point, asked of the
node itself at its client address (GET /node/commit, within --node-timeout), and its lag: how many
seqnos its commit point is behind the primary's (the highest answered, if the primary does not
answer). A node that does not answer is shown as such; that is not a failure of the command. No
credentials are needed.

With a transaction id, prints the state of the transaction (GET /app/transactions/{id}/status):
Committed or Pending. A transaction the ledger does not know, or that was rolled back, is not found
(exit 1).`

// networkOut is ledgerctl status --json without a transaction id.
type networkOut struct {
	ServiceStatus string       `json:"service_status"`
	CurrentView   uint64       `json:"current_view"`
	PrimaryID     string       `json:"primary_id,omitempty"`
	Nodes         []nodeStatus `json:"nodes"`
}

// nodeStatus is one node in networkOut: its commit point and lag when it
// answered, else why not (Error).
type nodeStatus struct {
	NodeID      string `json:"node_id"`
	Status      string `json:"status"`
	Primary     bool   `json:"primary"`
	Address     string `json:"address"`
	Commit      string `json:"commit,omitempty"`
	CommitSeqno uint64 `json:"commit_seqno,omitempty"`
	Lag         *int64 `json:"lag,omitempty"`
	Error       string `json:"error,omitempty"`
}

// runNetworkStatus is ledgerctl status without a transaction id.
func runNetworkStatus(conn *connFlags, nodeTimeout time.Duration, stdout io.Writer) error {
	return withClient(conn, false, func(ctx context.Context, c *client.Client) error {
		info, err := c.GetNetwork(ctx)
		if err != nil {
			return err
		}
		list, err := c.ListNodes(ctx)
		if err != nil {
			return err
		}
		out := networkOut{ServiceStatus: info.ServiceStatus, CurrentView: info.CurrentView, PrimaryID: info.PrimaryID,
			Nodes: make([]nodeStatus, len(list.Nodes))}
		var wg sync.WaitGroup
		for i, n := range list.Nodes {
			ns := &out.Nodes[i]
			*ns = nodeStatus{NodeID: n.NodeID, Status: n.Status, Primary: n.Primary || n.NodeID == info.PrimaryID, Address: n.Address()}
			if ns.Address == "" {
				ns.Error = "no client address known"
				continue
			}
			wg.Go(func() { queryCommit(ctx, c, nodeTimeout, ns) })
		}
		wg.Wait()
		setLags(out.Nodes)
		if conn.json {
			return writeJSON(stdout, out)
		}
		return printNetwork(stdout, out)
	})
}

// queryCommit asks the node at ns.Address for its commit point.
func queryCommit(ctx context.Context, c *client.Client, timeout time.Duration, ns *nodeStatus) {
	at, err := c.AtNode(ns.Address)
	if err == nil {
		qctx, cancel := context.WithTimeout(ctx, timeout)
		defer cancel()
		ns.Commit, err = at.GetCommit(qctx)
	}
	if err == nil {
		ns.CommitSeqno, err = seqnoOf(ns.Commit)
	}
	if err != nil {
		ns.Commit, ns.Error = "", "not answering: "+err.Error()
	}
}

// seqnoOf returns the seqno of a transaction id VIEW.SEQNO.
func seqnoOf(txID string) (uint64, error) {
	_, s, ok := strings.Cut(txID, ".")
	if !ok {
		return 0, fmt.Errorf("malformed transaction id %q", txID)
	}
	return strconv.ParseUint(s, 10, 64)
}

// setLags sets each answering node's lag behind the primary's commit seqno,
// or behind the highest answered if the primary did not answer.
func setLags(nodes []nodeStatus) {
	var ref uint64
	primaryAnswered := false
	for _, n := range nodes {
		if n.Error != "" {
			continue
		}
		if n.Primary {
			ref, primaryAnswered = n.CommitSeqno, true
		} else if !primaryAnswered {
			ref = max(ref, n.CommitSeqno)
		}
	}
	for i := range nodes {
		if nodes[i].Error == "" {
			lag := int64(ref) - int64(nodes[i].CommitSeqno)
			nodes[i].Lag = &lag
		}
	}
}

func printNetwork(w io.Writer, out networkOut) error {
	fmt.Fprintf(w, "service %s, view %d, primary %s\n", printable(out.ServiceStatus), out.CurrentView, printable(orDash(out.PrimaryID)))
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "NODE ID\tSTATUS\tPRIMARY\tADDRESS\tCOMMIT\tLAG")
	for _, n := range out.Nodes {
		commit, lag := n.Commit, "-"
		if n.Error != "" {
			commit = printable(n.Error)
		} else if n.Lag != nil {
			lag = strconv.FormatInt(*n.Lag, 10)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", printable(n.NodeID), printable(n.Status), yesNo(n.Primary),
			printable(orDash(n.Address)), commit, lag)
	}
	return tw.Flush()
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
