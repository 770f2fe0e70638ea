package appjs

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dop251/goja"
	"github.com/ledgerd/ledgerd/internal/jsrt"
)

// MaxPooled bounds Pool.Run's keep.
const MaxPooled = 1024

// MaxReuseKeys bounds the number of interpreter_reuse keys a Pool keeps
// runtimes for; beyond it, the keyed runtimes are dropped and kept again
// from the next calls.
const MaxReuseKeys = 64

// Pool reuses a Program's runtimes across calls, so that a call pays
// neither goja.New nor the installation of the globals. Safe for
// concurrent use.
//
// Without Call.Reuse, a pooled runtime is reset between calls (reset.go):
// the modules are evaluated again in each call, the globals a call added
// are deleted, and a runtime whose original globals or intrinsics a call
// changed is discarded; so user code sees exactly what a fresh runtime
// shows (CCF's semantics without interpreter reuse).
//
// With Call.Reuse (an endpoint's interpreter_reuse key, CCF's opt-in to
// interpreter reuse), calls with the same key share runtimes that are not
// reset: module-level variables, globals and loaded modules survive from
// one call to the next on the same runtime (and a node runs several
// runtimes per key under concurrent load, each with its own state).
//
// Locking a runtime costs milliseconds (BenchmarkLockdown), so at most
// keep locked runtimes exist, idle or busy; a call that finds none idle
// when keep are busy runs on a fresh runtime (Program.Run). A call stopped
// by a limit or its context discards its runtime; one that throws keeps
// it (reset, without a reuse key) or discards it (with one).
type Pool struct {
	prog *Program
	idle chan *sandbox

	mu    sync.Mutex
	keyed map[string]chan *sandbox

	locked  atomic.Int64 // locked runtimes, idle or busy (at most keep)
	made    atomic.Int64 // runtimes made (tests)
	retries atomic.Int64 // calls run again on a fresh runtime (tests)
}

// NewPool returns a pool of p's runtimes.
func (p *Program) NewPool() *Pool {
	return &Pool{prog: p, idle: make(chan *sandbox, MaxPooled)}
}

// idleFor returns the idle runtimes of a reuse key ("" for the reset ones).
func (pl *Pool) idleFor(key string) chan *sandbox {
	if key == "" {
		return pl.idle
	}
	pl.mu.Lock()
	defer pl.mu.Unlock()
	ch := pl.keyed[key]
	if ch == nil {
		if pl.keyed == nil || len(pl.keyed) >= MaxReuseKeys {
			pl.keyed = map[string]chan *sandbox{}
		}
		ch = make(chan *sandbox, MaxPooled)
		pl.keyed[key] = ch
	}
	return ch
}

// Run is Program.Run on a pooled runtime; at most keep runtimes (0 to
// MaxPooled) stay idle for later calls (per reuse key, with Call.Reuse).
// keep 0 is Program.Run: a fresh runtime every call.
func (pl *Pool) Run(ctx context.Context, c Call, keep int) (*Result, error) {
	if keep <= 0 {
		return pl.prog.Run(ctx, c)
	}
	mod := pl.prog.first
	if c.Module != "" {
		mod = normalise(c.Module)
		if _, ok := pl.prog.modules[mod]; !ok {
			return nil, &ScriptError{Message: "module " + c.Module + " not found"}
		}
	}
	if c.MaxLog <= 0 {
		c.MaxLog = DefaultMaxLog
	}
	l := c.Limits.WithDefaults()
	reuse := c.Reuse != ""
	idle := pl.idleFor(c.Reuse)
	var s *sandbox
	select {
	case s = <-idle:
		if !reuse && !s.fits(c.Globals) {
			// A global this runtime has no slot for.
			pl.release(s, idle, keep, true)
			return pl.prog.Run(ctx, c)
		}
		s.rt.ClearInterrupt()
		s.rt.SetMaxCallStackSize(l.StackDepth)
		if s.slots != nil && s.exports == nil {
			s.exports, s.maps = map[string]*goja.Object{}, map[string]*goja.Object{}
		}
	default:
		if !reuse {
			// Locking a runtime costs far more than a call: at most keep
			// locked runtimes exist (idle or busy); beyond them, as under
			// a burst of concurrent calls, a call runs on a fresh
			// runtime, which would be dropped after it anyway.
			if pl.locked.Add(1) > int64(min(keep, MaxPooled)) {
				pl.locked.Add(-1)
				return pl.prog.Run(ctx, c)
			}
		}
		s = &sandbox{prog: pl.prog, maps: map[string]*goja.Object{}}
		pl.made.Add(1)
		var lockErr error
		onWorker(func() {
			s.init(l)
			if !reuse {
				lockErr = s.lockdown(c.Globals)
			}
		})
		if lockErr != nil {
			pl.locked.Add(-1)
			return nil, fmt.Errorf("appjs: locking a runtime: %w", lockErr)
		}
	}
	s.state, s.maxLog, s.readOnly = c.State, c.MaxLog, c.ReadOnly
	s.logs, s.logSize, s.logCut, s.applyWrites = nil, 0, false, nil
	s.claimsDigest = nil
	s.tx = jsrt.NewTx(readOnly{c.State})
	start := time.Now()
	var res *Result
	var err error
	clean := true
	onWorker(func() {
		res, err = s.call(ctx, l, mod, c)
		if !reuse && (err == nil || thrown(err)) {
			s.checkKept()
			clean = s.reset()
		}
		clear(s.used)
		s.used = s.used[:0]
	})
	if err != nil {
		if errors.Is(err, ErrMemoryLimit) {
			s.rt, s.maps, s.exports = nil, nil, nil
			runtime.GC()
		}
		if !reuse && thrown(err) {
			// The code threw: the locked runtime is as it was (reset
			// deleted the call's globals), so it is kept.
			pl.release(s, idle, keep, clean)
		} else if !reuse {
			pl.locked.Add(-1) // discarded
		}
		if !reuse && lockedOut(err) {
			// Perhaps the code changed an intrinsic, which a fresh
			// runtime allows (reset.go): run it again on one.
			pl.retries.Add(1)
			c.Limits = l
			if c.Limits.Time -= time.Since(start); c.Limits.Time <= 0 {
				return nil, err
			}
			return pl.prog.Run(ctx, c)
		}
		return nil, err
	}
	pl.release(s, idle, keep, clean)
	return res, nil
}

// release puts s back among the idle runtimes if clean and there are
// fewer than keep, holding no call's data; else it is dropped.
func (pl *Pool) release(s *sandbox, idle chan *sandbox, keep int, clean bool) {
	s.state, s.tx, s.logs, s.cur = nil, nil, nil, nil
	if s.slots != nil {
		// A fresh call's objects for the next: modules, ccf, console,
		// tables, request.body.
		clear(s.maps)
		clear(s.exports)
		s.reqBody, s.cryptoHolder = nil, nil
		s.ccf.restore()
		s.console.restore()
	}
	if clean && len(idle) < min(keep, MaxPooled) {
		select {
		case idle <- s:
			return
		default:
		}
	}
	if s.slots != nil {
		pl.locked.Add(-1)
	}
}

// thrown reports whether err is an exception the code threw (not a limit
// or a cancelled context, which may leave a runtime in any state).
func thrown(err error) bool {
	var se *ScriptError
	return errors.As(err, &se)
}
