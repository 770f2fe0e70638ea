package jsrt

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"runtime/metrics"
	"sync"
	"time"

	"github.com/dop251/goja"
)

// Limits bound every call into a script (a constitution, a ballot, a user
// function or endpoint). A zero field takes
// its default (CCF's defaults where CCF has one: 1 s and 100 MB).
//
// What is bounded, exactly (goja has no allocator hook):
//
//   - Time: a watchdog interrupts the runtime (goja's Runtime.Interrupt)
//     when Time has passed since the call started (checked every
//     SampleEvery, so up to SampleEvery late), or when the call's context
//     is done (at once if it is when the call starts, else at the next
//     check). The watchdog is a timer, not a goroutine: a call that ends
//     before its first SampleEvery costs one timer and nothing else (user
//     code runs thousands of short calls a second). The interrupt is seen at the next
//     JavaScript instruction, so a loop or recursion stops within
//     microseconds; a single long native builtin (e.g. sorting a huge
//     array) finishes before it is seen.
//   - Memory: the same watchdog reads the process's heap statistics
//     (runtime/metrics) every SampleEvery. Once the process has allocated
//     more than Memory bytes since the first sample (SampleEvery into the
//     call; what the call allocated before is not counted) or the last
//     check below, it runs a garbage collection (at most one per 10 ms) and
//     compares the live heap after it with the live heap of the last
//     collection before the first sample ("/gc/heap/live:bytes"); if the live heap
//     grew by more than Memory, it interrupts the call. Allocation that
//     becomes garbage is not held against the call; live data is. After a
//     call fails on memory, its runtime is dropped and collected at once, so
//     that the next call's baseline is clean. The heap is the process's, not
//     the call's: live growth of other goroutines in the same window counts
//     against a call, and calls running at once share what they see
//     (governance runs its calls one at a time, as CCF runs them in one
//     transaction; user calls run concurrently, so a call that allocates
//     a lot can make a concurrent one fail on memory). The interrupt is seen at the next JavaScript
//     instruction, so one builtin call that allocates a huge block at once
//     (a string concatenation, "x".repeat(1e9)) completes first: a doubling
//     string overshoots Memory by a few doublings before it stops.
//   - Call depth: goja's SetMaxCallStackSize(StackDepth); deeper recursion
//     fails the call with a stack overflow, which JavaScript cannot catch.
//
// The sandboxes run every call in a fresh runtime, so nothing a call
// allocates outlives it, and buffer a call's writes (see Tx) so that they
// reach the caller's KV only when the call succeeded.
type Limits struct {
	// Time is the longest a call may run. Default 1 s.
	Time time.Duration
	// Memory is the heap growth a call may cause, in bytes. Default 100 MiB;
	// at least MinMemory (a smaller limit is raised to it).
	Memory int64
	// StackDepth is the deepest JavaScript call stack. Default 1024.
	StackDepth int
	// SampleEvery is how often the heap is sampled. Default 2 ms.
	SampleEvery time.Duration
}

// Defaults of Limits.
const (
	DefaultTime        = time.Second
	DefaultMemory      = 100 << 20
	DefaultStackDepth  = 1024
	DefaultSampleEvery = 2 * time.Millisecond
	// MinMemory is the smallest Memory enforced: the heap measured is the
	// process's, whose live size moves by this much with other goroutines'
	// work (requests in flight, buffers), so a smaller limit would stop
	// calls for allocations that are not theirs. Runtime options below it
	// (ACL's how-to sets max_heap_bytes to 1024) are enforced as MinMemory.
	MinMemory = 4 << 20
)

// WithDefaults returns l with every zero field set to its default.
func (l Limits) WithDefaults() Limits {
	if l.Time <= 0 {
		l.Time = DefaultTime
	}
	if l.Memory <= 0 {
		l.Memory = DefaultMemory
	}
	l.Memory = max(l.Memory, MinMemory)
	if l.StackDepth <= 0 {
		l.StackDepth = DefaultStackDepth
	}
	if l.SampleEvery <= 0 {
		l.SampleEvery = DefaultSampleEvery
	}
	return l
}

// Errors of a call stopped by a limit or its context (the sandboxes wrap
// them; test with errors.Is).
var (
	// ErrTimeLimit: the call ran longer than Limits.Time.
	ErrTimeLimit = errors.New("time limit exceeded")
	// ErrMemoryLimit: the heap grew by more than Limits.Memory during the call.
	ErrMemoryLimit = errors.New("memory limit exceeded")
	// ErrStackLimit: the call stack grew deeper than Limits.StackDepth.
	ErrStackLimit = errors.New("call stack limit exceeded")
	// ErrCanceled: the call's context was done (the error also wraps the
	// context's error).
	ErrCanceled = errors.New("call canceled")
)

