package main

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/ledgerd/ledgerd/internal/durable"

	"github.com/ledgerd/ledgerd/client"
	"github.com/ledgerd/ledgerd/receipt"
)

// The client commands: one per operation of the ACL API (the Python SDK's
// methods), built on package client. Each prints text by default and one
// JSON document (or JSON lines) with --json; errors go to standard error.

// maxStdinEntry bounds an entry read from standard input (append -): the
// ledger's request bodies are at most 1 MiB.
const maxStdinEntry = 1 << 20

// withClient connects as conn says and runs fn with the command's context.
func withClient(conn *connFlags, needCred bool, fn func(ctx context.Context, c *client.Client) error) error {
	c, err := conn.newClient(needCred)
	if err != nil {
		return err
	}
	defer c.Close()
	ctx, cancel := commandContext(conn.timeout)
	defer cancel()
	err = fn(ctx, c)
	if cause := context.Cause(ctx); err != nil && cause != nil && !errors.Is(err, cause) {
		err = fmt.Errorf("%w: %w", err, cause)
	}
	return explain(err)
}

// parseCommand parses a command's arguments and checks their number is in
// [minArgs, maxArgs].
func parseCommand(fs *flag.FlagSet, args []string, minArgs, maxArgs int, what string) ([]string, error) {
	pos, err := parseArgs(fs, args)
	if err != nil {
		return nil, err
	}
	if len(pos) < minArgs || len(pos) > maxArgs {
		fs.Usage()
		return nil, usagef("%s", what)
	}
	return pos, nil
}

const appendUsage = `
usage: ledgerctl append [flags] CONTENTS
       ledgerctl append [flags] -        (the contents from standard input, without one trailing newline)

Appends an entry to the ledger (POST /app/transactions) and prints its transaction id. Needs the
Contributor or Administrator role. With --wait, returns once the entry is committed. With
--tags a,b, the entry carries those tags (api-version 2024-12-09-preview; the ledger refuses more
than 10, a tag over 64 bytes, or a 257th distinct tag in the collection).`

func runAppend(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("append", stderr)
	conn := addConnFlags(fs, cliDefaultTimeout)
	coll := addCollectionFlag(fs)
	wait := fs.Bool("wait", false, "wait until the entry is committed")
	tags := fs.String("tags", "", "comma-separated tags to store with the entry")
	commandUsage(fs, stderr, appendUsage)
	pos, err := parseCommand(fs, args, 1, 1, "append needs the contents, or - to read them from standard input")
	if err != nil {
		return err
	}
	contents := pos[0]
	if contents == "-" {
		b, err := io.ReadAll(io.LimitReader(os.Stdin, maxStdinEntry+1))
		if err != nil {
			return fmt.Errorf("couldn't read standard input: %w", err)
		}
		if len(b) > maxStdinEntry {
			return fmt.Errorf("standard input holds more than %d bytes", maxStdinEntry)
		}
		contents = strings.TrimSuffix(strings.TrimSuffix(string(b), "\n"), "\r")
	}
	return withClient(conn, true, func(ctx context.Context, c *client.Client) error {
		opts := []client.AppendOption{client.InCollection(*coll)}
		if *tags != "" {
			opts = append(opts, client.WithTags(strings.Split(*tags, ",")...))
		}
		if *wait {
			opts = append(opts, client.WaitForCommit())
		}
		res, err := c.AppendToLedger(ctx, contents, opts...)
		if err != nil {
			if res.TransactionID != "" {
				return fmt.Errorf("appended as transaction %s, but %w", res.TransactionID, err)
			}
			return err
		}
		out := txOut{TransactionID: res.TransactionID, CollectionID: res.CollectionID, State: client.StatePending}
		if *wait {
			out.State = client.StateCommitted
		}
		if conn.json {
			return writeJSON(stdout, out)
		}
		_, err = fmt.Fprintf(stdout, "%s %s (collection %s)\n", out.TransactionID, out.State, out.CollectionID)
		return err
	})
}

