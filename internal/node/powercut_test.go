package node_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ledgerd/ledgerd/internal/durable/simdisk"
	"github.com/ledgerd/ledgerd/internal/identity"
	"github.com/ledgerd/ledgerd/internal/node"
)

// TestPowerCut runs a node on a simulated disk (durable/simdisk) that, at a
// power cut, keeps only what was fsynced: file contents up to their last
// fsync, directory entries (creations, renames, removals) up to their
// directory's last fsync. Unlike TestCrashRecovery's SIGKILL, which leaves
// the page cache to reach the disk, it fails if any fsync the durability
// protocol relies on is missing.
//
// Each round appends under load from several goroutines and cuts the power
// at a disk operation drawn at random (from the next to the 1500th after),
// that is, between any two writes, fsyncs or renames of the protocol
// (ledger, Raft state, Merkle tree, signature index, chunk completions,
// checkpoints); then the node is reopened from the surviving disk. Every
// transaction ever reported Committed must then be Committed with its
// contents, and a sample of them must have receipts that verify; one
// answered (Pending) but lost in the cut must turn Invalid, never Committed
// with other contents.
func TestPowerCut(t *testing.T) {
	if testing.Short() {
		t.Skip("16 power cuts under load")
	}
	ids, err := identity.LoadOrCreate(t.TempDir(), identity.Options{DNSNames: []string{"localhost"}, IPs: []net.IP{net.IPv4(127, 0, 0, 1)}})
	if err != nil {
		t.Fatal(err)
	}
	open := func(disk *simdisk.Disk) (*node.Node, error) {
		return node.Open(node.Config{
			Dir: "/data", FS: disk, Identities: ids, Logger: quietLogger(),
			ChunkSize:   16 << 10, // chunk completions: renames and directory fsyncs
			SnapshotTxs: 300,      // checkpoints
		})
	}
	disk := simdisk.New(simdisk.Options{})
	committed := map[node.TxID]string{}
	answered := map[node.TxID]string{} // answered (Pending), not seen Committed
	lost := 0
	const rounds = 16
	for round := range rounds {
		n, err := open(disk)
		if err != nil {
			t.Fatalf("round %d: reopening after a power cut: %v", round, err)
		}
		checkCommitted(t, n, ids, committed, fmt.Sprintf("round %d", round))
		lost += checkAnswered(t, n, answered, committed, fmt.Sprintf("round %d", round))

		after := 1 + rand.IntN(1500)
		cut := disk.CutAtOp(disk.Ops() + after)
		ctx, cancel := context.WithCancel(context.Background())
		var mu sync.Mutex
		var wg sync.WaitGroup
		for w := range 4 {
			wg.Go(func() {
				for i := 0; ctx.Err() == nil; i++ {
					body := fmt.Sprintf("r%d-w%d-%d-%s", round, w, i, strings.Repeat("x", rand.IntN(1500)))
					f, err := n.SubmitEntry("power", []byte(body))
					if err != nil {
						return // the node stopped: the power is off
					}
					id, err := f.Wait(ctx)
					if err != nil {
						return
					}
					mu.Lock()
					answered[id] = body
					mu.Unlock()
					if n.WaitCommitted(ctx, id) != nil {
						return
					}
					mu.Lock()
					delete(answered, id)
					committed[id] = body
					mu.Unlock()
				}
			})
		}
		var survivor *simdisk.Disk
		select {
		case survivor = <-cut:
		case <-time.After(2 * time.Minute):
			t.Fatalf("round %d: the disk saw %d operations in 2 minutes, not %d", round, disk.Ops(), after)
		}
		cancel()
		n.Close() // fails: the disk is off
		wg.Wait()
		disk = survivor
	}
	n, err := open(disk)
	if err != nil {
		t.Fatalf("reopening after the last power cut: %v", err)
	}
	defer n.Close()
	checkCommitted(t, n, ids, committed, "at the end")
	lost += checkAnswered(t, n, answered, committed, "at the end")
	if len(committed) < rounds {
		t.Fatalf("only %d transactions committed in %d rounds", len(committed), rounds)
	}
	t.Logf("%d power cuts, %d transactions reported Committed, all found; %d answered Pending and lost, all Invalid",
		rounds, len(committed), lost)
}

// checkAnswered checks the transactions answered (Pending) but never seen
// Committed: each is now Committed with its contents (it is then moved to
// committed) or Invalid, never Committed with other contents. It returns
// how many were lost (Invalid), and forgets them.
func checkAnswered(t *testing.T, n *node.Node, answered, committed map[node.TxID]string, when string) int {
	t.Helper()
	lost := 0
	for id, body := range answered {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		err := n.WaitCommitted(ctx, id)
		cancel()
		switch {
		case errors.Is(err, node.ErrInvalid):
			lost++
		case err != nil:
			t.Fatalf("%s: %s was answered Pending, and is now neither Committed nor Invalid: %v", when, id, err)
		default:
			if e, err := n.Entry(id); err != nil || string(e.Contents) != body {
				t.Fatalf("%s: %s was answered Pending with %.20q, and is Committed with %.20q (%v)", when, id, body, e.Contents, err)
			}
			committed[id] = body
		}
		delete(answered, id)
	}
	return lost
}

// checkCommitted checks that every transaction in committed is Committed
// with its contents, and that receipts of up to 20 of them verify.
func checkCommitted(t *testing.T, n *node.Node, ids *identity.Identities, committed map[node.TxID]string, when string) {
	t.Helper()
	sampled := 0
	for id, body := range committed {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		err := n.WaitCommitted(ctx, id)
		cancel()
		if err != nil {
			t.Fatalf("%s: %s was reported Committed, and is now %v (%v)", when, id, n.Status(id), err)
		}
		e, err := n.Entry(id)
		if err != nil || string(e.Contents) != body {
			t.Fatalf("%s: %s was reported Committed with %.20q, now %.20q (%v)", when, id, body, e.Contents, err)
		}
		if sampled < 20 {
			verifyReceipt(t, n, ids, id)
			sampled++
		}
	}
}