// The runtime/metrics samples the watchdog reads.
const (
	metricAllocs = "/gc/heap/allocs:bytes" // cumulative bytes allocated
	metricLive   = "/gc/heap/live:bytes"   // live heap as of the last GC
)

// minGCGap is the least time between two garbage collections forced by one
// watchdog.
const minGCGap = 10 * time.Millisecond

// Watch starts the watchdog of one call on rt under l (with defaults
// applied by the caller) and returns the function that stops it (and waits
// for it to stop). A limit interrupts rt with an error wrapping one of the
// errors above; see Interrupted.
func Watch(ctx context.Context, rt *goja.Runtime, l Limits) (stop func()) {
	w := &watcher{rt: rt, l: l, start: time.Now(), ctx: ctx}
	if err := ctx.Err(); err != nil {
		w.interrupt(fmt.Errorf("%w: %w", ErrCanceled, err))
	}
	w.mu.Lock() // tick waits until the timer is recorded
	w.timer = time.AfterFunc(min(l.SampleEvery, l.Time), w.tick)
	w.mu.Unlock()
	return func() {
		w.timer.Stop()
		// Wait for a tick in progress, and let none interrupt from now on.
		w.mu.Lock()
		w.done = true
		w.mu.Unlock()
	}
}

// watcher is the watchdog of one call: a timer that fires every
// SampleEvery until the call ends or is interrupted.
type watcher struct {
	rt    *goja.Runtime
	l     Limits
	start time.Time
	ctx   context.Context
	timer *time.Timer

	mu                  sync.Mutex
	done                bool // stopped, or interrupted
	sampled             bool
	allocMark, baseLive int64
	lastGC              time.Time
	sample              []metrics.Sample
}

// interrupt interrupts the call with err unless it has ended.
func (w *watcher) interrupt(err error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.done {
		w.done = true
		w.rt.Interrupt(err)
	}
}

func (w *watcher) read() (allocs, live int64) {
	if w.sample == nil {
		w.sample = []metrics.Sample{{Name: metricAllocs}, {Name: metricLive}}
	}
	metrics.Read(w.sample)
	if w.sample[0].Value.Kind() == metrics.KindUint64 {
		allocs = int64(w.sample[0].Value.Uint64())
	}
	if w.sample[1].Value.Kind() == metrics.KindUint64 {
		live = int64(w.sample[1].Value.Uint64())
	}
	return allocs, live
}

// tick checks the limits and re-arms the timer.
func (w *watcher) tick() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.done {
		return
	}
	if err := w.ctx.Err(); err != nil {
		w.done = true
		w.rt.Interrupt(fmt.Errorf("%w: %w", ErrCanceled, err))
		return
	}
	elapsed := time.Since(w.start)
	if elapsed >= w.l.Time {
		w.done = true
		w.rt.Interrupt(fmt.Errorf("%w (%v)", ErrTimeLimit, w.l.Time))
		return
	}
	switch allocs, _ := w.read(); {
	case !w.sampled:
		w.sampled = true
		w.allocMark, w.baseLive = w.read()
	case allocs-w.allocMark > w.l.Memory && time.Since(w.lastGC) >= minGCGap:
		runtime.GC()
		w.lastGC = time.Now()
		var live int64
		w.allocMark, live = w.read()
		if grown := live - w.baseLive; grown > w.l.Memory {
			w.done = true
			w.rt.Interrupt(fmt.Errorf("%w (live heap grew by %d MiB, limit %d MiB)", ErrMemoryLimit, grown>>20, w.l.Memory>>20))
			return
		}
	}
	w.timer.Reset(min(w.l.SampleEvery, w.l.Time-elapsed))
}

// Interrupted returns the error a limit or a canceled context interrupted
// a call with, or, when err is a stack overflow, one wrapping
// ErrStackLimit; nil when err is neither.
func Interrupted(err error) error {
	var intr *goja.InterruptedError
	if errors.As(err, &intr) {
		if e, ok := intr.Value().(error); ok {
			return e
		}
		return fmt.Errorf("interrupted: %v", intr.Value())
	}
	var so *goja.StackOverflowError
	if errors.As(err, &so) {
		return ErrStackLimit
	}
	return nil
}
