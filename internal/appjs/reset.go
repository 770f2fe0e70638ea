package appjs

import (
	"errors"
	"slices"
	"strings"

	"github.com/dop251/goja"
)

// A pooled runtime (Pool, without a reuse key) must look fresh to every
// call: CCF runs each call in a new interpreter unless the endpoint asks
// for interpreter_reuse. What a call could leave behind, and what becomes
// of it:
//
//   - module-level variables: the modules are evaluated again in every
//     call (sandbox.load keeps a module's factory per runtime, never its
//     exports), except a module that only declares functions and
//     primitive literals at its top level, whose exports are kept while
//     no call changes its bindings and whose functions are frozen
//     (kept.go);
//   - ccf and console: what a call made, set or deleted on them is
//     dropped after it (lazyObject.restore), so that the next call's
//     ccf.strToBuf, ccf.crypto... are new objects; ccf.kv's table objects
//     and request.body are new in every call (table, request);
//   - the per-call globals (Call.Globals, such as a hook's context): set
//     to undefined after the call, and set again by the next;
//   - everything else reachable from the global object: locked when the
//     runtime is made (lockdown): the intrinsics (every object reachable
//     from the original globals and from the iterator, generator and
//     async function prototypes: Object.prototype, Array.prototype, Math,
//     JSON, every built-in function...) are frozen, the original globals
//     made non-writable and non-configurable, and the global object
//     non-extensible, so no call can change them or add a global.
//
// A fresh runtime lets code change its intrinsics or globals
// (Array.prototype.x = ..., a replaced method, globalThis.x = ...); on a
// locked runtime that throws a TypeError. So a call on a pooled runtime that fails with a TypeError is
// run again on a fresh, unlocked runtime (Program.Run) within the time
// left of its limit: it was failed, so it wrote nothing and answered
// nothing, and the second run gives the answer a fresh interpreter gives.
// What user code can still observe: that the intrinsics are frozen
// (Object.isFrozen, Reflect.set or Reflect.defineProperty returning
// false, or a TypeError it catches itself), and the time of the first
// run. None of these carries data from one call to another: the locked
// objects are the same in every call, and everything else a call made is
// dropped with it.

// lockdownScript freezes the intrinsics and locks the original globals
// except the per-call ones (slots). ccf and console are not frozen (their
// objects restore themselves after each call: lazyObject.restore) but
// their bindings are locked.
const lockdownScript = `(function (slots) {
  "use strict";
  const g = globalThis, seen = new Set(), todo = [];
  const ownKeys = Reflect.ownKeys, desc = Object.getOwnPropertyDescriptor, proto = Object.getPrototypeOf;
  seen.add(g);
  const add = (v) => {
    if (((typeof v === "object" && v !== null) || typeof v === "function") && !seen.has(v)) {
      seen.add(v);
      todo.push(v);
    }
  };
  const perCall = { ccf: true, console: true };
  for (let i = 0; i < slots.length; i++) perCall[slots[i]] = true;
  let keys = ownKeys(g);
  for (let i = 0; i < keys.length; i++) {
    if (perCall[keys[i]] === true) continue;
    const d = desc(g, keys[i]);
    add(d.value); add(d.get); add(d.set);
  }
  add(proto(g));
  add(proto([][Symbol.iterator]()));
  add(proto(new Map()[Symbol.iterator]()));
  add(proto(new Set()[Symbol.iterator]()));
  add(proto(""[Symbol.iterator]()));
  add(proto(/a/[Symbol.matchAll]("")));
  add(proto(function* () {}));
  add(proto(function* () {}()));
  add(proto(async function () {}));
  add(proto(Int8Array));
  const frozen = [];
  while (todo.length > 0) {
    const o = todo.pop();
    frozen.push(o);
    const ks = ownKeys(o);
    for (let i = 0; i < ks.length; i++) {
      const d = desc(o, ks[i]);
      if (d.get === undefined && d.set === undefined) add(d.value);
      else { add(d.get); add(d.set); }
    }
    add(proto(o));
  }
  for (let i = 0; i < frozen.length; i++) Object.freeze(frozen[i]);
  const slot = {};
  for (let i = 0; i < slots.length; i++) slot[slots[i]] = true;
  keys = ownKeys(g);
  for (let i = 0; i < keys.length; i++) {
    const k = keys[i];
    if (slot[k] === true) continue;
    const d = desc(g, k);
    if ("value" in d) Object.defineProperty(g, k, { writable: false, configurable: false });
    else Object.defineProperty(g, k, { configurable: false });
  }
  for (let i = 0; i < slots.length; i++) Object.defineProperty(g, slots[i], { writable: true, enumerable: true, configurable: false });
  Object.preventExtensions(g);
})`

// lockdownProgram is lockdownScript compiled once.
var lockdownProgram = goja.MustCompile("lockdown.js", lockdownScript, true)

// lockdown locks the runtime's intrinsics and global object, leaving
// writable only the per-call globals: a call's Call.Globals names.
func (s *sandbox) lockdown(globals map[string]any) error {
	slots := []string{}
	for n := range globals {
		if n == "ccf" || n == "console" {
			return errors.New("appjs: ccf and console cannot be replaced")
		}
		slots = append(slots, n)
	}
	f, err := s.rt.RunProgram(lockdownProgram)
	if err != nil {
		return err
	}
	lock, ok := goja.AssertFunction(f)
	if !ok {
		return errors.New("lockdown is not a function")
	}
	if _, err := lock(goja.Undefined(), s.rt.ToValue(slots)); err != nil {
		return err
	}
	s.slots = slots
	return nil
}

// fits reports whether a locked runtime has a slot for every global of a
// call.
func (s *sandbox) fits(globals map[string]any) bool {
	for n := range globals {
		if !slices.Contains(s.slots, n) {
			return false
		}
	}
	return true
}

// reset clears the per-call globals after a call; false: one cannot be
// written (the call made it read-only), and the runtime must be discarded.
func (s *sandbox) reset() (ok bool) {
	defer func() {
		if recover() != nil {
			ok = false
		}
	}()
	g := s.rt.GlobalObject()
	for _, n := range s.slots {
		if g.Set(n, goja.Undefined()) != nil || !goja.IsUndefined(g.Get(n)) {
			return false
		}
	}
	return true
}

// lockedOut reports whether err may be a locked runtime's refusal (a
// TypeError), so that the call must be run again on a fresh runtime.
func lockedOut(err error) bool {
	se, ok := err.(*ScriptError)
	return ok && strings.HasPrefix(se.Message, "TypeError")
}
