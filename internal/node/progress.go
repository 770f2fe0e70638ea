package node

import "time"

// replayFlushLeaves is how often a replay flushes the Merkle tree's write
// buffer, so that rebuilding a whole tree does not hold it in memory.
const replayFlushLeaves = 1 << 16

// A replay reports the progress of a start-up replay of the ledger: a line
// when it starts, one every progressInterval and one when it ends, with
// what it rebuilds, the seqnos done and the rate, so that an operator
// waiting for a node to open sees why and for how long.
type replay struct {
	n          *Node
	what       string
	from, to   uint64
	start, log time.Time
}

const progressInterval = 2 * time.Second

// startReplay starts reporting a replay of the ledger's seqnos [from, to].
// An empty range reports nothing.
func (n *Node) startReplay(what string, from, to uint64) *replay {
	p := &replay{n: n, what: what, from: from, to: to, start: time.Now()}
	p.log = p.start
	if to >= from {
		n.log.Info("replaying the ledger", "rebuilding", what, "from", from, "to", to, "entries", to-from+1)
	}
	return p
}

// at notes that seqno s is being replayed.
func (p *replay) at(s uint64) {
	if s%4096 != 0 {
		return
	}
	if now := time.Now(); now.Sub(p.log) >= progressInterval {
		p.log = now
		done := s - p.from
		p.n.log.Info("replaying the ledger", "rebuilding", p.what, "seqno", s, "to", p.to,
			"percent", 100*done/(p.to-p.from+1), "entries_per_s", int(float64(done)/now.Sub(p.start).Seconds()))
	}
}

// done reports the end of the replay.
func (p *replay) done() {
	if p.to >= p.from {
		p.n.log.Info("replayed the ledger", "rebuilt", p.what, "entries", p.to-p.from+1,
			"seconds", time.Since(p.start).Seconds())
	}
}