const getUsage = `
usage: ledgerctl get [flags] [TRANSACTION_ID]

Prints the entry a transaction wrote (GET /app/transactions/{id}), waiting while it is not yet
committed; without a transaction id, the latest committed entry of the collection
(GET /app/transactions/current). The entry is read from --collection (default: the default
collection, as the service reads it): an entry of another collection is not found.
Contents holding control characters (escape sequences a terminal would obey) or bidirectional
formatting characters are printed quoted, as a Go string literal; --raw prints them as stored.`

func runGet(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("get", stderr)
	conn := addConnFlags(fs, cliDefaultTimeout)
	coll := addCollectionFlag(fs)
	raw := fs.Bool("raw", false, "print the contents exactly as stored, terminal control characters included")
	commandUsage(fs, stderr, getUsage)
	pos, err := parseCommand(fs, args, 0, 1, "get takes at most one transaction id")
	if err != nil {
		return err
	}
	txID := ""
	if len(pos) == 1 {
		txID = pos[0]
	}
	return withClient(conn, true, func(ctx context.Context, c *client.Client) error {
		e, err := c.GetLedgerEntry(ctx, txID, *coll)
		if err != nil {
			return err
		}
		if conn.json {
			return writeJSON(stdout, entryOutOf(e))
		}
		contents, collection := e.Contents, e.CollectionID
		if !*raw {
			contents, collection = terminalSafe(contents), printable(collection)
		}
		_, err = fmt.Fprintf(stdout, "transaction %s, collection %s:\n%s\n", e.TransactionID, collection, contents)
		return err
	})
}

const listUsage = `
usage: ledgerctl list [flags]

Lists the committed entries of a collection (GET /app/transactions, following every page) from
--from to --to, both inclusive; by default the whole collection. Text output is one line per
entry, "TRANSACTION_ID CONTENTS" (contents quoted if not one line of printable text); --json
prints one JSON object per line: {"transactionId","collectionId","contents"}. With --tag a (or
--tag a,b: entries carrying all of them), only the entries with the tags are listed
(api-version 2024-12-09-preview), and --json adds their "tags".`

func runList(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("list", stderr)
	conn := addConnFlags(fs, 0)
	coll := addCollectionFlag(fs)
	from := fs.String("from", "", "first transaction id of the range (default: the ledger's start)")
	to := fs.String("to", "", "last transaction id of the range (default: the latest committed)")
	limit := fs.Int("limit", 0, "print at most this many entries (0: all)")
	tag := fs.String("tag", "", "list only the entries carrying this tag (comma-separated: all of these tags)")
	commandUsage(fs, stderr, listUsage)
	if _, err := parseCommand(fs, args, 0, 0, "list takes no arguments: use --from and --to"); err != nil {
		return err
	}
	if *limit < 0 {
		return usagef("--limit must not be negative")
	}
	return withClient(conn, true, func(ctx context.Context, c *client.Client) error {
		n := 0
		entries := func(yield func(client.TaggedEntry, error) bool) {
			for e, err := range c.GetLedgerEntries(ctx, *from, *to, *coll) {
				if !yield(client.TaggedEntry{Entry: e}, err) {
					return
				}
			}
		}
		if *tag != "" {
			entries = c.ListLedgerEntriesByTags(ctx, *from, *to, *coll, strings.Split(*tag, ","))
		}
		for e, err := range entries {
			if err != nil {
				return err
			}
			switch {
			case conn.json && *tag != "":
				err = writeJSON(stdout, taggedOut{entryOutOf(e.Entry), e.Tags})
			case conn.json:
				err = writeJSON(stdout, entryOutOf(e.Entry))
			default:
				_, err = fmt.Fprintf(stdout, "%s %s\n", e.TransactionID, printable(e.Contents))
			}
			if err != nil {
				return err
			}
			if n++; n == *limit {
				break
			}
		}
		return nil
	})
}

