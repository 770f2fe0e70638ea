package node

import (
	"fmt"
	"sort"
	"strings"

	"github.com/ledgerd/ledgerd/internal/ledger"
)

// StateDumps returns the latest and the committed state of n as text, for
// comparisons.
func StateDumps(n *Node) (latest, committed string) {
	n.state.mu.RLock()
	defer n.state.mu.RUnlock()
	return n.state.head.dump(), n.state.base.dump()
}

// ReplayCommitted replays n's committed ledger into a fresh state and
// returns it as text: what the state must equal once nothing is pending.
func ReplayCommitted(n *Node) (string, error) {
	fresh := newState()
	committed := n.CommittedSeqno()
	for s := uint64(1); s <= committed; s++ {
		raw, err := n.ledger.Read(s)
		if err != nil {
			return "", err
		}
		e, err := ledger.ParseEntry(raw)
		if err != nil {
			return "", err
		}
		aead, err := n.keys.AEAD(fresh.base.rekeys, s)
		if err != nil {
			return "", err
		}
		w, err := writesOf(e, aead)
		if err != nil {
			return "", err
		}
		fresh.base.apply(TxID{View: e.View, Seqno: s}, w)
	}
	return fresh.base.dump(), nil
}

func (v *stateVersion) dump() string {
	var b strings.Builder
	fmt.Fprintf(&b, "seqno %d\n", v.seqno)
	var names []string
	for name := range v.maps {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		var keys []string
		for k := range v.maps[name] {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			fmt.Fprintf(&b, "%s[%q] = %q\n", name, k, v.maps[name][k])
		}
	}
	var ids []string
	for id := range v.collections {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	for _, id := range ids {
		fmt.Fprintf(&b, "collection %q: %+v\n", id, v.collections[id])
	}
	return b.String()
}

// LedgerBytes returns the ledger bytes of seqno on n (for comparing the
// committed prefixes of nodes).
func LedgerBytes(n *Node, seqno uint64) ([]byte, error) { return n.ledger.Read(seqno) }

// CommittedState returns the seqno of n's committed state and the state as
// text, read together.
func CommittedState(n *Node) (uint64, string) {
	n.state.mu.RLock()
	defer n.state.mu.RUnlock()
	return n.state.base.seqno, n.state.base.dump()
}

// LedgerFirst returns the first seqno n's ledger holds (S+1 on a node
// started from a snapshot at S).
func LedgerFirst(n *Node) uint64 { return n.ledger.FirstSeqno() }

// SnapshotBase returns the seqno of the snapshot n started from or
// installed (0: it holds the whole ledger).
func SnapshotBase(n *Node) uint64 { return n.baseSeqno() }
