package main

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/ledgerd/ledgerd/internal/audit"
	"github.com/ledgerd/ledgerd/internal/cose"
	"github.com/ledgerd/ledgerd/internal/dirlock"
	"github.com/ledgerd/ledgerd/internal/identity"
	"github.com/ledgerd/ledgerd/internal/merkle"
	"github.com/ledgerd/ledgerd/internal/node"
	"github.com/ledgerd/ledgerd/internal/tables"
	"github.com/ledgerd/ledgerd/receipt"
)

func runAudit(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("audit", stderr)
	certPath := fs.String("service-cert", "", "service certificate (default: DIR/service.pem)")
	secretPath := fs.String("secret", "", "ledger secret file, to authenticate every entry (default: DIR/ledger.secret if present)")
	serviceKeyPath := fs.String("service-key", "", "service key file, to unwrap the ledger secrets of rekeys and authenticate the entries after them (default: DIR/service.key if present)")
	measure := fs.Bool("measure", false, "also measure this machine's raw SHA-256 throughput and print the ratio")
	quiet := fs.Bool("q", false, "no progress bar")
	derived := fs.Bool("derived", true, "also check the node's derived files (merkle.tree, signatures.idx, state.checkpoint) against the ledger")
	governance := fs.Bool("governance", false, "also print the governance history (every signed request in public:ccf.gov.history and every proposal state change, in seqno order) and verify each request's signature against the member's certificate as of that point in the ledger")
	claims := fs.Bool("claims", false, "with the ledger secret, also decrypt every entry and recompute its application claims digest (LedgerEntryV1 of collection, contents and key) against its leaf's: catches a node that signed a wrong claims digest; costs about half the audit's speed")
	live := fs.Bool("live", false, "the node is running: audit without its directory lock, and accept (and report) a write in progress at the end of the open chunk; nothing is ever written")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: ledgerctl audit [flags] DIR\n\nDIR is a ledgerd data directory or its ledger/ folder.")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return flagError(err)
	}
	if fs.NArg() != 1 {
		fs.Usage()
		return usagef("audit needs one directory")
	}
	dataDir, ledgerDir := resolveDirs(fs.Arg(0))
	if !*live {
		// A stopped node's directory: hold its lock shared while auditing,
		// so that no node starts on it meanwhile, and refuse if one runs.
		release, err := dirlock.LockShared(dataDir)
		if errors.Is(err, dirlock.ErrLocked) {
			return fmt.Errorf("a running ledgerd holds %s: pass --live to audit a running node's directory (read-only; a write in progress at the end is reported, not audited)", dataDir)
		}
		if err == nil {
			defer release()
		}
	}
	opts, err := auditOptions(dataDir, *certPath, *secretPath, *serviceKeyPath)
	if err != nil {
		return err
	}
	if tree, err := openTreeReadOnly(filepath.Join(dataDir, "merkle.tree")); err == nil {
		defer tree.Close()
		opts.TreeLeaf = func(s uint64) (merkle.Hash, bool) {
			h, err := tree.Leaf(s)
			return h, err == nil
		}
	}
	opts.Live = *live
	opts.Claims = *claims
	startup, err := node.StartupSnapshot(dataDir, opts.ServiceCert)
	if err != nil {
		fmt.Fprintf(stdout, "FAIL: startup.snapshot: %v\n", err)
		return fmt.Errorf("the snapshot the node started from does not verify")
	}
	history := false
	if startup != nil {
		if ents, _ := os.ReadDir(ledgerDir); len(ents) > 0 {
			for _, e := range ents {
				history = history || strings.HasPrefix(e.Name(), "ledger_1-") || e.Name() == "ledger_1"
			}
		}
		if history {
			// --fetch-history: the ledger before the snapshot is here too.
			fmt.Fprintf(stdout, "started from a snapshot: state at %d, evidence at %d, verified against the service certificate; the node holds the ledger before it, audited from 1\n",
				startup.Seqno, startup.EvidenceSeqno)
		} else {
			// The node joined from a snapshot: its ledger starts after it, and
			// is audited from the snapshot's tree, rekeys and node certificates.
			opts.Start = &audit.Start{Seqno: startup.Seqno, Edge: startup.Edge(), Rekeys: startup.Rekeys(), NodeCerts: startup.NodeCerts()}
			fmt.Fprintf(stdout, "started from a snapshot: state at %d, evidence at %d, verified against the service certificate; the ledger is audited from %d\n",
				startup.Seqno, startup.EvidenceSeqno, startup.Seqno+1)
		}
	}
	// A recovered service's directory (recovery.json) names its previous
	// services; they are checked against the ledger's recovery
	// transactions before the audit. Without recovery.json (a copy of the
	// ledger alone), the ledger is scanned for recovery transactions only if
	// the audit fails without them: the scan is one more read of the whole
	// ledger, which a ledger that never went through a recovery does not
	// need.
	_, statErr := os.Stat(filepath.Join(dataDir, node.RecoveryFile))
	recovered := statErr == nil
	if recovered {
		if err := auditRecovered(dataDir, ledgerDir, &opts); err != nil {
			return err
		}
	}
	auditOnce := func(opts audit.Options) (*audit.Report, time.Duration, error) {
		bar := newProgress(stderr, !*quiet)
		opts.Progress = bar.update
		start := time.Now()
		rep, err := audit.Dir(ledgerDir, opts)
		elapsed := time.Since(start)
		bar.done()
		return rep, elapsed, err
	}
	rep, elapsed, err := auditOnce(opts)
	if err != nil && !recovered {
		retry := opts
		if serr := auditRecovered(dataDir, ledgerDir, &retry); serr != nil {
			fmt.Fprintf(stdout, "note: the ledger's recovery transactions: %v\n", serr)
		} else if len(retry.Previous) > 0 {
			fmt.Fprintf(stdout, "the ledger spans %d disaster recoveries: audited again with each previous service's certificate\n", len(retry.Previous))
			opts = retry
			rep, elapsed, err = auditOnce(opts)
		}
	}
	if err != nil {
		var f *audit.Failure
		if errors.As(err, &f) {
			fmt.Fprintf(stdout, "FAIL: seqno %d: %s\n", f.Seqno, f.Reason)
			return fmt.Errorf("audit failed at seqno %d", f.Seqno)
		}
		return err
	}
	printReport(stdout, rep, elapsed, opts)
	if *derived && startup != nil && !history {
		fmt.Fprintln(stdout, "derived files not checked: the node started from a snapshot (ledgerd checks them against the ledger at start)")
	} else if *derived {
		drep, err := node.CheckDerivedKeys(dataDir, opts.Keyring, *live)
		var df *node.DerivedFailure
		if errors.As(err, &df) {
			fmt.Fprintf(stdout, "FAIL: derived file %s\n", df)
			return fmt.Errorf("derived file %s disagrees with the ledger (ledgerd rebuilds it from the ledger at start, or on the first receipt it spoils)", df.File)
		}
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "derived files agree with the ledger: merkle.tree %d leaves, signatures.idx %d records", drep.TreeLeaves, drep.Signatures)
		switch {
		case drep.CheckpointChecked:
			fmt.Fprintf(stdout, ", state.checkpoint at %d (MAC and contents)\n", drep.CheckpointApplied)
		default:
			fmt.Fprintln(stdout, ", state.checkpoint not checked (no ledger secret, or none)")
		}
	}
	if err := auditSnapshots(stdout, dataDir, opts); err != nil {
		return err
	}
	if *governance {
		if err := auditGovernance(stdout, ledgerDir, *live); err != nil {
			return err
		}
	}
	if *measure {
		raw := rawSHA256Throughput()
		got := float64(rep.Bytes) / elapsed.Seconds()
		fmt.Fprintf(stdout, "throughput: %.0f MB/s of entries; raw SHA-256 on this machine: %.0f MB/s; ratio %.2f\n", got/1e6, raw/1e6, got/raw)
	}
	return nil
}

