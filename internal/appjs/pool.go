package appjs

import (
	"context"
	"errors"
	"runtime"

	"github.com/dop251/goja"
	"github.com/ledgerd/ledgerd/internal/jsrt"
)

// MaxPooled bounds Pool.Run's keep.
const MaxPooled = 1024

// Pool reuses a Program's runtimes across calls, as CCF's interpreter
// cache does (max_cached_interpreters): a runtime keeps its globals and its
// loaded modules, so a call pays neither goja.New nor the modules'
// top-level code. Module-level variables therefore survive from one call
// to the next on the same runtime (CCF's interpreter_reuse semantics):
// user code must not rely on them, nor keep one caller's data in them. A
// call that fails (an exception, a limit, a cancelled context) discards
// its runtime. Safe for concurrent use.
type Pool struct {
	prog *Program
	idle chan *sandbox
}

// NewPool returns a pool of p's runtimes.
func (p *Program) NewPool() *Pool {
	return &Pool{prog: p, idle: make(chan *sandbox, MaxPooled)}
}

// Run is Program.Run on a pooled runtime; at most keep runtimes (0 to
// MaxPooled) stay idle for later calls. keep 0 is Program.Run: a fresh
// runtime every call.
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
	var s *sandbox
	select {
	case s = <-pl.idle:
		s.rt.ClearInterrupt()
		s.rt.SetMaxCallStackSize(l.StackDepth)
	default:
		s = &sandbox{prog: pl.prog, maps: map[string]*goja.Object{}}
		s.init(l)
	}
	s.state, s.maxLog, s.readOnly = c.State, c.MaxLog, c.ReadOnly
	s.logs, s.logSize, s.logCut, s.applyWrites = nil, 0, false, nil
	s.claimsDigest = nil
	s.tx = jsrt.NewTx(readOnly{c.State})
	var res *Result
	var err error
	onWorker(func() { res, err = s.call(ctx, l, mod, c) })
	if err != nil {
		if errors.Is(err, ErrMemoryLimit) {
			s.rt, s.maps, s.exports = nil, nil, nil
			runtime.GC()
		}
		return nil, err
	}
	s.state, s.tx, s.logs, s.cur = nil, nil, nil, nil // hold no call's data while idle
	if len(pl.idle) < min(keep, MaxPooled) {
		select {
		case pl.idle <- s:
		default:
		}
	}
	return res, nil
}