func runStatus(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("status", stderr)
	conn := addConnFlags(fs, cliDefaultTimeout)
	nodeTimeout := fs.Duration("node-timeout", 3*time.Second, "without a transaction id: how long each node has to answer")
	commandUsage(fs, stderr, networkStatusUsage)
	pos, err := parseCommand(fs, args, 0, 1, "status takes one transaction id, or none for the network")
	if err != nil {
		return err
	}
	if len(pos) == 0 {
		return runNetworkStatus(conn, *nodeTimeout, stdout)
	}
	return withClient(conn, true, func(ctx context.Context, c *client.Client) error {
		st, err := c.GetTransactionStatus(ctx, pos[0])
		if err != nil {
			return err
		}
		return printTxState(stdout, conn.json, txOut{TransactionID: st.TransactionID, State: st.State})
	})
}

func printTxState(w io.Writer, asJSON bool, out txOut) error {
	if asJSON {
		return writeJSON(w, out)
	}
	_, err := fmt.Fprintf(w, "%s %s\n", out.TransactionID, out.State)
	return err
}

const waitUsage = `
usage: ledgerctl wait [flags] TRANSACTION_ID

Waits until a transaction is committed (the Python SDK's wait_until_durable), polling its status
every --interval, for at most --timeout. Exit 0 once committed; 1 if it never will be (unknown or
rolled back) or the time runs out.`

func runWait(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("wait", stderr)
	conn := addConnFlags(fs, cliDefaultTimeout)
	interval := fs.Duration("interval", cliPollInterval, "time between status queries")
	commandUsage(fs, stderr, waitUsage)
	pos, err := parseCommand(fs, args, 1, 1, "wait needs one transaction id")
	if err != nil {
		return err
	}
	if *interval <= 0 {
		return usagef("--interval must be positive")
	}
	return withClient(conn, true, func(ctx context.Context, c *client.Client) error {
		if err := c.WaitUntilDurable(ctx, pos[0], *interval, -1); err != nil {
			return err
		}
		return printTxState(stdout, conn.json, txOut{TransactionID: pos[0], State: client.StateCommitted})
	})
}

const receiptUsage = `
usage: ledgerctl receipt [flags] TRANSACTION_ID
       ledgerctl receipt --verify --file RECEIPT.json [flags] [TRANSACTION_ID]

Gets the receipt of a committed transaction (GET /app/transactions/{id}/receipt), or reads one
from a file (--file, - for standard input), and prints a summary; --json prints the receipt as
the ledger returned it, which 'ledgerctl verify' and 'receipt --file' read.

With --verify, the receipt is checked against the pinned service certificate (--service-cert):
leaf, Merkle proof, node signature, the service's endorsement of the node, and that it is the
receipt of TRANSACTION_ID. A receipt that does not verify prints INVALID and exits 1.

With --claims, the receipt is asked for with its application claims (api-version
2023-01-18-preview), and --verify also checks them against the leaf's claims digest (the Azure
SDK's verify_receipt with application_claims): the entry's collection and contents are then proven.
A receipt without claims, or whose claims do not match, is INVALID.`

func runReceipt(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("receipt", stderr)
	conn := addConnFlags(fs, cliDefaultTimeout)
	verify := fs.Bool("verify", false, "verify the receipt; exit 1 and print INVALID if it does not verify")
	wait := fs.Bool("wait", false, "wait for the transaction to commit instead of failing (406 Uncommitted)")
	file := fs.String("file", "", "read the receipt from this file (- for standard input) instead of the ledger")
	out := fs.String("out", "", "also save the receipt, as the ledger returned it, to this file")
	claims := fs.Bool("claims", false, "get the receipt with its application claims; with --verify, verify them too")
	commandUsage(fs, stderr, receiptUsage)
	pos, err := parseCommand(fs, args, 0, 1, "receipt needs one transaction id (or --file)")
	if err != nil {
		return err
	}
	txID := ""
	if len(pos) == 1 {
		txID = pos[0]
	}
	if *file == "" && txID == "" {
		fs.Usage()
		return usagef("receipt needs a transaction id, or --file")
	}
	if *file != "" {
		if *wait {
			return usagef("--wait is for receipts from the ledger, not --file")
		}
		return receiptFromFile(conn, *file, txID, *verify, *claims, *out, stdout)
	}
	return withClient(conn, true, func(ctx context.Context, c *client.Client) error {
		var opts []client.ReadOption
		if *wait {
			opts = append(opts, client.WaitForCommit())
		}
		get := c.GetTransactionReceipt
		if *claims {
			get = c.GetTransactionReceiptWithClaims
		}
		r, err := get(ctx, txID, opts...)
		if err != nil {
			return err
		}
		return reportReceipt(r, c.ServiceCertificate(), *verify, *claims, *out, conn.json, stdout)
	})
}

