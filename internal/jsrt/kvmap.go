package jsrt

import (
	"fmt"

	"github.com/dop251/goja"
)

// Table is what a ccf.kv[name] object does with its table: the sandbox's
// access rules (CheckRead, CheckWrite: each throws to refuse) and storage.
// ForEach may visit keys in any order of the storage's; the object copies
// them first, so a callback may write to the table it iterates.
type Table struct {
	CheckRead, CheckWrite func()
	Get                   func(key []byte) ([]byte, bool)
	Set                   func(key, value []byte)
	Delete                func(key []byte)
	ForEach               func(fn func(k, v []byte) bool)
}

// NewKVMap returns the object of one table with CCF's KvMap methods, shared
// by the governance and the user-code sandboxes: get, has, set, delete,
// clear, forEach (value, key, map) and size; keys and values are
// ArrayBuffers (or byte typed arrays).
func NewKVMap(rt *goja.Runtime, t Table) *goja.Object {
	each := func(fn func(k, v []byte) bool) {
		var keys, vals [][]byte
		t.ForEach(func(k, v []byte) bool {
			keys = append(keys, append([]byte(nil), k...))
			vals = append(vals, append([]byte(nil), v...))
			return true
		})
		for i := range keys {
			if !fn(keys[i], vals[i]) {
				return
			}
		}
	}
	o := rt.NewObject()
	_ = o.Set("get", func(c goja.FunctionCall) goja.Value {
		t.CheckRead()
		v, ok := t.Get(Bytes(rt, c.Argument(0), "key"))
		if !ok {
			return goja.Undefined()
		}
		return Buf(rt, v)
	})
	_ = o.Set("has", func(c goja.FunctionCall) goja.Value {
		t.CheckRead()
		_, ok := t.Get(Bytes(rt, c.Argument(0), "key"))
		return rt.ToValue(ok)
	})
	_ = o.Set("set", func(c goja.FunctionCall) goja.Value {
		t.CheckWrite()
		key := Bytes(rt, c.Argument(0), "key")
		val := Bytes(rt, c.Argument(1), "value")
		t.Set(key, val)
		return o
	})
	_ = o.Set("delete", func(c goja.FunctionCall) goja.Value {
		t.CheckWrite()
		key := Bytes(rt, c.Argument(0), "key")
		_, ok := t.Get(key)
		t.Delete(key)
		return rt.ToValue(ok)
	})
	_ = o.Set("clear", func(c goja.FunctionCall) goja.Value {
		t.CheckWrite()
		each(func(k, _ []byte) bool {
			t.Delete(k)
			return true
		})
		return goja.Undefined()
	})
	_ = o.Set("forEach", func(c goja.FunctionCall) goja.Value {
		t.CheckRead()
		fn, ok := goja.AssertFunction(c.Argument(0))
		if !ok {
			TypeError(rt, "forEach: argument must be a function")
		}
		each(func(k, v []byte) bool {
			if _, err := fn(goja.Undefined(), Buf(rt, v), Buf(rt, k), o); err != nil {
				panic(err)
			}
			return true
		})
		return goja.Undefined()
	})
	_ = o.DefineAccessorProperty("size", rt.ToValue(func(goja.FunctionCall) goja.Value {
		t.CheckRead()
		n := 0
		each(func(_, _ []byte) bool { n++; return true })
		return rt.ToValue(n)
	}), nil, goja.FLAG_FALSE, goja.FLAG_TRUE)
	return o
}

// TypeError throws a JavaScript TypeError.
func TypeError(rt *goja.Runtime, format string, args ...any) {
	panic(rt.NewTypeError(fmt.Sprintf(format, args...)))
}

// Bytes reads an ArrayBuffer (or a typed array of bytes) argument, copied;
// anything else throws a TypeError naming what.
func Bytes(rt *goja.Runtime, v goja.Value, what string) []byte {
	if v != nil {
		switch b := v.Export().(type) {
		case goja.ArrayBuffer:
			return append([]byte(nil), b.Bytes()...)
		case []byte:
			return append([]byte(nil), b...)
		}
	}
	TypeError(rt, "%s must be an ArrayBuffer", what)
	return nil
}

// Buf returns a new ArrayBuffer holding a copy of b.
func Buf(rt *goja.Runtime, b []byte) goja.Value {
	return rt.ToValue(rt.NewArrayBuffer(append([]byte(nil), b...)))
}
