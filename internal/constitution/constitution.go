package constitution

import (
	"context"
	"fmt"
	"sync"

	"github.com/dop251/goja"
)

// Constitution is a loaded constitution: its module compiled once, run in
// a fresh goja runtime by every call. It is safe for concurrent use (see
// Limits on what concurrent calls share).
type Constitution struct {
	prog   *goja.Program
	limits Limits
	host   Host
}

// Load compiles src, a CCF constitution (ES module text exporting
// validate, resolve and apply), and checks, by running its top-level code
// once within limits, that it exports the three as functions.
func Load(src string, limits Limits) (*Constitution, error) {
	prog, err := compile("constitution", src)
	if err != nil {
		return nil, err
	}
	c := &Constitution{prog: prog, limits: limits.WithDefaults()}
	s := newSandbox(nil, modeNone, nil)
	err = s.run(context.Background(), c.prog, c.limits, "module", func(exports *goja.Object) error {
		for _, name := range []string{"validate", "resolve", "apply"} {
			if _, ok := goja.AssertFunction(exports.Get(name)); !ok {
				return &ScriptError{Func: "module", Message: "the constitution does not export a function " + name}
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return c, nil
}

// WithHost returns a copy of c whose apply calls reach h for what needs the
// node (ccf.network.*).
func (c *Constitution) WithHost(h Host) *Constitution {
	d := *c
	d.host = h
	return &d
}

func compile(name, src string) (*goja.Program, error) {
	script, err := moduleScript(src)
	if err != nil {
		return nil, fmt.Errorf("constitution: %s: %w", name, err)
	}
	prog, err := goja.Compile(name+".js", script, true)
	if err != nil {
		return nil, fmt.Errorf("constitution: %s: %w", name, err)
	}
	return prog, nil
}

// ValidateResult is what validate returned.
type ValidateResult struct {
	Valid       bool
	Description string
}

// Validate runs validate(proposal): proposal is the proposal's JSON text,
// passed as a string as CCF does. validate has no KV.
func (c *Constitution) Validate(ctx context.Context, proposal []byte) (ValidateResult, error) {
	var res ValidateResult
	s := newSandbox(nil, modeNone, nil)
	err := s.run(ctx, c.prog, c.limits, "validate", func(exports *goja.Object) error {
		v, err := s.call(exports, "validate", s.rt.ToValue(string(proposal)))
		if err != nil {
			return err
		}
		obj, ok := v.(*goja.Object)
		if !ok {
			return &ScriptError{Func: "validate", Message: "validate returned " + v.String() + ", not an object"}
		}
		valid, ok := obj.Get("valid").Export().(bool)
		if !ok {
			return &ScriptError{Func: "validate", Message: "validate's result has no boolean valid"}
		}
		res.Valid = valid
		if d := obj.Get("description"); d != nil && !goja.IsUndefined(d) && !goja.IsNull(d) {
			res.Description = d.String()
		}
		return nil
	})
	if err != nil {
		return ValidateResult{}, err
	}
	return res, nil
}

// State is a proposal's state as resolve decides it.
type State string

// The states resolve may return.
const (
	Open     State = "Open"
	Accepted State = "Accepted"
	Rejected State = "Rejected"
)

// Vote is one member's ballot outcome, as resolve receives it
// ({member_id, vote}).
type Vote struct {
	MemberID string
	Vote     bool
}

// Resolve runs resolve(proposal, proposerId, votes) with read-only access
// to kv and returns the state it decided.
func (c *Constitution) Resolve(ctx context.Context, kv KV, proposal []byte, proposerID string, votes []Vote) (State, error) {
	var st State
	s := newSandbox(kv, modeRead, nil)
	err := s.run(ctx, c.prog, c.limits, "resolve", func(exports *goja.Object) error {
		arr := make([]any, len(votes))
		for i, v := range votes {
			o := s.rt.NewObject()
			_ = o.Set("member_id", v.MemberID)
			_ = o.Set("vote", v.Vote)
			arr[i] = o
		}
		v, err := s.call(exports, "resolve", s.rt.ToValue(string(proposal)), s.rt.ToValue(proposerID), s.rt.NewArray(arr...))
		if err != nil {
			return err
		}
		str, ok := v.Export().(string)
		switch State(str) {
		case Open, Accepted, Rejected:
			if ok {
				st = State(str)
				return nil
			}
		}
		return &ScriptError{Func: "resolve", Message: fmt.Sprintf("resolve returned %s, not \"Open\", \"Accepted\" or \"Rejected\"", v.String())}
	})
	if err != nil {
		return "", err
	}
	return st, nil
}

// Apply runs apply(proposal, proposalId) in a transaction over kv. When
// apply succeeds its writes are committed to kv and Apply returns the
// effects apply asked of the node (in call order), to be carried out by
// the caller in the same transaction; when it fails, kv is untouched.
func (c *Constitution) Apply(ctx context.Context, kv KV, proposal []byte, proposalID string) ([]Effect, error) {
	tx := NewTx(kv)
	s := newSandbox(tx, modeWrite, c.host)
	err := s.run(ctx, c.prog, c.limits, "apply", func(exports *goja.Object) error {
		_, err := s.call(exports, "apply", s.rt.ToValue(string(proposal)), s.rt.ToValue(proposalID))
		return err
	})
	if err != nil {
		return nil, err
	}
	tx.Commit()
	return s.effects, nil
}

// RunBallot runs a ballot, a module exporting vote(proposal, proposerId),
// within limits, with read-only access to kv (which may be nil: no table
// then has entries). The ballot must return a boolean.
func RunBallot(ctx context.Context, limits Limits, kv KV, ballot string, proposal []byte, proposerID string) (bool, error) {
	prog, err := ballots.compile(ballot)
	if err != nil {
		return false, err
	}
	var yes bool
	s := newSandbox(kv, modeRead, nil)
	err = s.run(ctx, prog, limits.WithDefaults(), "vote", func(exports *goja.Object) error {
		v, err := s.call(exports, "vote", s.rt.ToValue(string(proposal)), s.rt.ToValue(proposerID))
		if err != nil {
			return err
		}
		b, ok := v.Export().(bool)
		if !ok {
			return &ScriptError{Func: "vote", Message: "vote returned " + v.String() + ", not a boolean"}
		}
		yes = b
		return nil
	})
	return yes, err
}

// ballots caches compiled ballots by their text: every vote re-runs every
// ballot of its proposal, and most ballots are the same few texts. A
// compiled program holds no state of its runs (each run is in a fresh
// runtime), so sharing it changes nothing but the cost. Texts that do not
// compile are not cached.
var ballots = &programCache{max: 256}

type programCache struct {
	mu    sync.Mutex
	max   int
	progs map[string]*goja.Program
}

func (c *programCache) compile(src string) (*goja.Program, error) {
	c.mu.Lock()
	prog, ok := c.progs[src]
	c.mu.Unlock()
	if ok {
		return prog, nil
	}
	prog, err := compile("ballot", src)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.progs == nil || len(c.progs) >= c.max {
		c.progs = map[string]*goja.Program{} // bounded: start over
	}
	c.progs[src] = prog
	return prog, nil
}