// receiptFromFile serves receipt --file: offline, against --service-cert
// (or the ledger's pinned certificate when only --endpoint is given with
// --trust-on-first-use).
func receiptFromFile(conn *connFlags, path, txID string, verify, claims bool, out string, stdout io.Writer) error {
	var cert *x509.Certificate
	if verify {
		if conn.serviceCert == "" {
			return usagef("--verify needs the service certificate: --service-cert FILE or %s", envServiceCert)
		}
		pemBytes, err := os.ReadFile(conn.serviceCert)
		if err != nil {
			return fmt.Errorf("couldn't read the service certificate: %w", err)
		}
		if cert, err = receipt.ParseCertificatePEM(pemBytes); err != nil {
			return fmt.Errorf("service certificate %s: %w", conn.serviceCert, err)
		}
	}
	data, err := readInput(path)
	if err != nil {
		return err
	}
	r, err := parseReceiptFile(data, txID)
	if err != nil {
		if verify {
			return fmt.Errorf("INVALID: %w", err)
		}
		return err
	}
	return reportReceipt(r, cert, verify, claims, out, conn.json, stdout)
}

// parseReceiptFile parses a stored receipt (a whole response body or the
// receipt object) and names its transaction: txID if given, else the one
// the body or the commit evidence states.
func parseReceiptFile(data []byte, txID string) (*client.Receipt, error) {
	var claims json.RawMessage
	r, err := receipt.Parse(data)
	if err != nil {
		return nil, err
	}
	if txID == "" {
		var body struct {
			TransactionID string `json:"transactionId"`
		}
		if json.Unmarshal(data, &body) == nil {
			txID = body.TransactionID
		}
	}
	if txID == "" && r.LeafComponents != nil {
		view, seqno, err := r.TransactionID()
		if err != nil {
			return nil, err
		}
		txID = fmt.Sprintf("%d.%d", view, seqno)
	}
	var body struct {
		ApplicationClaims json.RawMessage `json:"applicationClaims"`
	}
	if json.Unmarshal(data, &body) == nil && len(body.ApplicationClaims) > 0 && string(body.ApplicationClaims) != "null" {
		claims = body.ApplicationClaims
	}
	return &client.Receipt{TransactionID: txID, Receipt: r, ApplicationClaims: claims, Raw: json.RawMessage(bytes.TrimSpace(data))}, nil
}

// reportReceipt verifies the receipt if asked, saves it if asked, and
// prints it. A receipt that does not verify is an error that starts with
// INVALID, and nothing is printed or saved.
func reportReceipt(r *client.Receipt, serviceCert *x509.Certificate, verify, withClaims bool, out string, asJSON bool, stdout io.Writer) error {
	var claims []receipt.ApplicationClaim
	switch {
	case verify && withClaims:
		var err error
		if claims, err = r.VerifyWithClaims(serviceCert); err != nil {
			return fmt.Errorf("INVALID: %w", err)
		}
	case verify:
		if err := r.Verify(serviceCert); err != nil {
			return fmt.Errorf("INVALID: %w", err)
		}
	case withClaims:
		claims, _ = r.Claims() // shown, not verified
	}
	if out != "" {
		if err := durable.WriteFile(out, append(bytes.TrimSpace(r.Raw), '\n'), 0o644); err != nil {
			return err
		}
	}
	if asJSON {
		var buf bytes.Buffer
		if err := json.Compact(&buf, r.Raw); err != nil {
			return fmt.Errorf("the receipt is not JSON: %w", err)
		}
		buf.WriteByte('\n')
		_, err := stdout.Write(buf.Bytes())
		return err
	}
	return printReceipt(stdout, r, verify, claims)
}

