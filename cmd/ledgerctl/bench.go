package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/ledgerd/ledgerd/cmd/ledgerctl/internal/loadgen"
)

// bench is the command line of the load generator, package loadgen: its
// flags, the throwaway ledgerd of --start, the report's output and the
// exit code.

const benchUsage = `usage: ledgerctl bench [flags]

Appends entries of --size bytes to --collection over --connections concurrent
keep-alive mTLS connections (HTTP/1.1, one TLS connection per worker) for
--warmup, then for --duration (measured); then measures the same server's
cheapest authenticated endpoint, GET /app/transactions/{id}/status of a
committed id, the same way over the same connections. It reports each
phase's throughput and latency percentiles, the latency from append to
Committed of every measured append, and appends/s ÷ status-GETs/s.

Commit is tracked by one extra connection that polls the status endpoint:
every answer carries, in x-ms-ccf-transaction-id, the committed transaction
id it was read at, which resolves every outstanding append with that view
and a seqno at or below it. The latency is measured to the poll's answer, so
it is an upper bound, within one poll round trip of the true figure.

--get PATH makes the second phase GET PATH (with its query) instead of the
status, e.g. a user-defined endpoint installed beforehand (/app/hello); its
answers must be 2xx.

--pre-hook ID makes every append name the user-defined function ID
(installed beforehand) as its one pre-hook; scripts/bench-appjs.sh installs
a trivial one and a trivial user-defined endpoint and runs both.

Every request times out after --timeout. Failed requests (non-2xx or
connection errors), failed polls and appends never seen Committed are
counted and shown; any of them makes the exit code 1.

--start runs the bench against a throwaway ledgerd (--ledgerd BIN) started on
a free 127.0.0.1 port with its data in a new directory under $TMPDIR (which
therefore decides the disk that fsyncs), and stops and removes it afterwards.
--endpoint, --cert and --service-cert are then the throwaway's own.

--gov-every D runs governance alongside both phases: every D, the member of
--member-cert (a PEM with a member's certificate and ECDSA key; with --start,
the throwaway's member0.pem) proposes set_user of a fresh Reader and votes
yes, one proposal at a time, each answered once Accepted and committed. The
report says how many it made and their latency; a failed one is a failure.

--etcd URL measures an etcd cluster (3.4 or later) under the same load
instead, for comparison: the same connections (mTLS, HTTP/1.1 keep-alive),
each putting --size-byte values back to back to its own key (--collection/N)
through etcd's v3 JSON gateway (POST URL/v3/kv/put, key and value base64).
--cert is then a PEM file with the client certificate and key etcd trusts,
--service-cert the CA of etcd's server certificate. etcd answers a put once
it is committed and applied, so the put's latency is its append-to-commit
latency; there is no status phase. scripts/bench-etcd.sh runs both side by
side.

Flags:`

// benchOptions are the bench's flags: what loadgen measures, and how the
// command runs it.
type benchOptions struct {
	loadgen.Options
	json    bool
	start   bool
	ledgerd string
	etcd    string
	// serverPID is a local ledgerd's process id (--server-pid), whose CPU
	// use the report gives as with --start.
	serverPID int
}

func runBench(args []string, stdout, stderr io.Writer) error {
	stderr = &lockedWriter{w: stderr} // a throwaway ledgerd writes to it too
	o, err := parseBenchFlags(args, stderr)
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	context.AfterFunc(ctx, stop) // a second interrupt kills at once

	serverPID, serverDesc := o.serverPID, "external"
	if o.start {
		srv, err := loadgen.StartThrowaway(ctx, o.ledgerd, o.Timeout, stderr)
		if err != nil {
			return err
		}
		defer func() {
			if err := srv.Stop(); err != nil {
				fmt.Fprintln(stderr, "ledgerctl bench:", err)
			}
		}()
		o.Endpoint = "https://" + srv.Addr
		o.CertFile = filepath.Join(srv.Data, "admin.pem")
		o.ServiceCert = filepath.Join(srv.Data, "service.pem")
		if o.GovEvery > 0 {
			o.MemberCert = filepath.Join(srv.Data, "member0.pem")
		}
		serverPID, serverDesc = srv.PID(), "throwaway "+o.ledgerd
	}
	var rep *loadgen.Report
	if o.etcd != "" {
		o.Endpoint = o.etcd
		rep, err = loadgen.RunEtcd(ctx, o.Options, stderr)
		serverDesc = "etcd"
	} else {
		rep, err = loadgen.Run(ctx, o.Options, serverPID, stderr)
	}
	if err != nil {
		if ctx.Err() != nil {
			return errors.New("bench interrupted")
		}
		if ue, ok := errors.AsType[*loadgen.UsageError](err); ok {
			return usagef("%s", ue.Msg)
		}
		return err
	}
	rep.Server = serverDesc
	if o.json {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		enc.SetEscapeHTML(false)
		if err := enc.Encode(rep); err != nil {
			return err
		}
	} else {
		rep.WriteText(stdout)
	}
	if n := rep.Failures(); n > 0 {
		return fmt.Errorf("bench: %d failures (see the report)", n)
	}
	return nil
}