// auditGovernance prints the governance history and verifies every signed
// request in it.
func auditGovernance(w io.Writer, ledgerDir string, live bool) error {
	fmt.Fprintln(w, "governance history (seqno, event):")
	rep, err := audit.Governance(ledgerDir, audit.GovOptions{Live: live}, func(ev audit.GovEvent) {
		fmt.Fprintf(w, "  %s\n", formatGovEvent(ev))
	})
	if err != nil {
		var f *audit.Failure
		if errors.As(err, &f) {
			fmt.Fprintf(w, "FAIL: seqno %d: %s\n", f.Seqno, f.Reason)
			return fmt.Errorf("governance audit failed at seqno %d", f.Seqno)
		}
		return err
	}
	var kinds []string
	known := []string{cose.MsgProposal, cose.MsgBallot, cose.MsgWithdrawal, cose.MsgStateDigest, cose.MsgAck}
	for _, t := range append(known, slices.Sorted(maps.Keys(rep.ByType))...) {
		if n := rep.ByType[t]; n > 0 && !slices.Contains(kinds, fmt.Sprintf("%d %s", n, t)) {
			kinds = append(kinds, fmt.Sprintf("%d %s", n, t))
		}
	}
	detail := ""
	if len(kinds) > 0 {
		detail = " (" + strings.Join(kinds, ", ") + ")"
	}
	fmt.Fprintf(w, "OK: %d signed governance requests%s, each verified with its member's certificate as of its seqno; %d proposals\n",
		rep.Requests, detail, rep.Proposals)
	return nil
}

