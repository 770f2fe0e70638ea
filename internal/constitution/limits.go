package constitution

import (
	"errors"
	"fmt"

	"github.com/dop251/goja"
	"github.com/ledgerd/ledgerd/internal/jsrt"
)

// Limits bound every call into a constitution or ballot (see jsrt.Limits,
// shared with the application sandbox, for exactly what is bounded). A zero
// field takes its default (CCF's defaults where CCF has one: 1 s and
// 100 MB).
type Limits = jsrt.Limits

// Defaults of Limits.
const (
	DefaultTime        = jsrt.DefaultTime
	DefaultMemory      = jsrt.DefaultMemory
	DefaultStackDepth  = jsrt.DefaultStackDepth
	DefaultSampleEvery = jsrt.DefaultSampleEvery
)

// Errors of a call that did not complete. A call's error wraps one of these
// or is a *ScriptError (the script threw, or returned a value of the wrong
// shape).
var (
	// ErrTimeLimit: the call ran longer than Limits.Time.
	ErrTimeLimit = jsrt.ErrTimeLimit
	// ErrMemoryLimit: the heap grew by more than Limits.Memory during the call.
	ErrMemoryLimit = jsrt.ErrMemoryLimit
	// ErrStackLimit: the call stack grew deeper than Limits.StackDepth.
	ErrStackLimit = jsrt.ErrStackLimit
	// ErrCanceled: the call's context was done (the error also wraps the
	// context's error).
	ErrCanceled = jsrt.ErrCanceled
)

// ScriptError is a JavaScript exception thrown by a constitution or ballot,
// or a value of the wrong shape returned by one.
type ScriptError struct {
	// Func is the function called: validate, resolve, apply, vote, or
	// "module" for the module's top-level code.
	Func string
	// Message is the exception (with its JavaScript stack when it has one)
	// or what was wrong with the value.
	Message string
}

func (e *ScriptError) Error() string {
	return "constitution: " + e.Func + ": " + e.Message
}

// watch is jsrt.Watch.
var watch = jsrt.Watch

// callError turns what goja returned or panicked with into a call's error.
func callError(fn string, err error) error {
	if e := jsrt.Interrupted(err); e != nil {
		return fmt.Errorf("constitution: %s: %w", fn, e)
	}
	var ex *goja.Exception
	if errors.As(err, &ex) {
		return &ScriptError{Func: fn, Message: ex.String()}
	}
	var se *ScriptError
	if errors.As(err, &se) {
		return err
	}
	return &ScriptError{Func: fn, Message: err.Error()}
}