func printReceipt(w io.Writer, r *client.Receipt, verified bool, claims []receipt.ApplicationClaim) error {
	rc := r.Receipt
	fmt.Fprintf(w, "receipt of transaction %s\n", r.TransactionID)
	if rc.LeafComponents != nil {
		fmt.Fprintf(w, "  commit evidence   %s\n", rc.LeafComponents.CommitEvidence)
		fmt.Fprintf(w, "  write set digest  %s\n", rc.LeafComponents.WriteSetDigest)
		fmt.Fprintf(w, "  claims digest     %s\n", rc.LeafComponents.ClaimsDigest)
	} else {
		fmt.Fprintf(w, "  leaf              %s\n", rc.Leaf)
	}
	if root, err := rc.ComputeRoot(); err == nil {
		fmt.Fprintf(w, "  root              %x (%d proof steps)\n", root, len(rc.Proof))
	}
	fmt.Fprintf(w, "  node              %s\n", rc.NodeID)
	if len(rc.ServiceEndorsements) > 0 {
		fmt.Fprintf(w, "  endorsements      %d\n", len(rc.ServiceEndorsements))
	}
	for _, c := range claims {
		if e := c.LedgerEntry; e != nil {
			fmt.Fprintf(w, "  claim             %s %s: collection %s, contents %s\n", c.Kind, e.Protocol, printable(e.CollectionID), printable(e.Contents))
		} else if d := c.Digest; d != nil {
			fmt.Fprintf(w, "  claim             %s %s: %s\n", c.Kind, d.Protocol, d.Value)
		}
	}
	var err error
	if verified && len(claims) > 0 {
		_, err = fmt.Fprintln(w, "OK: the receipt verifies against the service certificate, and its application claims against its claims digest")
	} else if verified {
		_, err = fmt.Fprintln(w, "OK: the receipt verifies against the service certificate")
	} else {
		_, err = fmt.Fprintln(w, "not verified (add --verify)")
	}
	return err
}

const tagsUsage = `
usage: ledgerctl tags [flags]

Lists the tags of each collection's entries (GET /app/collections/tags, api-version
2024-12-09-preview): "COLLECTION TAG TAG ..." per collection that has tagged entries, or only
--collection's.`

func runTags(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("tags", stderr)
	conn := addConnFlags(fs, cliDefaultTimeout)
	coll := fs.String("collection", "", "list this collection's tags only (default: every collection with tagged entries)")
	commandUsage(fs, stderr, tagsUsage)
	if _, err := parseCommand(fs, args, 0, 0, "tags takes no arguments: use --collection"); err != nil {
		return err
	}
	return withClient(conn, true, func(ctx context.Context, c *client.Client) error {
		colls, err := c.ListCollectionTags(ctx, *coll)
		if err != nil {
			return err
		}
		if conn.json {
			type item struct {
				CollectionID string   `json:"collectionId"`
				Tags         []string `json:"tags"`
			}
			items := make([]item, len(colls))
			for i, ct := range colls {
				items[i] = item{ct.CollectionID, ct.Tags}
			}
			return writeJSON(stdout, struct {
				Collections []item `json:"collections"`
			}{items})
		}
		for _, ct := range colls {
			line := printable(ct.CollectionID)
			for _, t := range ct.Tags {
				line += " " + printable(t)
			}
			if _, err := fmt.Fprintln(stdout, line); err != nil {
				return err
			}
		}
		return nil
	})
}

