package main

import (
	"syscall"
	"testing"
	"time"
)

// isPrimary asks node i whether it is the primary (/node/network/nodes/self).
func (w *network3) isPrimary(t *testing.T, i int) bool {
	t.Helper()
	status, _, body := call(t, w.admin[i], "GET", "https://"+w.procs[i].addr+"/node/network/nodes/self", "")
	return status == 200 && body["primary"] == true
}

// txStatus is node i's CCF status of txid (/node/tx: Unknown, Pending,
// Committed or Invalid; "" if it does not answer 200).
func (w *network3) txStatus(t *testing.T, i int, txid string) string {
	t.Helper()
	status, _, body := call(t, w.admin[i], "GET", "https://"+w.procs[i].addr+"/node/tx?transaction_id="+txid, "")
	if status != 200 {
		return ""
	}
	s, _ := body["status"].(string)
	return s
}

// TestMinorityPrimaryCommitsNothing: the two backups of a three-node
// network are stopped (SIGSTOP: to the primary, a partition that leaves it
// alone). The primary may still accept writes, but commits none of them,
// and steps down once it has not heard a quorum for an election timeout
// (CheckQuorum). When the backups resume, the network converges: a write
// commits again, and every write the isolated primary accepted ends
// Committed with its contents on every node, or Invalid — never lost after
// being reported Committed, never Committed on one node and not another.
func TestMinorityPrimaryCommitsNothing(t *testing.T) {
	if testing.Short() {
		t.Skip("starts three ledgerd processes")
	}
	w := startNetwork(t)
	all := func(int) bool { return true }
	first, primary := w.appendOnPrimary(t, "before", all)
	for i := range w.procs {
		w.waitReadable(t, i, first, "before")
	}
	var stopped []int
	for i := range w.procs {
		if i != primary {
			if err := w.procs[i].cmd.Process.Signal(syscall.SIGSTOP); err != nil {
				t.Fatal(err)
			}
			stopped = append(stopped, i)
		}
	}
	resumed := false
	resume := func() {
		if !resumed {
			for _, i := range stopped {
				w.procs[i].cmd.Process.Signal(syscall.SIGCONT)
			}
			resumed = true
		}
	}
	defer resume()

	// Writes to the isolated primary, until it steps down.
	base := "https://" + w.procs[primary].addr
	var accepted []string
	deadline := time.Now().Add(15 * time.Second)
	for w.isPrimary(t, primary) {
		if time.Now().After(deadline) {
			t.Fatal("the isolated primary did not step down")
		}
		status, h, _ := call(t, w.admin[primary], "POST", base+"/app/transactions?api-version=2022-05-13", `{"contents":"isolated"}`)
		if status == 200 {
			accepted = append(accepted, h.Get("x-ms-ccf-transaction-id"))
		}
		time.Sleep(20 * time.Millisecond)
	}
	// Nothing it accepted while alone is committed.
	for _, id := range accepted {
		if s := w.txStatus(t, primary, id); s == "Committed" {
			t.Fatalf("%s was committed by a primary without a quorum", id)
		}
	}
	t.Logf("the isolated primary accepted %d writes and stepped down", len(accepted))

	resume()
	after, _ := w.appendOnPrimary(t, "healed", all)
	for i := range w.procs {
		w.waitReadable(t, i, after, "healed")
	}
	// Every write the isolated primary accepted ends the same on every node.
	for _, id := range accepted {
		var final string
		deadline := time.Now().Add(15 * time.Second)
		for {
			final = w.txStatus(t, 0, id)
			if final == "Committed" || final == "Invalid" || time.Now().After(deadline) {
				break
			}
			time.Sleep(20 * time.Millisecond)
		}
		if final != "Committed" && final != "Invalid" {
			t.Fatalf("%s is %q after the partition healed", id, final)
		}
		for i := range w.procs {
			got := ""
			for d := time.Now().Add(15 * time.Second); time.Now().Before(d); time.Sleep(20 * time.Millisecond) {
				if got = w.txStatus(t, i, id); got == final {
					break
				}
			}
			if got != final {
				t.Fatalf("%s is %s on node 0 but %s on node %d", id, final, got, i)
			}
			if final == "Committed" {
				readEntry(t, w.admin[i], "https://"+w.procs[i].addr, id, "isolated")
			}
		}
	}
}
