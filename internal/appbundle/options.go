package appbundle

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"time"
)

// RuntimeOptions are the JavaScript runtime options of user-defined
// endpoints (the swagger's JSRuntimeOptions; CCF's JSRuntimeOptions). The
// JSON names are the spec's.
type RuntimeOptions struct {
	MaxHeapBytes           uint64 `json:"max_heap_bytes"`
	MaxStackBytes          uint64 `json:"max_stack_bytes"`
	MaxExecutionTimeMs     uint64 `json:"max_execution_time_ms"`
	LogExceptionDetails    bool   `json:"log_exception_details"`
	ReturnExceptionDetails bool   `json:"return_exception_details"`
	MaxCachedInterpreters  uint64 `json:"max_cached_interpreters"`
}

// DefaultRuntimeOptions are CCF's defaults (src/js/core/runtime.h: 100 MiB
// heap, 1 MiB stack, 1 s, 10 cached interpreters), which ledgerd uses
// until an Administrator changes them.
var DefaultRuntimeOptions = RuntimeOptions{
	MaxHeapBytes:          100 << 20,
	MaxStackBytes:         1 << 20,
	MaxExecutionTimeMs:    1000,
	MaxCachedInterpreters: 10,
}

// Bounds of the runtime options, inclusive. The minima admit the values of
// the spec's examples (1024 bytes of heap and stack).
const (
	MinHeapBytes          = 1 << 10
	MaxHeapBytes          = 1 << 30
	MinStackBytes         = 1 << 10
	MaxStackBytes         = 64 << 20
	MinExecutionTimeMs    = 1
	MaxExecutionTimeMs    = 60_000
	MaxCachedInterpreters = 1024
)

// Check returns an error naming the first option out of its bounds.
func (o RuntimeOptions) Check() error {
	check := func(name string, v, lo, hi uint64) error {
		if v < lo || v > hi {
			return errorf("%q is %d; it must be between %d and %d.", name, v, lo, hi)
		}
		return nil
	}
	if err := check("max_heap_bytes", o.MaxHeapBytes, MinHeapBytes, MaxHeapBytes); err != nil {
		return err
	}
	if err := check("max_stack_bytes", o.MaxStackBytes, MinStackBytes, MaxStackBytes); err != nil {
		return err
	}
	if err := check("max_execution_time_ms", o.MaxExecutionTimeMs, MinExecutionTimeMs, MaxExecutionTimeMs); err != nil {
		return err
	}
	return check("max_cached_interpreters", o.MaxCachedInterpreters, 0, MaxCachedInterpreters)
}

// ExecutionTime is MaxExecutionTimeMs as a duration.
func (o RuntimeOptions) ExecutionTime() time.Duration {
	return time.Duration(o.MaxExecutionTimeMs) * time.Millisecond
}

// StackDepth is the JavaScript call depth allowed by MaxStackBytes: goja
// bounds frames, not bytes, and one frame is counted as 256 bytes (at
// least 8 frames).
func (o RuntimeOptions) StackDepth() int {
	return int(max(o.MaxStackBytes/256, 8))
}

// Patch applies a JSON merge patch (RFC 7396) to o: each member present
// sets its option, null resets it to its default, unknown members and
// values of the wrong type are refused. The result is checked.
func (o RuntimeOptions) Patch(body []byte) (RuntimeOptions, error) {
	if err := checkDuplicateKeys(body); err != nil {
		return o, err
	}
	var fields map[string]json.RawMessage
	dec := json.NewDecoder(bytes.NewReader(body))
	if err := dec.Decode(&fields); err != nil || fields == nil {
		return o, errorf("The runtime options must be a JSON object.")
	}
	if _, err := dec.Token(); err != io.EOF {
		return o, errorf("The request body has data after its JSON object.")
	}
	def := DefaultRuntimeOptions
	nums := map[string][2]*uint64{
		"max_heap_bytes":          {&o.MaxHeapBytes, &def.MaxHeapBytes},
		"max_stack_bytes":         {&o.MaxStackBytes, &def.MaxStackBytes},
		"max_execution_time_ms":   {&o.MaxExecutionTimeMs, &def.MaxExecutionTimeMs},
		"max_cached_interpreters": {&o.MaxCachedInterpreters, &def.MaxCachedInterpreters},
	}
	bools := map[string][2]*bool{
		"log_exception_details":    {&o.LogExceptionDetails, &def.LogExceptionDetails},
		"return_exception_details": {&o.ReturnExceptionDetails, &def.ReturnExceptionDetails},
	}
	for k, v := range fields {
		isNull := string(bytes.TrimSpace(v)) == "null"
		if p, ok := nums[k]; ok {
			if isNull {
				*p[0] = *p[1]
				continue
			}
			var n uint64
			if err := json.Unmarshal(v, &n); err != nil {
				return o, errorf("%q must be a non-negative integer, not %s.", k, clip(string(v)))
			}
			*p[0] = n
			continue
		}
		if p, ok := bools[k]; ok {
			if isNull {
				*p[0] = *p[1]
				continue
			}
			var b bool
			if err := json.Unmarshal(v, &b); err != nil {
				return o, errorf("%q must be true or false, not %s.", k, clip(string(v)))
			}
			*p[0] = b
			continue
		}
		return o, errorf("Unknown runtime option %q; the options are max_heap_bytes, max_stack_bytes, max_execution_time_ms, log_exception_details, return_exception_details, max_cached_interpreters.", clip(k))
	}
	if err := o.Check(); err != nil {
		return o, err
	}
	return o, nil
}

// Encode returns the options as stored and answered.
func (o RuntimeOptions) Encode() []byte {
	b, _ := json.Marshal(o) // always encodes
	return b
}

// DecodeRuntimeOptions decodes stored options; nil data gives the defaults.
func DecodeRuntimeOptions(data []byte) (RuntimeOptions, error) {
	if data == nil {
		return DefaultRuntimeOptions, nil
	}
	var o RuntimeOptions
	if err := json.Unmarshal(data, &o); err != nil {
		return DefaultRuntimeOptions, fmt.Errorf("appbundle: stored runtime options: %w", err)
	}
	return o, nil
}
