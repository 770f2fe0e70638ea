package api_test

import (
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/ledgerd/ledgerd/internal/api"
)

// Hooks of TestWritingHookRunsOnce: count increments a counter
// (read-modify-write), copy records in "seen" the counter it sees (so the
// pre-hook's write), gate rejects the append while "closed" is set, read
// answers the counter and what copy saw.
func hookOnceCode(name string) (count, copyHook, gate, read string) {
	count = `// ` + name + ` count
export function main() {
  const t = ccf.kv["hookonce"];
  const k = ccf.strToBuf("n");
  const n = t.has(k) ? Number(ccf.bufToStr(t.get(k))) : 0;
  t.set(k, ccf.strToBuf(String(n + 1)));
}`
	copyHook = `// ` + name + ` copy
export function main() {
  const t = ccf.kv["hookonce"];
  t.set(ccf.strToBuf("seen"), t.get(ccf.strToBuf("n")));
}`
	gate = `// ` + name + ` gate
export function main() {
  if (ccf.kv["hookonce"].has(ccf.strToBuf("closed"))) throw new Error("gate closed");
}`
	read = `// ` + name + ` read
export function main() {
  const t = ccf.kv["hookonce"];
  const s = (k) => { const v = t.get(ccf.strToBuf(k)); return v === undefined ? "-" : ccf.bufToStr(v); };
  return s("n") + "/" + s("seen");
}
export function close() { ccf.kv["hookonce"].set(ccf.strToBuf("closed"), ccf.strToBuf("1")); }
export function open() { ccf.kv["hookonce"].delete(ccf.strToBuf("closed")); }
export function bump() { count(); }
` + strings.Replace(count, "export function main", "function count", 1)
	return
}

// installHookOnce installs hookOnceCode's functions for test t and returns
// the sources of the three hooks (for api.FunctionRuns), the append path,
// and the body of an append with count and copy as pre-hooks and gate as
// post-hook.
func installHookOnce(t *testing.T, e *env) (count, copyHook, gate, path string, body func(contents string) map[string]any) {
	t.Helper()
	count, copyHook, gate, read := hookOnceCode(t.Name())
	putUDF(t, e, "count", count)
	putUDF(t, e, "copy", copyHook)
	putUDF(t, e, "gate", gate)
	putUDF(t, e, "read", read)
	path = q("/app/transactions", v2024, "collectionId", "hookonce")
	body = func(contents string) map[string]any {
		return map[string]any{"contents": contents,
			"preHooks":  []any{hook("count"), hook("copy")},
			"postHooks": []any{hook("gate")}}
	}
	return count, copyHook, gate, path, body
}

// A writing hook runs once per append (its reads unchanged when the entry's
// transaction is written), the whole chain in order, each hook seeing the
// writes of those before it; a concurrent write that changes what the
// hooks read makes them run again under the executor's lock, against the
// state the transaction applies to (no lost update, and a hook that now
// rejects writes nothing).
func TestWritingHookRunsOnce(t *testing.T) {
	e := newEnv(t, envOptions{})
	count, copyHook, gate, path, body := installHookOnce(t, e)
	state := func() string {
		t.Helper()
		x, _ := execUDF(e, e.contributor, "read", nil)
		if x.Result == nil {
			t.Fatalf("read = %+v", x)
		}
		return x.Result.ReturnValue
	}
	call := func(export string) {
		t.Helper()
		if x, _ := execUDF(e, e.contributor, "read", map[string]any{"exportedFunctionName": export}); x.Status != "Succeeded" {
			t.Fatalf("%s = %+v", export, x)
		}
	}
	runs := func() [3]uint64 {
		return [3]uint64{api.FunctionRuns(count), api.FunctionRuns(copyHook), api.FunctionRuns(gate)}
	}
	current := func() string {
		return fmt.Sprint(e.reader.get(q("/app/transactions/current", v2024, "collectionId", "hookonce")).object()["contents"])
	}

	before := runs()
	for i := 1; i <= 3; i++ {
		e.contributor.post(path, body(fmt.Sprint("entry ", i))).expect(200, "")
	}
	if got := runs(); got != [3]uint64{before[0] + 3, before[1] + 3, before[2] + 3} {
		t.Errorf("3 appends ran the hooks (count, copy, gate) %v times; want 3 each", [3]uint64{got[0] - before[0], got[1] - before[1], got[2] - before[2]})
	}
	if got := state(); got != "3/3" {
		t.Errorf("counter/seen after 3 appends = %s; want 3/3 (copy sees count's write)", got)
	}

	// A rejecting post-hook after a writing pre-hook: 400, nothing written.
	call("close")
	e.contributor.post(path, body("rejected")).expect(400, "UserDefinedFunctionFailed")
	if got := state(); got != "3/3" || current() != "entry 3" {
		t.Errorf("after a rejected append: counter/seen %s, current entry %q; want 3/3, entry 3", got, current())
	}
	call("open")

	// A concurrent write to the counter between the hooks' run and the
	// entry's transaction: the hooks run again, and count both.
	api.SetHooksWrote(func() { api.SetHooksWrote(nil); call("bump") })
	t.Cleanup(func() { api.SetHooksWrote(nil) })
	before = runs()
	e.contributor.post(path, body("entry 4")).expect(200, "")
	if got := state(); got != "5/5" {
		t.Errorf("after a conflicting append: counter/seen %s; want 5/5 (the bump and the append)", got)
	}
	if got := runs(); got[0]-before[0] != 2 {
		t.Errorf("a conflicting append ran count %d times; want 2 (once more under the lock)", got[0]-before[0])
	}

	// The gate closes between the hooks' run (which it passed) and the
	// entry's transaction: the hooks run again, the gate rejects, nothing
	// is written.
	api.SetHooksWrote(func() { api.SetHooksWrote(nil); call("close") })
	e.contributor.post(path, body("entry 5")).expect(400, "UserDefinedFunctionFailed")
	if got := state(); got != "5/5" || current() != "entry 4" {
		t.Errorf("after an append the closed gate refused under the lock: counter/seen %s, current entry %q; want 5/5, entry 4", got, current())
	}
	call("open")
}

// Concurrent appends whose writing hooks increment one counter lose no
// update: the hooks of an append whose reads another append changed run
// again under the executor's lock.
func TestWritingHooksConcurrentAppends(t *testing.T) {
	e := newEnv(t, envOptions{})
	_, _, _, path, body := installHookOnce(t, e)
	// Concurrent appends: each is counted once. (One whose hooks run again
	// under the lock may exceed the bound there (lockedCap) on a loaded
	// machine: it is refused and writes nothing, so it is not counted.)
	const n = 12
	var wg sync.WaitGroup
	var mu sync.Mutex
	ok := 0
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := e.contributor.do("POST", path, body(fmt.Sprint("concurrent ", i)))
			switch {
			case r.status == 200:
				mu.Lock()
				ok++
				mu.Unlock()
			case r.status == 400 && strings.Contains(r.errorMessage(), "under the executor's lock took longer"):
			default:
				t.Errorf("concurrent append %d: %d %s", i, r.status, r.body)
			}
		}()
	}
	wg.Wait()
	if ok == 0 {
		t.Fatalf("none of %d concurrent appends succeeded", n)
	}
	x, _ := execUDF(e, e.contributor, "read", nil)
	if got, want := x.Result.ReturnValue, fmt.Sprintf("%d/%d", ok, ok); got != want {
		t.Errorf("after %d successful concurrent appends counter/seen = %s; want %s", ok, got, want)
	}
}
