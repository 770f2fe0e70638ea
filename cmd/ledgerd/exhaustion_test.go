package main

import (
	"bufio"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ledgerd/ledgerd/internal/testbin"
	"github.com/ledgerd/ledgerd/internal/testfs"
)

// Issue 9 item 6: a node limited to 256 file descriptors, flooded with
// idle TLS connections that each made one unauthenticated /healthz, goes on
// taking writes through chunk rollovers, and every one of them survives a
// restart.
func TestDescriptorExhaustion(t *testing.T) {
	bin := testbin.Command(t, "", "github.com/ledgerd/ledgerd/cmd/ledgerd")
	data := filepath.Join(t.TempDir(), "data")
	limit := []string{"sh", "-c", `ulimit -n 256 && exec "$@"`, "sh"}
	p := startWrapped(t, limit, bin, "--data", data, "--chunk-size", "4096")
	c := httpsClient(t, data)
	base := "https://" + p.addr

	// 400 connections at once, each making one /healthz and staying open;
	// whatever is not answered within 3s counts as refused.
	var mu sync.Mutex
	var flood []net.Conn
	defer func() {
		for _, f := range flood {
			f.Close()
		}
	}()
	opened := 0
	var wg sync.WaitGroup
	for range 400 {
		wg.Go(func() {
			d := &net.Dialer{Timeout: 3 * time.Second}
			conn, err := tls.DialWithDialer(d, "tcp", p.addr, &tls.Config{InsecureSkipVerify: true, NextProtos: []string{"http/1.1"}})
			if err != nil {
				return
			}
			mu.Lock()
			flood = append(flood, conn)
			mu.Unlock()
			conn.SetDeadline(time.Now().Add(3 * time.Second))
			if _, err := io.WriteString(conn, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
				return
			}
			if resp, err := http.ReadResponse(bufio.NewReader(conn), nil); err == nil {
				resp.Body.Close()
				mu.Lock()
				opened++
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	t.Logf("%d flood connections answered /healthz", opened)

	var ids []string
	for i := range 60 {
		status, h, body := call(t, c, "POST", base+"/app/transactions?api-version=2022-05-13",
			fmt.Sprintf(`{"contents":"%04d %s"}`, i, strings.Repeat("x", 1000)))
		if status != 200 {
			t.Fatalf("append %d during the flood: %d %v\n%s", i, status, body, p.stderr)
		}
		ids = append(ids, h.Get("x-ms-ccf-transaction-id"))
	}
	waitCommittedHTTP(t, c, base, ids[len(ids)-1])
	select {
	case err := <-p.done:
		t.Fatalf("ledgerd exited: %v\n%s", err, p.stderr)
	default:
	}
	if status, _, _ := call(t, c, "GET", base+"/healthz", ""); status != 200 {
		t.Fatalf("healthz after the flood: %d", status)
	}
	chunks, _ := filepath.Glob(filepath.Join(data, "ledger", "ledger_*-*"))
	if len(chunks) < 2 {
		t.Fatalf("%d completed chunks: the test did not roll over enough", len(chunks))
	}

	p.stop(t)

	p = startLedgerd(t, bin, "--data", data, "--chunk-size", "4096")
	base = "https://" + p.addr
	for i, id := range ids {
		readEntry(t, c, base, id, fmt.Sprintf("%04d ", i))
	}
	p.stop(t)
}

// Issue 9 item 7: on a full disk the node refuses writes with 507 and an ACL
// error body, serves reads and status, reports it in /node/state, resumes by
// itself once space returns, loses nothing committed, and its ledger
// passes an audit.
func TestDiskFull(t *testing.T) {
	bin := testbin.Command(t, "", "github.com/ledgerd/ledgerd/cmd/ledgerd")
	ctl := testbin.Command(t, "", "github.com/ledgerd/ledgerd/cmd/ledgerctl")
	disk := testfs.Tmpfs(t, 8<<20)
	data := filepath.Join(disk, "data")
	p := startLedgerd(t, bin, "--data", data, "--chunk-size", "65536")
	c := httpsClient(t, data)
	base := "https://" + p.addr
	post := func(contents string) (int, string, map[string]any) {
		status, h, body := call(t, c, "POST", base+"/app/transactions?api-version=2022-05-13", `{"contents":"`+contents+`"}`)
		return status, h.Get("x-ms-ccf-transaction-id"), body
	}
	var ids []string
	var want []string
	for i := range 20 {
		status, id, body := post(fmt.Sprintf("before %d", i))
		if status != 200 {
			t.Fatalf("append: %d %v", status, body)
		}
		ids, want = append(ids, id), append(want, fmt.Sprintf("before %d", i))
	}
	waitCommittedHTTP(t, c, base, ids[len(ids)-1])

	free := testfs.Fill(t, disk)
	big := strings.Repeat("y", 7000)
	var status int
	var body map[string]any
	for i := 0; ; i++ {
		var id string
		if status, id, body = post(big); status != 200 {
			break
		}
		ids, want = append(ids, id), append(want, big) // sequenced before the stall: Pending
		if i > 2000 {
			t.Fatal("2000 writes accepted on a full disk")
		}
	}
	if e, _ := body["error"].(map[string]any); status != 507 || e["code"] != "InsufficientStorage" || e["message"] == "" {
		t.Fatalf("append on a full disk: %d %v", status, body)
	}
	readEntry(t, c, base, ids[0], "before 0")
	if status, _, st := call(t, c, "GET", base+"/node/state", ""); status != 200 || st["writable"] != false || st["write_stall"] != "disk_full" {
		t.Fatalf("node state on a full disk: %d %v", status, st)
	}
	if status, _, _ := call(t, c, "GET", base+"/healthz", ""); status != 200 {
		t.Fatalf("healthz on a full disk: %d", status)
	}

	// A restart on the still-full disk: the node starts, serves what was
	// committed, and stalls again at its first Sync instead of dying. (The
	// Pending writes of the stall were never durable: they are lost.)
	p.stop(t)
	p = startLedgerd(t, bin, "--data", data, "--chunk-size", "65536")
	base = "https://" + p.addr
	ids, want = ids[:20], want[:20]
	for i := range ids {
		readEntry(t, c, base, ids[i], want[i])
	}
	for i := 0; ; i++ {
		if status, _, body = post(big); status == 507 {
			break
		}
		if status != 200 || i > 2000 {
			t.Fatalf("append after a restart on a full disk: %d %v", status, body)
		}
	}
	readEntry(t, c, base, ids[0], want[0])

	free()
	deadline := time.Now().Add(20 * time.Second)
	for {
		_, _, st := call(t, c, "GET", base+"/node/state", "")
		if st["writable"] == true {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("writes did not resume once space returned: %v", st)
		}
		time.Sleep(20 * time.Millisecond)
	}
	status, id, body := post("after")
	if status != 200 {
		t.Fatalf("append once space returned: %d %v", status, body)
	}
	ids, want = append(ids, id), append(want, "after")
	waitCommittedHTTP(t, c, base, id)
	for i, id := range ids {
		readEntry(t, c, base, id, want[i])
	}
	p.stop(t)

	if out, err := exec.Command(ctl, "audit", data).CombinedOutput(); err != nil {
		t.Fatalf("audit after the disk filled: %v\n%s", err, out)
	}
	p = startLedgerd(t, bin, "--data", data, "--chunk-size", "65536")
	base = "https://" + p.addr
	for i, id := range ids {
		readEntry(t, c, base, id, want[i])
	}
	p.stop(t)
}

// waitCommittedHTTP polls the status of txid until it is Committed.
func waitCommittedHTTP(t *testing.T, c *http.Client, base, txid string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		_, _, st := call(t, c, "GET", base+"/app/transactions/"+txid+"/status?api-version=2022-05-13", "")
		if st["state"] == "Committed" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s never committed: %v", txid, st)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// readEntry reads txid's entry and checks its contents start with prefix.
func readEntry(t *testing.T, c *http.Client, base, txid, prefix string) {
	t.Helper()
	status, _, body := call(t, c, "GET", base+"/app/transactions/"+txid+"?api-version=2022-05-13", "")
	entry, _ := body["entry"].(map[string]any)
	contents, _ := entry["contents"].(string)
	if status != 200 || body["state"] != "Ready" || !strings.HasPrefix(contents, prefix) {
		t.Fatalf("GET %s: %d %v", txid, status, body)
	}
}
