package node_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ledgerd/ledgerd/internal/audit"
	"github.com/ledgerd/ledgerd/internal/identity"
	"github.com/ledgerd/ledgerd/internal/ledger"
	"github.com/ledgerd/ledgerd/internal/node"
	"github.com/ledgerd/ledgerd/internal/tables"
)

const (
	crashDirEnv   = "LEDGERD_CRASH_CHILD_DIR"
	crashRekeyEnv = "LEDGERD_CRASH_CHILD_REKEY" // set: the child also rekeys the ledger in a loop
)

// TestCrashChild is the child of TestCrashRecovery: it appends in a loop from
// several goroutines and prints "P <txid> <contents>" for every entry once
// it is answered (Pending), and "C <txid> <contents>" once the node reports
// it Committed. It runs until it is killed.
func TestCrashChild(t *testing.T) {
	dir := os.Getenv(crashDirEnv)
	if dir == "" {
		t.Skip("child process of TestCrashRecovery only")
	}
	n := openNode(t, dir, func(c *node.Config) { c.ChunkSize = 64 << 10 })
	var mu sync.Mutex
	var wg sync.WaitGroup
	if os.Getenv(crashRekeyEnv) != "" {
		wg.Go(func() {
			for {
				if _, err := n.Exec(context.Background(), node.UntilExecuted, func(*node.State) ([]ledger.MapWrites, error) { return n.RekeyWrites() }); err != nil {
					t.Error(err)
					return
				}
				time.Sleep(5 * time.Millisecond) // pacing: a rekey every few batches
			}
		})
	}
	for w := range 8 {
		wg.Go(func() {
			for i := 0; ; i++ {
				body := fmt.Sprintf("p%d-w%d-%d-%s", os.Getpid(), w, i, strings.Repeat("x", rand.IntN(2000)))
				f, err := n.SubmitEntry("crash", []byte(body))
				if err != nil {
					t.Error(err)
					return
				}
				id, err := f.Wait(context.Background())
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				fmt.Fprintf(os.Stdout, "P %s %s\n", id, body)
				mu.Unlock()
				if err := n.WaitCommitted(context.Background(), id); err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				fmt.Fprintf(os.Stdout, "C %s %s\n", id, body)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
}

// TestCrashRecovery kills a child that appends in a loop with SIGKILL at
// random moments, at least 20 times. After every restart each entry that had
// been reported Committed must be present with its contents. An entry that
// was only answered (Pending) may have been lost, but then its id must turn
// Invalid: it must never read Committed with other contents. At the end the
// audit of the ledger must pass.
func TestCrashRecovery(t *testing.T) {
	crashRecovery(t, 24)
}

// TestCrashRecoveryWithRekeys is TestCrashRecovery with a child that also
// rekeys the ledger every few milliseconds: after every crash the node finds
// every secret again, each committed entry reads back, and the audit
// authenticates every entry with the secret of its seqno.
func TestCrashRecoveryWithRekeys(t *testing.T) {
	crashRecovery(t, 6, crashRekeyEnv+"=1")
}

func crashRecovery(t *testing.T, rounds int, env ...string) {
	if testing.Short() {
		t.Skip("crash test spawns processes")
	}
	dir := t.TempDir()
	committed := map[node.TxID]string{}
	answered := map[node.TxID]string{}
	for round := range rounds {
		lines, err := runAndKill(t, dir, time.Duration(rand.IntN(150))*time.Millisecond, env...)
		if err != nil {
			t.Fatalf("round %d: %v", round, err)
		}
		for _, l := range lines {
			f := strings.SplitN(l, " ", 3)
			if len(f) != 3 {
				t.Fatalf("bad child line %q", l)
			}
			id, err := node.ParseTxID(f[1])
			if err != nil {
				t.Fatalf("bad child line %q", l)
			}
			if f[0] == "C" {
				committed[id] = f[2]
			} else {
				answered[id] = f[2]
			}
		}
	}
	if len(committed) < rounds {
		t.Fatalf("only %d entries were committed over %d rounds", len(committed), rounds)
	}
	n := openNode(t, dir, func(c *node.Config) { c.ChunkSize = 64 << 10 })
	for id, body := range committed {
		if st := n.Status(id); st != node.StatusCommitted {
			t.Fatalf("%s was reported Committed, now %v", id, st)
		}
		e, err := n.Entry(id)
		if err != nil || string(e.Contents) != body {
			t.Fatalf("%s was reported Committed with %q, now %q (%v)", id, body[:min(20, len(body))], e.Contents, err)
		}
	}
	lost := 0
	for id, body := range answered {
		if _, ok := committed[id]; ok {
			continue
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		err := n.WaitCommitted(ctx, id)
		cancel()
		switch {
		case errors.Is(err, node.ErrInvalid):
			lost++
		case err != nil:
			t.Fatalf("%s was answered Pending, and is now neither Committed nor Invalid: %v", id, err)
		default:
			if e, err := n.Entry(id); err != nil || string(e.Contents) != body {
				t.Fatalf("%s was answered Pending with %q, and is Committed with %q (%v)", id, body[:min(20, len(body))], e.Contents, err)
			}
		}
	}
	if err := n.Close(); err != nil {
		t.Fatal(err)
	}
	ids, err := identity.LoadOrCreate(dir, identity.Options{})
	if err != nil {
		t.Fatal(err)
	}
	keys, err := tables.NewKeyring(ids.LedgerSecret, ids.Service.Key)
	if err != nil {
		t.Fatal(err)
	}
	rep, err := audit.Dir(filepath.Join(dir, "ledger"), audit.Options{ServiceCert: ids.Service.Cert, Keyring: keys})
	if err != nil {
		t.Fatalf("audit after %d crashes: %v", rounds, err)
	}
	if !rep.Authenticated || (len(env) > 0) != (rep.Rekeys > 0) {
		t.Fatalf("audit: authenticated %v, %d rekeys", rep.Authenticated, rep.Rekeys)
	}
	t.Logf("%d crashes, %d committed entries checked, %d answered but uncommitted ones of which %d were lost (Invalid); audit: %d transactions, %d signatures, %d rekeys",
		rounds, len(committed), len(answered)-len(committed), lost, rep.Entries, rep.Signatures, rep.Rekeys)
}

// runAndKill starts the child, waits for its first committed line, lets it
// run for d more, kills it with SIGKILL and returns every line it printed.
func runAndKill(t *testing.T, dir string, d time.Duration, env ...string) ([]string, error) {
	cmd := exec.Command(os.Args[0], "-test.run=^TestCrashChild$")
	cmd.Env = append(append(os.Environ(), crashDirEnv+"="+dir), env...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	firstc := make(chan struct{})
	first := firstc
	var lines []string
	done := make(chan struct{})
	go func() {
		defer close(done)
		sc := bufio.NewScanner(out)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			switch {
			case strings.HasPrefix(sc.Text(), "C "):
				if first != nil {
					close(first)
					first = nil
				}
				lines = append(lines, sc.Text())
			case strings.HasPrefix(sc.Text(), "P "):
				lines = append(lines, sc.Text())
			}
		}
	}()
	select {
	case <-firstc:
	case <-done:
		cmd.Wait()
		return nil, fmt.Errorf("child exited before committing anything: %s", stderr.String())
	case <-time.After(30 * time.Second):
		cmd.Process.Kill()
		cmd.Wait()
		return nil, fmt.Errorf("child committed nothing in 30s: %s", stderr.String())
	}
	time.Sleep(d) // fault injection: kill at a random moment, not synchronisation
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		return nil, err
	}
	<-done
	cmd.Wait()
	return lines, nil
}