// formatGovEvent is one line of the governance history.
func formatGovEvent(ev audit.GovEvent) string {
	if ev.Kind == "state" {
		line := fmt.Sprintf("%-6d proposal %s is %s", ev.Seqno, ev.ProposalID, ev.State)
		if ev.Failure != "" {
			line += ": " + ev.Failure
		}
		return line
	}
	line := fmt.Sprintf("%-6d %-12s member %s, created_at %s", ev.Seqno, ev.MsgType, ev.MemberID,
		time.Unix(int64(ev.CreatedAt), 0).UTC().Format(time.RFC3339))
	if ev.ProposalID != "" {
		line += ", proposal " + ev.ProposalID
	}
	switch ev.MsgType {
	case cose.MsgProposal:
		line += ", actions " + strings.Join(ev.Actions, " ")
	case cose.MsgBallot:
		line += ", ballot " + audit.BallotSummary(ev.Ballot)
	}
	return line
}

func printReport(w io.Writer, rep *audit.Report, elapsed time.Duration, opts audit.Options) {
	fmt.Fprintf(w, "OK: %d transactions (seqno %d..%d), %d signatures verified in %s (%.0f MB/s)\n",
		rep.Entries, rep.FirstSeqno, rep.LastSeqno, rep.Signatures, elapsed.Round(time.Millisecond), float64(rep.Bytes)/elapsed.Seconds()/1e6)
	if rep.Entries > 0 {
		fmt.Fprintf(w, "merkle root over leaves [0..%d]: %s\n", rep.LastSeqno, hex.EncodeToString(rep.Root[:]))
	}
	if rep.LastSeqno > rep.LastSigned {
		fmt.Fprintf(w, "note: %d transactions after the last signature (%d) are not yet signed\n", rep.LastSeqno-rep.LastSigned, rep.LastSigned)
	}
	if t := rep.TornTail; t != nil {
		fmt.Fprintf(w, "note: %d bytes after seqno %d in %s are a write in progress (%s); not audited\n", t.Bytes, t.Seqno-1, t.File, t.Reason)
	}
	if rep.Rekeys > 0 {
		fmt.Fprintf(w, "the ledger was rekeyed %d times\n", rep.Rekeys)
	}
	switch {
	case rep.Authenticated:
		fmt.Fprintln(w, "every entry was authenticated with the ledger secret of its seqno")
	case rep.AuthenticatedTo > 0:
		fmt.Fprintf(w, "entries up to %d were authenticated; the ledger was rekeyed there, and without the service key (--service-key) the new secret cannot be unwrapped: the entries after it are checked at signatures only\n", rep.AuthenticatedTo)
	default:
		fmt.Fprintln(w, "entries were not authenticated (no ledger secret): modifications are detected at the next signature")
	}
	switch {
	case !rep.Authenticated && rep.AuthenticatedTo == 0:
		fmt.Fprintln(w, "application claims not recomputed (no ledger secret to decrypt the entries): the leaves' claims digests are covered by the signatures only")
	case !opts.Claims:
		fmt.Fprintln(w, "application claims not recomputed (ask with --claims): the leaves' claims digests are covered by the signatures")
	case rep.Authenticated:
		fmt.Fprintf(w, "application claims: %d ledger entries carry the LedgerEntryV1 claims digest of their decrypted collection, contents and key; every other transaction carries zeros\n", rep.Claims)
	default:
		fmt.Fprintf(w, "application claims recomputed up to %d (%d ledger entries); after it the claims digests are covered by the signatures only\n", rep.AuthenticatedTo, rep.Claims)
	}
	sum := sha256.Sum256(opts.ServiceCert.Raw)
	fmt.Fprintf(w, "service certificate: sha256 %x\n", sum)
}

// resolveDirs accepts a data directory or its ledger/ folder.
func resolveDirs(dir string) (dataDir, ledgerDir string) {
	if st, err := os.Stat(filepath.Join(dir, "ledger")); err == nil && st.IsDir() {
		return dir, filepath.Join(dir, "ledger")
	}
	return filepath.Dir(filepath.Clean(dir)), dir
}

