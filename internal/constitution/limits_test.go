package constitution

import (
	"context"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"
)

// hostile builds a constitution whose apply first writes to the KV, then
// runs body; validate and resolve run body too.
func hostile(body string) string {
	return `
function bad() { ` + body + ` }
export function validate(input) { bad(); return { valid: true }; }
export function resolve(proposal, proposerId, votes) { bad(); return "Accepted"; }
export function apply(proposal, proposalId) {
  ccf.kv["public:ledgerd.users"].set(ccf.strToBuf("mallory"), ccf.jsonCompatibleToBuf({ assignedRole: "Administrator" }));
  bad();
}
`
}

var hostileCases = map[string]struct {
	body   string
	limits Limits
	want   error // nil: a *ScriptError
}{
	"throw":     {`throw new Error("no way");`, Limits{Time: 5 * time.Second}, nil},
	"loop":      {`for (;;) {}`, Limits{Time: 100 * time.Millisecond}, ErrTimeLimit},
	"recursion": {`function f(n) { return f(n + 1) + 1; } f(0);`, Limits{Time: 5 * time.Second}, ErrStackLimit},
	// The time limit is far off, so only the memory limit can stop it (the
	// error says which limit did; how long that takes is not asserted: a
	// doubling string overshoots by a few doublings, gigabytes copied, slow
	// under -race on a loaded machine).
	"allocation": {`let a = []; for (;;) a.push(new Array(1e6));`, Limits{Time: 10 * time.Minute, Memory: 64 << 20}, ErrMemoryLimit},
	"string":     {`let s = "x"; for (;;) s = s + s + "y";`, Limits{Time: 10 * time.Minute, Memory: 64 << 20}, ErrMemoryLimit},
}

func checkErr(t *testing.T, what string, err, want error, took, bound time.Duration) {
	t.Helper()
	if want == nil {
		var se *ScriptError
		if !errors.As(err, &se) || !strings.Contains(se.Message, "no way") {
			t.Errorf("%s: err = %v; want a ScriptError with the exception", what, err)
		}
	} else if !errors.Is(err, want) {
		t.Errorf("%s: err = %v; want %v", what, err, want)
	}
	if took > bound {
		t.Errorf("%s: took %v; want under %v", what, took, bound)
	}
}

func TestHostileConstitution(t *testing.T) {
	for name, tc := range hostileCases {
		t.Run(name, func(t *testing.T) {
			c, err := Load(hostile(tc.body), tc.limits)
			if err != nil {
				t.Fatalf("Load: %v", err)
			}
			ctx := context.Background()
			kv := members(map[string]string{"m1": "Active"})
			before := snapshot(kv)
			// A loop ends soon after its time limit; the memory cases end
			// with ErrMemoryLimit long before theirs (10 min), which proves
			// the memory limit stopped them, so their time is not bounded.
			bound := time.Duration(1<<63 - 1)
			if tc.want == ErrTimeLimit {
				bound = tc.limits.Time + 2*time.Second
			}

			start := time.Now()
			effects, err := c.Apply(ctx, kv, []byte(`{"actions":[]}`), "p")
			checkErr(t, "apply", err, tc.want, time.Since(start), bound)
			if effects != nil {
				t.Errorf("apply: effects %v from a failed call", effects)
			}
			if got := snapshot(kv); !reflect.DeepEqual(got, before) {
				t.Errorf("apply changed the KV: %v; was %v", got, before)
			}

			start = time.Now()
			_, err = c.Validate(ctx, []byte(`{}`))
			checkErr(t, "validate", err, tc.want, time.Since(start), bound)

			start = time.Now()
			_, err = c.Resolve(ctx, kv, []byte(`{}`), "m1", nil)
			checkErr(t, "resolve", err, tc.want, time.Since(start), bound)

			start = time.Now()
			_, err = RunBallot(ctx, tc.limits, kv, "export function vote(proposal, proposerId) { "+tc.body+" return true; }", []byte(`{}`), "m1")
			checkErr(t, "ballot", err, tc.want, time.Since(start), bound)
		})
	}
}

// JavaScript cannot catch its way out of a limit.
func TestLimitsUncatchable(t *testing.T) {
	for name, body := range map[string]string{
		"loop":      `for (;;) { try { for (;;) {} } catch (e) {} }`,
		"recursion": `function f() { try { return f(); } catch (e) { return f(); } } f();`,
	} {
		start := time.Now()
		_, err := RunBallot(context.Background(), Limits{Time: 200 * time.Millisecond}, nil,
			"export function vote() { "+body+" }", nil, "m")
		if !errors.Is(err, ErrTimeLimit) && !errors.Is(err, ErrStackLimit) {
			t.Errorf("%s: err = %v; want a limit error", name, err)
		}
		if took := time.Since(start); took > 5*time.Second {
			t.Errorf("%s: took %v", name, took)
		}
	}
}

// A canceled context stops a call.
func TestContextCancel(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		_, err := RunBallot(ctx, Limits{Time: time.Minute}, nil, "export function vote() { for (;;) {} }", nil, "m")
		done <- err
	}()
	cancel()
	select {
	case err := <-done:
		if !errors.Is(err, ErrCanceled) || !errors.Is(err, context.Canceled) {
			t.Errorf("err = %v; want ErrCanceled wrapping context.Canceled", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the call did not stop when its context was canceled")
	}
}

// A module whose top-level code loops is bounded at Load.
func TestLoadBounded(t *testing.T) {
	_, err := Load("for (;;) {}\n"+hostile(""), Limits{Time: 100 * time.Millisecond})
	if !errors.Is(err, ErrTimeLimit) {
		t.Errorf("Load = %v; want ErrTimeLimit", err)
	}
}