func parseBenchFlags(args []string, stderr io.Writer) (benchOptions, error) {
	var o benchOptions
	fs := newFlags("bench", stderr)
	fs.StringVar(&o.Endpoint, "endpoint", "https://127.0.0.1:8443", "ledger URL (https)")
	fs.StringVar(&o.CertFile, "cert", "admin.pem", "PEM file with the certificate and key of a Contributor or Administrator")
	fs.StringVar(&o.ServiceCert, "service-cert", envOr("LEDGER_SERVICE_CERT", "service.pem"), "service certificate (PEM) to pin (env LEDGER_SERVICE_CERT)")
	fs.IntVar(&o.Connections, "connections", 64, "concurrent connections, one worker each")
	fs.DurationVar(&o.Duration, "duration", 10*time.Second, "measured time of each phase")
	fs.DurationVar(&o.Warmup, "warmup", 2*time.Second, "unmeasured time before each phase's measurement")
	fs.DurationVar(&o.Timeout, "timeout", 10*time.Second, "timeout of every request, and of waiting for commits after the append phase")
	fs.IntVar(&o.Size, "size", 1024, "entry contents, in bytes")
	fs.StringVar(&o.Collection, "collection", "bench", "collection to append to")
	fs.StringVar(&o.Tags, "tags", "", "tags every append carries (comma-separated; api-version 2024-12-09-preview)")
	fs.StringVar(&o.PreHook, "pre-hook", "", "every append names this user-defined `function` (installed beforehand) as its pre-hook (api-version 2024-12-09-preview)")
	fs.StringVar(&o.GetPath, "get", "", "the read phase GETs this `path` (e.g. a user-defined endpoint: /app/hello) instead of a transaction's status")
	fs.BoolVar(&o.json, "json", false, "print the report as JSON")
	fs.DurationVar(&o.GovEvery, "gov-every", 0, "also propose set_user and vote yes every this long, as a member (0: no governance)")
	fs.StringVar(&o.MemberCert, "member-cert", "", "PEM file with a member's certificate and key, for --gov-every")
	fs.BoolVar(&o.start, "start", false, "start a throwaway ledgerd on a free loopback port, bench it, stop it")
	fs.StringVar(&o.ledgerd, "ledgerd", "", "ledgerd binary for --start (default: ledgerd next to ledgerctl, else on PATH)")
	fs.IntVar(&o.serverPID, "server-pid", 0, "process id of the ledgerd benched, when it runs on this machine: its CPU use is reported as with --start")
	fs.StringVar(&o.etcd, "etcd", "", "bench the etcd cluster member at this `URL` (https) instead of ledgerd, with the same load")
	fs.Usage = func() {
		fmt.Fprintln(stderr, benchUsage)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return o, flagError(err)
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	switch {
	case fs.NArg() != 0:
		return o, usagef("bench takes no arguments, got %q", fs.Arg(0))
	case o.Connections < 1 || o.Connections > 10000:
		return o, usagef("--connections must be between 1 and 10000")
	case o.Duration <= 0:
		return o, usagef("--duration must be positive")
	case o.Warmup < 0:
		return o, usagef("--warmup must not be negative")
	case o.Timeout <= 0:
		return o, usagef("--timeout must be positive")
	case o.Size < 0 || o.Size > loadgen.MaxSize:
		return o, usagef("--size must be between 0 and %d", loadgen.MaxSize)
	case o.Collection == "":
		return o, usagef("--collection must not be empty")
	case o.GetPath != "" && (!strings.HasPrefix(o.GetPath, "/") || strings.ContainsAny(o.GetPath, " \t\r\n")):
		return o, usagef("--get must be a path starting with / (with its query, percent-encoded), got %q", o.GetPath)
	case o.PreHook != "" && o.etcd != "":
		return o, usagef("--pre-hook is for ledgerd, not --etcd")
	case o.GetPath != "" && o.etcd != "":
		return o, usagef("--get is a ledgerd path: drop --etcd")
	case o.start && (set["endpoint"] || set["cert"] || set["service-cert"]):
		return o, usagef("--start benches its own ledgerd: drop --endpoint, --cert and --service-cert")
	case o.etcd != "" && (o.start || set["endpoint"] || o.GovEvery != 0):
		return o, usagef("--etcd names the server: drop --start, --endpoint and --gov-every")
	case !o.start && set["ledgerd"]:
		return o, usagef("--ledgerd needs --start")
	case o.GovEvery < 0:
		return o, usagef("--gov-every must not be negative")
	case set["member-cert"] && o.GovEvery == 0:
		return o, usagef("--member-cert goes with --gov-every")
	case o.start && set["member-cert"]:
		return o, usagef("--start benches its own ledgerd, whose member is member0.pem: drop --member-cert")
	case !o.start && o.GovEvery > 0 && o.MemberCert == "":
		return o, usagef("--gov-every needs --member-cert, a member's certificate and key")
	}
	if o.start && o.ledgerd == "" {
		if o.ledgerd = loadgen.DefaultLedgerd(); o.ledgerd == "" {
			return o, usagef("--start: no ledgerd next to ledgerctl or on PATH; name it with --ledgerd")
		}
	}
	return o, nil
}

func envOr(key, def string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return def
}

// lockedWriter serialises writes to a writer shared with a child's output.
type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}