const collectionsUsage = `
usage: ledgerctl collections [flags]

Lists the ledger's collections (GET /app/collections).`

func runCollections(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("collections", stderr)
	conn := addConnFlags(fs, cliDefaultTimeout)
	commandUsage(fs, stderr, collectionsUsage)
	if _, err := parseCommand(fs, args, 0, 0, "collections takes no arguments"); err != nil {
		return err
	}
	return withClient(conn, true, func(ctx context.Context, c *client.Client) error {
		ids, err := c.ListCollections(ctx)
		if err != nil {
			return err
		}
		slices.Sort(ids)
		if conn.json {
			type item struct {
				CollectionID string `json:"collectionId"`
			}
			items := make([]item, len(ids))
			for i, id := range ids {
				items[i].CollectionID = id
			}
			return writeJSON(stdout, struct {
				Collections []item `json:"collections"`
			}{items})
		}
		for _, id := range ids {
			if _, err := fmt.Fprintln(stdout, printable(id)); err != nil {
				return err
			}
		}
		return nil
	})
}

const consortiumUsage = `
usage: ledgerctl consortium [flags]

Lists the consortium members that govern the ledger (GET /app/governance/members): id,
certificate subject and expiry; --json adds the PEM certificates.`

func runConsortium(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("consortium", stderr)
	conn := addConnFlags(fs, cliDefaultTimeout)
	commandUsage(fs, stderr, consortiumUsage)
	if _, err := parseCommand(fs, args, 0, 0, "consortium takes no arguments"); err != nil {
		return err
	}
	return withClient(conn, true, func(ctx context.Context, c *client.Client) error {
		cons, err := c.GetConsortium(ctx)
		if err != nil {
			return err
		}
		if conn.json {
			members := cons.Members
			if members == nil {
				members = []client.ConsortiumMember{}
			}
			return writeJSON(stdout, struct {
				Members []client.ConsortiumMember `json:"members"`
			}{members})
		}
		for _, m := range cons.Members {
			fmt.Fprintf(stdout, "member %s\n  %s\n", m.ID, describeCertPEM(m.Certificate))
		}
		return nil
	})
}

// describeCertPEM returns the subject and validity of a PEM certificate.
func describeCertPEM(s string) string {
	block, _ := pem.Decode([]byte(s))
	if block == nil {
		return "(no PEM certificate)"
	}
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		return "(bad certificate: " + err.Error() + ")"
	}
	return fmt.Sprintf("subject %s, valid until %s", cert.Subject, cert.NotAfter.UTC().Format(time.DateOnly))
}

const constitutionUsage = `
usage: ledgerctl constitution [flags]

Prints the governance constitution (GET /app/governance/constitution) after checking that its
digest is the SHA-256 of its script.`

func runConstitution(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("constitution", stderr)
	conn := addConnFlags(fs, cliDefaultTimeout)
	commandUsage(fs, stderr, constitutionUsage)
	if _, err := parseCommand(fs, args, 0, 0, "constitution takes no arguments"); err != nil {
		return err
	}
	return withClient(conn, true, func(ctx context.Context, c *client.Client) error {
		con, err := c.GetConstitution(ctx)
		if err != nil {
			return err
		}
		if conn.json {
			return writeJSON(stdout, con)
		}
		_, err = fmt.Fprintf(stdout, "digest %s (SHA-256 of the script, checked)\n\n%s\n", con.Digest, strings.TrimRight(con.Script, "\n"))
		return err
	})
}

const quotesUsage = `
usage: ledgerctl quotes [flags]

Lists the nodes' enclave attestation quotes (GET /app/enclaveQuotes). They are not verified:
ledgerd's are Insecure_Virtual (see README), and hardware quotes need a verifier of their format.`

