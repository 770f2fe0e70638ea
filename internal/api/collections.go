package api

import (
	"context"
	"net/http"
	"sync"

	"github.com/ledgerd/ledgerd/internal/node"
)

// collectionGuard enforces the limit on the number of collections. A
// collection exists in the state once its first entry is committed, so
// writes that may create one are counted in a pending set until then:
// concurrent first writes to distinct new collections cannot together
// exceed the limit.
type collectionGuard struct {
	node *node.Node
	max  int

	mu sync.Mutex
	// pending holds the collections that are not yet in the committed
	// state but may be created by admitted writes.
	pending map[string]*pendingCollection
}

// pendingCollection is the writes that may create one collection.
type pendingCollection struct {
	// submitting counts admitted writes not yet submitted to the node.
	submitting int
	// writes are the futures of submitted writes.
	writes []*node.Future
}

func newCollectionGuard(n *node.Node, max int) *collectionGuard {
	return &collectionGuard{node: n, max: max, pending: map[string]*pendingCollection{}}
}

// reservation is the right to write one entry to a collection. Exactly one
// of submitted and cancel must be called.
type reservation struct {
	g  *collectionGuard
	id string // "" when the collection already existed
}

// reserve admits a write to collection id, or refuses it if it would
// create a collection beyond the limit.
func (g *collectionGuard) reserve(id string) (reservation, error) {
	st := g.node.State()
	if _, ok := st.Collection(id); ok {
		return reservation{}, nil
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	g.prune()
	p, ok := g.pending[id]
	if !ok {
		if _, ok := st.Collection(id); ok {
			return reservation{}, nil
		}
		if st.NumCollections()+len(g.pending) >= g.max {
			return reservation{}, newError(http.StatusBadRequest, codeCollectionLimit,
				"The ledger already has the maximum of %d collections; write to an existing collection.", g.max)
		}
		p = &pendingCollection{}
		g.pending[id] = p
	}
	p.submitting++
	return reservation{g: g, id: id}, nil
}

// submitted records the future of the admitted write.
func (r reservation) submitted(f *node.Future) {
	if r.id == "" {
		return
	}
	r.g.mu.Lock()
	defer r.g.mu.Unlock()
	p := r.g.pending[r.id]
	p.submitting--
	p.writes = append(p.writes, f)
}

// cancel releases a reservation whose write was not submitted.
func (r reservation) cancel() {
	if r.id == "" {
		return
	}
	r.g.mu.Lock()
	defer r.g.mu.Unlock()
	r.g.pending[r.id].submitting--
	r.g.prune()
}

// prune forgets pending collections that now exist in the state, and
// those that no admitted write can still create (none is being submitted,
// and every submitted one failed or was rolled back). Called with mu held.
func (g *collectionGuard) prune() {
	st := g.node.State()
	for id, p := range g.pending {
		if _, ok := st.Collection(id); ok {
			delete(g.pending, id)
			continue
		}
		live := p.writes[:0]
		for _, f := range p.writes {
			if g.mayCreate(f) {
				live = append(live, f)
			}
		}
		clear(p.writes[len(live):])
		p.writes = live
		if p.submitting == 0 && len(p.writes) == 0 {
			delete(g.pending, id)
		}
	}
}

// mayCreate reports whether the write of future f may still add its entry
// to the state.
func (g *collectionGuard) mayCreate(f *node.Future) bool {
	select {
	case <-f.Done():
	default:
		return true
	}
	id, err := f.Wait(context.Background()) // f is done: Wait returns at once
	if err != nil {
		return false
	}
	return g.node.Status(id) != node.StatusInvalid
}