func auditOptions(dataDir, certPath, secretPath, serviceKeyPath string) (audit.Options, error) {
	var opts audit.Options
	if certPath == "" {
		certPath = filepath.Join(dataDir, "service.pem")
	}
	pemBytes, err := os.ReadFile(certPath)
	if err != nil {
		return opts, fmt.Errorf("%w: couldn't read the service certificate (pass --service-cert): %v", errUsage, err)
	}
	if opts.ServiceCert, err = receipt.ParseCertificatePEM(pemBytes); err != nil {
		return opts, fmt.Errorf("service certificate: %w", err)
	}
	explicit := secretPath != ""
	if !explicit {
		secretPath = filepath.Join(dataDir, "ledger.secret")
	}
	secret, err := readSecret(secretPath)
	if err != nil && explicit {
		return opts, err
	}
	opts.LedgerSecret = secret
	if secret == nil {
		return opts, nil
	}
	explicit = serviceKeyPath != ""
	if !explicit {
		serviceKeyPath = filepath.Join(dataDir, "service.key")
	}
	key, err := identity.LoadKey(serviceKeyPath)
	if err != nil && explicit {
		return opts, err
	}
	if key != nil && !key.PublicKey.Equal(opts.ServiceCert.PublicKey) {
		return opts, fmt.Errorf("%s is not the key of the service certificate", serviceKeyPath)
	}
	if opts.Keyring, err = tables.NewKeyring(secret, key); err != nil {
		return opts, err
	}
	return opts, nil
}

// rawSHA256Throughput hashes 256 MiB in 1 KiB-and-more pieces of one buffer.
func rawSHA256Throughput() float64 {
	buf := make([]byte, 1<<20)
	start := time.Now()
	var n int
	for time.Since(start) < time.Second {
		for range 16 {
			sha256.Sum256(buf)
			n += len(buf)
		}
	}
	return float64(n) / time.Since(start).Seconds()
}

// auditSnapshots verifies the data directory's committed snapshot files
// (snapshots/snapshot_S_E.committed) against the service certificate, and
// each one's leaf at S against the Merkle tree where it holds S.
func auditSnapshots(w io.Writer, dataDir string, opts audit.Options) error {
	checks, err := node.CheckSnapshots(dataDir, opts.ServiceCert, opts.TreeLeaf)
	if err != nil {
		return err
	}
	if len(checks) == 0 {
		return nil
	}
	for _, c := range checks {
		if c.Err != nil {
			fmt.Fprintf(w, "FAIL: snapshot %s: %v\n", c.Name, c.Err)
			return fmt.Errorf("snapshot %s does not verify", c.Name)
		}
	}
	last := checks[len(checks)-1]
	fmt.Fprintf(w, "snapshots verified: %d (latest %s: state at %d, evidence at %d, receipt verifies against the service certificate)\n",
		len(checks), last.Name, last.Snapshot.Seqno, last.Snapshot.EvidenceSeqno)
	return nil
}

// auditRecovered sets up the audit of a recovered service's directory
// (ledgerd --recover, once or more; or a node that joined one with the
// history): every previous service's signatures verify against its
// certificate (recovery.json and the ledger's recovery transactions name
// them), and its entries authenticate with the recovered secrets the ledger
// holds (with this service's key), else are covered by the signatures only.
func auditRecovered(dataDir, ledgerDir string, opts *audit.Options) error {
	prevs, err := node.PreviousServices(dataDir, ledgerDir, opts.Live)
	if err != nil || len(prevs) == 0 {
		return err
	}
	for _, p := range prevs {
		cert, err := receipt.ParseCertificatePEM([]byte(p.Cert))
		if err != nil {
			return fmt.Errorf("the previous service certificate of seqnos up to %d: %w", p.End, err)
		}
		opts.Previous = append(opts.Previous, audit.Previous{ServiceCert: cert, End: p.End, CertPEM: p.Cert})
	}
	end := prevs[len(prevs)-1].End
	if opts.Keyring == nil && opts.LedgerSecret != nil {
		if opts.Keyring, err = tables.NewKeyring(opts.LedgerSecret, nil); err != nil {
			return err
		}
	}
	if opts.Keyring == nil {
		return nil
	}
	_, err = node.LoadRecoveredSecrets(ledgerDir, end, opts.Keyring, opts.Live)
	return err
}
