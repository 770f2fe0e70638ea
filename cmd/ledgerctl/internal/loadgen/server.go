package loadgen

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"time"
)

// DefaultLedgerd is the ledgerd next to this executable, else on PATH, else "".
func DefaultLedgerd() string {
	name := "ledgerd"
	if runtime.GOOS == "windows" {
		name += ".exe"
	}
	if exe, err := os.Executable(); err == nil {
		p := filepath.Join(filepath.Dir(exe), name)
		if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() {
			return p
		}
	}
	if p, err := exec.LookPath("ledgerd"); err == nil {
		return p
	}
	return ""
}

// Throwaway is a ledgerd started for one bench.
type Throwaway struct {
	// Data is its data directory (admin.pem and service.pem are there);
	// Addr is the host:port it listens on.
	Data string
	Addr string
	cmd  *exec.Cmd
	dir  string // removed by Stop
	done chan error
}

// PID is the process id of the throwaway ledgerd.
func (s *Throwaway) PID() int { return s.cmd.Process.Pid }

// StartThrowaway starts bin on a free loopback port with a new data
// directory and waits until it serves /healthz. ledgerd's stderr goes to
// stderr, each line prefixed with "ledgerd: ", concurrently with the
// caller's own writes: stderr must be safe for concurrent use.
func StartThrowaway(ctx context.Context, bin string, timeout time.Duration, stderr io.Writer) (*Throwaway, error) {
	dir, err := os.MkdirTemp("", "ledgerctl-bench-")
	if err != nil {
		return nil, err
	}
	s := &Throwaway{dir: dir, Data: filepath.Join(dir, "data"), done: make(chan error, 1)}
	s.cmd = exec.Command(bin, "--data", s.Data, "--listen", "127.0.0.1:0", "--log-level", "warn")
	s.cmd.Stderr = &prefixWriter{w: stderr, prefix: "ledgerd: "}
	out, err := s.cmd.StdoutPipe()
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	if err := s.cmd.Start(); err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("--start: %w", err)
	}
	addrc := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() { // read it all, so that ledgerd never blocks on stdout
			if a, ok := strings.CutPrefix(sc.Text(), "listening on https://"); ok {
				select {
				case addrc <- a:
				default:
				}
			}
		}
		io.Copy(io.Discard, out)
		s.done <- s.cmd.Wait()
	}()
	fail := func(err error) (*Throwaway, error) {
		s.Stop()
		return nil, fmt.Errorf("--start %s: %w", bin, err)
	}
	ctx, cancel := context.WithTimeout(ctx, startTimeout)
	defer cancel()
	select {
	case s.Addr = <-addrc:
	case err := <-s.done:
		s.done <- err // for stop
		return fail(fmt.Errorf("ledgerd exited before listening: %v", err))
	case <-ctx.Done():
		return fail(errors.New("ledgerd did not announce its address in time"))
	}
	host, _, err := net.SplitHostPort(s.Addr)
	if ip := net.ParseIP(host); err != nil || ip == nil || !ip.IsLoopback() {
		return fail(fmt.Errorf("ledgerd listens on %q, not on loopback", s.Addr))
	}
	if err := s.waitHealthy(ctx, timeout); err != nil {
		return fail(err)
	}
	return s, nil
}

// waitHealthy polls /healthz, pinning the service certificate, until it
// answers 200 or ctx ends.
func (s *Throwaway) waitHealthy(ctx context.Context, timeout time.Duration) error {
	servicePEM, err := os.ReadFile(filepath.Join(s.Data, "service.pem"))
	if err != nil {
		return err
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(servicePEM)
	tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, ServerName: "127.0.0.1", MinVersion: tls.VersionTLS12}}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, Timeout: timeout}
	var last error
	for {
		req, _ := http.NewRequestWithContext(ctx, "GET", "https://"+s.Addr+"/healthz", nil)
		resp, err := client.Do(req)
		if err == nil {
			io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			err = fmt.Errorf("/healthz answered %s", resp.Status)
		}
		last = err
		select {
		case <-ctx.Done():
			return fmt.Errorf("ledgerd not healthy in time: %v", last)
		case err := <-s.done:
			s.done <- err
			return fmt.Errorf("ledgerd exited: %v", err)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// Stop stops ledgerd gracefully (SIGTERM; killed after stopTimeout)
// and removes its directory.
func (s *Throwaway) Stop() error {
	defer os.RemoveAll(s.dir)
	var err error
	select {
	case err = <-s.done: // already exited
	default:
		if s.cmd.Process.Signal(syscall.SIGTERM) != nil {
			s.cmd.Process.Kill()
		}
		select {
		case err = <-s.done:
		case <-time.After(stopTimeout):
			s.cmd.Process.Kill()
			<-s.done
			return errors.New("throwaway ledgerd did not stop on SIGTERM; killed it")
		}
	}
	if err != nil {
		return fmt.Errorf("throwaway ledgerd: %w", err)
	}
	return nil
}

// prefixWriter prefixes every line written to it.
type prefixWriter struct {
	w       io.Writer
	prefix  string
	midLine bool
}

func (p *prefixWriter) Write(b []byte) (int, error) {
	var out []byte
	for _, line := range bytes.SplitAfter(b, []byte("\n")) {
		if len(line) == 0 {
			continue
		}
		if !p.midLine {
			out = append(out, p.prefix...)
		}
		out = append(out, line...)
		p.midLine = line[len(line)-1] != '\n'
	}
	if _, err := p.w.Write(out); err != nil {
		return 0, err
	}
	return len(b), nil
}
