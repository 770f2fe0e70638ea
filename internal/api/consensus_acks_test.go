package api_test

import (
	"strconv"
	"testing"
)

// TestNodeConsensusAcks: on the primary, /node/consensus's acks give each
// backup's acknowledged seqno and the milliseconds since its last
// acknowledgement (CCF's ConsensusDetails acks: seqno, last_received_ms),
// from Raft's progress; a backup's acks are empty, as in CCF. A backup cut
// off stops acknowledging: its seqno stays behind the writes the other
// backup acknowledges, and its last_received_ms grows past the other's.
func TestNodeConsensusAcks(t *testing.T) {
	w := newCluster3(t)
	primary := w.envs[0]
	waitFor(t, "node 1 to lead", primary.node.IsPrimary)
	type ack struct {
		Seqno          *uint64 `json:"seqno"`
		LastReceivedMS *int64  `json:"last_received_ms"`
	}
	acksOf := func(e *env) map[string]ack {
		var c struct {
			Details struct {
				Acks map[string]ack `json:"acks"`
			} `json:"details"`
		}
		e.reader.get("/node/consensus").expect(200, "").decode(&c)
		for id, a := range c.Details.Acks {
			if a.Seqno == nil || a.LastReceivedMS == nil || *a.LastReceivedMS < 0 {
				t.Fatalf("ack of %s lacks CCF's fields or is negative: %+v", id, a)
			}
		}
		return c.Details.Acks
	}
	// The backups have no node record here: keyed by Raft id, unless a
	// record names them.
	key := func(i int) string {
		if _, ok := acksOf(primary)[w.envs[i].ids.Node.ID]; ok {
			return w.envs[i].ids.Node.ID
		}
		return "raft:" + strconv.Itoa(i+1)
	}
	first := primary.contributor.post(q("/app/transactions", v2022), map[string]string{"contents": "first"}).expect(200, "").txid()
	primary.commit(first)
	k2, k3 := key(1), key(2)
	waitFor(t, "both backups to acknowledge the first write", func() bool {
		a := acksOf(primary)
		return len(a) == 2 && a[k2].Seqno != nil && *a[k2].Seqno >= first.Seqno && a[k3].Seqno != nil && *a[k3].Seqno >= first.Seqno
	})
	for _, b := range w.envs[1:] {
		if a := acksOf(b); len(a) != 0 {
			t.Fatalf("a backup's acks: %+v, want none", a)
		}
	}

	w.net.mu.Lock()
	w.net.cut[3] = true
	w.net.mu.Unlock()
	second := primary.contributor.post(q("/app/transactions", v2022), map[string]string{"contents": "second"}).expect(200, "").txid()
	primary.commit(second)
	waitFor(t, "node 2 to acknowledge the second write", func() bool { return *acksOf(primary)[k2].Seqno >= second.Seqno })
	waitFor(t, "node 3's last acknowledgement to be 300 ms old", func() bool { return *acksOf(primary)[k3].LastReceivedMS >= 300 })
	a := acksOf(primary)
	if *a[k3].Seqno >= second.Seqno {
		t.Fatalf("the cut-off backup acknowledged %d >= %d: %+v", *a[k3].Seqno, second.Seqno, a)
	}
	if *a[k2].LastReceivedMS >= *a[k3].LastReceivedMS {
		t.Fatalf("node 2's last ack %d ms ago, the cut-off node 3's %d ms: %+v", *a[k2].LastReceivedMS, *a[k3].LastReceivedMS, a)
	}
}
