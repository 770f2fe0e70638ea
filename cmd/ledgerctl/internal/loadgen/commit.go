package loadgen

import (
	"container/heap"
	"sync"
	"time"
)

// pendingAppend is a measured append not yet seen Committed.
type pendingAppend struct {
	id    txid
	start time.Time
}

// pendingHeap orders pending appends by seqno.
type pendingHeap []pendingAppend

func (h pendingHeap) Len() int           { return len(h) }
func (h pendingHeap) Less(i, j int) bool { return h[i].id.Seqno < h[j].id.Seqno }
func (h pendingHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *pendingHeap) Push(x any)        { *h = append(*h, x.(pendingAppend)) }
func (h *pendingHeap) Pop() any {
	old := *h
	p := old[len(old)-1]
	*h = old[:len(old)-1]
	return p
}

// commitTracker resolves appends as the committed transaction id, observed
// by the poller, passes them. An append whose seqno is committed in its own
// view is Committed; one whose view differs from the committed id's is
// uncertain (Committed or rolled back) until its own status is asked.
type commitTracker struct {
	mu        sync.Mutex
	pending   pendingHeap
	known     txid // highest committed id observed
	lat       []time.Duration
	uncertain []pendingAppend
	invalid   int
}

// add registers an append that answered at now.
func (t *commitTracker) add(id txid, start, now time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	p := pendingAppend{id, start}
	if id.Seqno <= t.known.Seqno {
		t.resolveLocked(p, now)
		return
	}
	heap.Push(&t.pending, p)
}

// observe records that committed was the committed id at or before at.
func (t *commitTracker) observe(committed txid, at time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if committed.Seqno <= t.known.Seqno {
		return
	}
	t.known = committed
	for len(t.pending) > 0 && t.pending[0].id.Seqno <= committed.Seqno {
		t.resolveLocked(heap.Pop(&t.pending).(pendingAppend), at)
	}
}

func (t *commitTracker) resolveLocked(p pendingAppend, at time.Time) {
	if p.id.View == t.known.View {
		t.lat = append(t.lat, at.Sub(p.start))
	} else {
		t.uncertain = append(t.uncertain, p)
	}
}

// takeUncertain returns the appends whose status must be asked.
func (t *commitTracker) takeUncertain() []pendingAppend {
	t.mu.Lock()
	defer t.mu.Unlock()
	u := t.uncertain
	t.uncertain = nil
	return u
}

// settle records the status of an uncertain append.
func (t *commitTracker) settle(p pendingAppend, state string, at time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	switch state {
	case "Committed":
		t.lat = append(t.lat, at.Sub(p.start))
	case "Invalid":
		t.invalid++
	default: // not decided yet: ask again
		t.uncertain = append(t.uncertain, p)
	}
}

// outstanding is the number of appends not yet resolved.
func (t *commitTracker) outstanding() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.pending) + len(t.uncertain)
}
