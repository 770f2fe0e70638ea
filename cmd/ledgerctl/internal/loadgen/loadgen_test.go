package loadgen

import (
	"slices"
	"testing"
	"time"
)

func TestParseTxID(t *testing.T) {
	for s, want := range map[string]txid{"2.15": {View: 2, Seqno: 15}, "1.1": {View: 1, Seqno: 1}} {
		if got, ok := parseTxID(s); !ok || got != want {
			t.Errorf("%q: %v %v", s, got, ok)
		}
	}
	for _, s := range []string{"", "2", "2.", ".2", "0.5", "2.0", "a.b", "2.-1"} {
		if _, ok := parseTxID(s); ok {
			t.Errorf("%q parsed", s)
		}
	}
}

func TestCommitTracker(t *testing.T) {
	var tr commitTracker
	t0 := time.Unix(1000, 0)
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }
	tr.add(txid{View: 2, Seqno: 10}, at(0), at(1))
	tr.add(txid{View: 2, Seqno: 12}, at(1), at(2))
	tr.add(txid{View: 2, Seqno: 11}, at(2), at(3))
	tr.observe(txid{View: 2, Seqno: 11}, at(10))
	if got := tr.outstanding(); got != 1 {
		t.Fatalf("outstanding %d, want 1", got)
	}
	if want := []time.Duration{10 * time.Millisecond, 8 * time.Millisecond}; !slices.Equal(tr.lat, want) {
		t.Fatalf("latencies %v, want %v", tr.lat, want)
	}
	tr.observe(txid{View: 2, Seqno: 9}, at(11)) // an older answer changes nothing
	// An append answered after its commit was observed resolves at once.
	tr.add(txid{View: 2, Seqno: 5}, at(12), at(14))
	if tr.lat[len(tr.lat)-1] != 2*time.Millisecond {
		t.Fatalf("late append: %v", tr.lat)
	}
	// An append of an older view than the committed id is uncertain until
	// its own status is known.
	tr.add(txid{View: 2, Seqno: 13}, at(15), at(16))
	tr.observe(txid{View: 3, Seqno: 20}, at(20))
	u := tr.takeUncertain()
	if len(u) != 2 || tr.outstanding() != 0 {
		t.Fatalf("uncertain %v, outstanding %d", u, tr.outstanding())
	}
	tr.settle(u[0], "Invalid", at(21))
	tr.settle(u[1], "Pending", at(21))
	if tr.invalid != 1 || tr.outstanding() != 1 {
		t.Fatalf("invalid %d, outstanding %d", tr.invalid, tr.outstanding())
	}
}

func TestSummarize(t *testing.T) {
	var d []time.Duration
	for i := 1000; i >= 1; i-- {
		d = append(d, time.Duration(i)*time.Millisecond)
	}
	s := summarize(d)
	if s.P50 != 500 || s.P99 != 990 || s.P999 != 999 || s.Max != 1000 || s.Mean != 500.5 {
		t.Errorf("%+v", s)
	}
	if (summarize(nil) != LatencySummary{}) {
		t.Error("empty summary")
	}
}
