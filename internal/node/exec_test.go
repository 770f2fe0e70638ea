package node_test

import (
	"context"
	"errors"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/ledgerd/ledgerd/internal/ledger"
	"github.com/ledgerd/ledgerd/internal/node"
)

const counterMap = "public:test.counter"

func incrementCounter(st *node.State) ([]ledger.MapWrites, error) {
	v := 0
	if raw, ok := st.Get(counterMap, []byte("n")); ok {
		v, _ = strconv.Atoi(string(raw))
	}
	return []ledger.MapWrites{{Name: counterMap, Writes: []ledger.KV{{Key: []byte("n"), Value: []byte(strconv.Itoa(v + 1))}}}}, nil
}

// TestExecIsAtomic: concurrent read-decide-write transactions through the
// executor lose no update: each decides on the state that includes every
// earlier one's write.
func TestExecIsAtomic(t *testing.T) {
	n := openNode(t, t.TempDir(), nil)
	defer n.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	const writers = 40
	var wg sync.WaitGroup
	for range writers {
		wg.Go(func() {
			if _, err := n.Exec(ctx, node.UntilExecuted, incrementCounter); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if raw, _ := n.State().Get(counterMap, []byte("n")); string(raw) != strconv.Itoa(writers) {
		t.Fatalf("counter = %q after %d atomic increments", raw, writers)
	}

	id, err := n.Exec(ctx, node.UntilCommitted, incrementCounter)
	if err != nil {
		t.Fatal(err)
	}
	if st := n.Status(id); st != node.StatusCommitted {
		t.Fatalf("Exec(UntilCommitted) returned with %s %v", id, st)
	}

	last := n.LastSeqno()
	refused := errors.New("refused")
	if _, err := n.Exec(ctx, node.UntilCommitted, func(*node.State) ([]ledger.MapWrites, error) { return nil, refused }); err != refused {
		t.Fatalf("Exec with a refusing decide = %v, want its error", err)
	}
	if got, _ := n.Exec(ctx, node.UntilCommitted, func(*node.State) ([]ledger.MapWrites, error) { return nil, nil }); got != (node.TxID{}) {
		t.Fatalf("Exec with nothing to write returned %s", got)
	}
	if n.State().Applied() != last {
		t.Fatal("a refused Exec executed a transaction")
	}
}
