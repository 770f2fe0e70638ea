package ledger

import "sort"

// viewStart records that the entries from seqno on have the given view, until
// the next viewStart.
type viewStart struct{ seqno, view uint64 }

// viewHistory is the list of view changes of a ledger, one element per view,
// by seqno: what CCF calls the view history (the seqno at which each view
// starts, ccf-format.md §1.7). Views never decrease with the seqno, as Raft
// terms never decrease along a log.
type viewHistory []viewStart

// last returns the view of the last entry, or 0 for an empty history.
func (h viewHistory) last() uint64 {
	if len(h) == 0 {
		return 0
	}
	return h[len(h)-1].view
}

// observe records the view of the entry at seqno, appended after the others.
func (h *viewHistory) observe(seqno, view uint64) {
	if len(*h) == 0 || view > h.last() {
		*h = append(*h, viewStart{seqno, view})
	}
}

// at returns the view of the entry at seqno, which must be in the ledger.
func (h viewHistory) at(seqno uint64) uint64 {
	i := sort.Search(len(h), func(i int) bool { return h[i].seqno > seqno })
	if i == 0 {
		return 0
	}
	return h[i-1].view
}

// truncate forgets the views of the entries after last.
func (h *viewHistory) truncate(last uint64) {
	i := sort.Search(len(*h), func(i int) bool { return (*h)[i].seqno > last })
	*h = (*h)[:i]
}

// rebuildViews builds the view history on Open without reading every entry.
// Views do not decrease, so each view change is found by binary search over
// the entries' IVs: O(#views · log n) reads of 12 bytes (plus 4 for the
// entry's position when its chunk's table is not cached).
func (l *Ledger) rebuildViews() error {
	l.views = nil
	if l.last < l.first {
		return nil
	}
	lo := l.first
	view, err := l.probeView(lo)
	if err != nil {
		return err
	}
	l.views.observe(lo, view)
	lastView, err := l.probeView(l.last)
	if err != nil {
		return err
	}
	for view < lastView {
		// Find the first seqno in (lo, last] whose view exceeds view.
		a, b := lo+1, l.last
		for a < b {
			mid := a + (b-a)/2
			v, err := l.probeView(mid)
			if err != nil {
				return err
			}
			if v > view {
				b = mid
			} else {
				a = mid + 1
			}
		}
		if view, err = l.probeView(a); err != nil {
			return err
		}
		l.views.observe(a, view)
		lo = a
	}
	if view != lastView {
		return &CorruptionError{File: l.fileOf(l.last), Seqno: l.last, Offset: -1,
			Reason: "views decrease along the ledger"}
	}
	return nil
}

// ViewStart says that the entries from Seqno on have View, until the next
// ViewStart (CCF's view history).
type ViewStart struct {
	Seqno uint64 `json:"seqno"`
	View  uint64 `json:"view"`
}

// Views returns the view history of the entries up to last: one ViewStart
// per view, by seqno.
func (l *Ledger) Views(last uint64) []ViewStart {
	l.mu.RLock()
	defer l.mu.RUnlock()
	var out []ViewStart
	for _, v := range l.views {
		if v.seqno > last {
			break
		}
		out = append(out, ViewStart{Seqno: v.seqno, View: v.view})
	}
	return out
}
