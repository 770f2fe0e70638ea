package api_test

import (
	"fmt"
	"sync"
	"testing"

	"github.com/ledgerd/ledgerd/internal/api"
)

// A writing function runs once per :execute (its reads unchanged when its
// writes apply), and its result and state are those of that one run;
// concurrent executions that conflict still lose no update (the one whose
// reads changed runs again, under the executor's lock).
func TestWritingFunctionRunsOnce(t *testing.T) {
	e := newEnv(t, envOptions{})
	code := `// ` + t.Name() + `
export function main() {
  const t = ccf.kv["once"];
  const k = ccf.strToBuf("n");
  const n = t.has(k) ? Number(ccf.bufToStr(t.get(k))) : 0;
  t.set(k, ccf.strToBuf(String(n + 1)));
  return n + 1;
}
export function read() {
  const v = ccf.kv["once"].get(ccf.strToBuf("n"));
  return v === undefined ? 0 : Number(ccf.bufToStr(v));
}`
	putUDF(t, e, "once", code)
	before := api.FunctionRuns(code)
	for i := 1; i <= 3; i++ {
		x, r := execUDF(e, e.contributor, "once", nil)
		if x.Status != "Succeeded" || x.Result.ReturnValue != fmt.Sprint(i) {
			t.Fatalf("execution %d = %+v", i, x)
		}
		if r.txid().Seqno == 0 {
			t.Fatalf("execution %d wrote no transaction", i)
		}
	}
	if runs := api.FunctionRuns(code) - before; runs != 3 {
		t.Errorf("3 executions ran the function %d times; want 3 (once each)", runs)
	}
	// A read-only run: once, and no transaction.
	before = api.FunctionRuns(code)
	if x, _ := execUDF(e, e.contributor, "once", map[string]any{"exportedFunctionName": "read"}); x.Result.ReturnValue != "3" {
		t.Errorf("read = %+v; want 3", x)
	}
	if runs := api.FunctionRuns(code) - before; runs != 1 {
		t.Errorf("a read-only execution ran %d times; want 1", runs)
	}

	// Concurrent increments: each is counted once in the state.
	const n = 12
	var wg sync.WaitGroup
	got := make(chan string, n)
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			x, _ := execUDF(e, e.contributor, "once", nil)
			if x.Result != nil {
				got <- x.Result.ReturnValue
			}
		}()
	}
	wg.Wait()
	close(got)
	seen := map[string]bool{}
	for v := range got {
		if seen[v] {
			t.Errorf("two concurrent executions both answered %s (a lost update)", v)
		}
		seen[v] = true
	}
	if x, _ := execUDF(e, e.contributor, "once", map[string]any{"exportedFunctionName": "read"}); x.Result.ReturnValue != fmt.Sprint(3+n) {
		t.Errorf("after %d concurrent increments the counter is %s; want %d", n, x.Result.ReturnValue, 3+n)
	}
}