func runQuotes(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("quotes", stderr)
	conn := addConnFlags(fs, cliDefaultTimeout)
	commandUsage(fs, stderr, quotesUsage)
	if _, err := parseCommand(fs, args, 0, 0, "quotes takes no arguments"); err != nil {
		return err
	}
	return withClient(conn, true, func(ctx context.Context, c *client.Client) error {
		q, err := c.GetEnclaveQuotes(ctx)
		if err != nil {
			return err
		}
		if conn.json {
			if q.Quotes == nil {
				q.Quotes = map[string]client.EnclaveQuote{}
			}
			return writeJSON(stdout, q)
		}
		fmt.Fprintf(stdout, "answered by node %s\n", q.CurrentNodeID)
		ids := make([]string, 0, len(q.Quotes))
		for id := range q.Quotes {
			ids = append(ids, id)
		}
		slices.Sort(ids)
		for _, id := range ids {
			e := q.Quotes[id]
			fmt.Fprintf(stdout, "node %s: %s quote, %d bytes", id, e.QuoteVersion, len(e.Raw)/2)
			if e.MREnclave != "" {
				fmt.Fprintf(stdout, ", measurement %s", e.MREnclave)
			}
			fmt.Fprintln(stdout)
		}
		fmt.Fprintln(stdout, "quotes are not verified")
		return nil
	})
}

const identityUsage = `
usage: ledgerctl identity [flags] [LEDGER_ID]

Fetches the ledger's service certificate from the identity service (GET /ledgerIdentity/{id};
by default the ledger itself, as ledgerd serves it; Azure: --identity-endpoint
https://identity.confidential-ledger.core.azure.com) and prints it with its fingerprint. With
--service-cert, it is compared with the pinned certificate (a mismatch exits 1). Without, the
fetch is unverified (trust on first use): check the fingerprint out of band before pinning it.
--out saves the PEM certificate. No credential is needed.`

func runIdentity(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("identity", stderr)
	conn := addConnFlags(fs, cliDefaultTimeout)
	out := fs.String("out", "", "save the PEM service certificate to this file")
	commandUsage(fs, stderr, identityUsage)
	pos, err := parseCommand(fs, args, 0, 1, "identity takes at most one ledger id")
	if err != nil {
		return err
	}
	ledgerID := ""
	if len(pos) == 1 {
		ledgerID = pos[0]
	}
	pinned := conn.serviceCert != "" && !conn.tofu
	if !pinned {
		conn.tofu = true
		if conn.serviceCert != "" {
			if _, err := os.Stat(conn.serviceCert); err == nil {
				pinned = true // trust on first use pins an existing file
			}
		}
	}
	return withClient(conn, false, func(ctx context.Context, c *client.Client) error {
		id, err := c.GetLedgerIdentity(ctx, ledgerID)
		if err != nil {
			return err
		}
		cert, err := id.Certificate()
		if err != nil {
			return fmt.Errorf("the identity service's certificate: %w", err)
		}
		if pinned && !cert.Equal(c.ServiceCertificate()) {
			return fmt.Errorf("INVALID: the identity service's certificate for %q (SHA-256 %s) is not the pinned service certificate %s",
				id.LedgerID, client.CertificateUserID(cert.Raw), conn.serviceCert)
		}
		pemText := string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Raw}))
		if *out != "" {
			if err := durable.WriteFile(*out, []byte(pemText), 0o644); err != nil {
				return err
			}
		}
		if conn.json {
			return writeJSON(stdout, client.LedgerIdentity{LedgerID: id.LedgerID, TLSCertificate: pemText})
		}
		fmt.Fprintf(stdout, "ledger id %s\n", id.LedgerID)
		fmt.Fprintf(stdout, "service certificate SHA-256 %s\n", client.CertificateUserID(cert.Raw))
		fmt.Fprintf(stdout, "  %s\n", describeCertPEM(pemText))
		if pinned {
			fmt.Fprintln(stdout, "matches the pinned service certificate")
		} else {
			fmt.Fprintln(stdout, "UNVERIFIED (trust on first use): compare the fingerprint out of band before pinning it")
		}
		_, err = io.WriteString(stdout, pemText)
		return err
	})
}
