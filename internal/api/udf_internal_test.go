package api

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/ledgerd/ledgerd/internal/appbundle"
	"github.com/ledgerd/ledgerd/internal/appjs"
	"github.com/ledgerd/ledgerd/internal/jsrt"
	"github.com/ledgerd/ledgerd/internal/tables"
)

// memState is a stateView over a jsrt.MemKV.
type memState struct{ jsrt.MemKV }

func (m memState) Range(table string, fn func(k, v []byte) bool) { m.ForEach(table, fn) }

// A run under the executor's lock is bounded by lockedCap, not by the
// function's own (much longer) time limit: code that was quick outside the
// lock cannot hold every other Exec for its whole limit.
func TestLockedRunCapped(t *testing.T) {
	st := memState{jsrt.NewMemKV()}
	st.Set(tables.UserFunctionsMap, []byte("loop"), []byte("export function main() { for (;;) {} }"))
	opts := appbundle.DefaultRuntimeOptions
	opts.MaxExecutionTimeMs = 20_000
	fns := []funcRun{{id: "loop", props: execProps{export: "main", options: opts}}}
	start := time.Now()
	_, _, failed, err := runFunctions(context.Background(), st, fns, nil, lockedCap(10*time.Millisecond))
	if !errors.Is(err, appjs.ErrTimeLimit) || failed != 0 {
		t.Fatalf("err = %v (failed %d); want the time limit", err, failed)
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("the capped run took %v; the cap is %v", took, lockedCap(10*time.Millisecond))
	}
}
