package jsrt

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/dop251/goja"
)

// A stopped watchdog never interrupts: the runtime can run on (a pooled
// runtime is reused after its call).
func TestWatchStopped(t *testing.T) {
	rt := goja.New()
	stop := Watch(context.Background(), rt, Limits{Time: time.Millisecond, SampleEvery: time.Millisecond}.WithDefaults())
	stop()
	deadline := time.Now().Add(50 * time.Millisecond)
	_ = rt.Set("more", func() bool { return time.Now().Before(deadline) })
	if _, err := rt.RunString(`while (more()) {}`); err != nil {
		t.Fatalf("interrupted after stop: %v", err)
	}
}

// The time limit and a canceled context interrupt with their errors.
func TestWatchInterrupts(t *testing.T) {
	rt := goja.New()
	stop := Watch(context.Background(), rt, Limits{Time: 20 * time.Millisecond}.WithDefaults())
	_, err := rt.RunString(`for (;;) {}`)
	stop()
	if !errors.Is(Interrupted(err), ErrTimeLimit) {
		t.Errorf("loop: %v", err)
	}
	rt = goja.New()
	ctx, cancel := context.WithCancel(context.Background())
	stop = Watch(ctx, rt, Limits{Time: time.Minute}.WithDefaults())
	_ = rt.Set("cancel", func() { cancel() })
	_, err = rt.RunString(`cancel(); for (;;) {}`)
	stop()
	if e := Interrupted(err); !errors.Is(e, ErrCanceled) || !errors.Is(e, context.Canceled) {
		t.Errorf("canceled: %v", err)
	}
	// A context done before the call starts stops it at once.
	rt = goja.New()
	stop = Watch(ctx, rt, Limits{Time: time.Minute, SampleEvery: time.Minute}.WithDefaults())
	_, err = rt.RunString(`for (;;) {}`)
	stop()
	if e := Interrupted(err); !errors.Is(e, ErrCanceled) {
		t.Errorf("canceled before: %v", err)
	}
}

func TestModuleScriptImports(t *testing.T) {
	src := "import d, { a, b as c } from \"./m.js\";\nimport * as ns from '../n';\nimport \"./side.js\";\nimport {\n  x,\n  y\n} from \"./xy.js\";\nexport default function main() {}\nexport const k = 1;"
	got, err := ModuleScript(src, ModuleOptions{Imports: true})
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		`const d = __import("./m.js").default; const { "a": a, "b": c } = __import("./m.js");`,
		`const ns = __import("../n");`,
		`__import("./side.js");`,
		`const { "x": x, "y": y } = __import("./xy.js");`,
		`get "default"() { return main; }`, `get "k"() { return k; }`,
	} {
		if !strings.Contains(got, want) {
			t.Errorf("script lacks %q:\n%s", want, got)
		}
	}
	// Lines are kept: the multi-line import leaves blank lines.
	if n := strings.Count(got, "\n"); n < strings.Count(src, "\n") {
		t.Errorf("script has %d lines; the module %d", n, strings.Count(src, "\n"))
	}
	if _, err := ModuleScript(src, ModuleOptions{}); err == nil || !strings.Contains(err.Error(), "import is not supported") {
		t.Errorf("constitution dialect: %v", err)
	}
}

// A limit below MinMemory is enforced as MinMemory: a call that keeps a
// few hundred KiB live (as other goroutines' work moves the process's live
// heap) runs until its time limit instead of failing on memory. Without
// the floor, a 1024-byte limit (ACL's how-to) stops it on memory.
func TestTinyMemoryLimitIsRaised(t *testing.T) {
	if got := (Limits{Memory: 1024}).WithDefaults().Memory; got != MinMemory {
		t.Fatalf("Memory 1024 -> %d, want MinMemory", got)
	}
	rt := goja.New()
	stop := Watch(context.Background(), rt, Limits{Time: 300 * time.Millisecond, Memory: 1024}.WithDefaults())
	_, err := rt.RunString(`const t0 = Date.now(); const keep = [];
for (;;) { if (Date.now() - t0 > 20 && keep.length < 5000) keep.push([1, 2, 3, 4]); }`)
	stop()
	if !errors.Is(Interrupted(err), ErrTimeLimit) {
		t.Fatalf("a call keeping ~500 KiB live under a 1024-byte limit: %v, want the time limit", err)
	}
}
