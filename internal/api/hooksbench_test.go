package api_test

import (
	"testing"
	"time"
)

// BenchmarkAppendPreHook is issue 12's hook speed target: POST
// /app/transactions with one trivial pre-hook costs at most 30 % more than
// without. Both sub-benchmarks append from 16 concurrent clients per core
// over real HTTPS to one collection and report the process's CPU time
// (client and server) per append, which depends less on what else runs on
// the machine than ns/op. prehook runs the hook with the default runtime
// options (a pool of at most 10 idle runtimes, reset between runs);
// prehook-reuse asks for max_cached_interpreters 16 (the same semantics,
// a larger pool). Compare: go test -run X -bench AppendPreHook ./internal/api/
func BenchmarkAppendPreHook(b *testing.B) {
	for _, tc := range []struct {
		name string
		body map[string]any
	}{
		{"none", map[string]any{"contents": "benchmark entry"}},
		{"prehook", map[string]any{"contents": "benchmark entry",
			"preHooks": []any{map[string]any{"functionId": "check"}}}},
		// The same hook with a larger pool (max_cached_interpreters).
		{"prehook-reuse", map[string]any{"contents": "benchmark entry",
			"preHooks": []any{map[string]any{"functionId": "check",
				"properties": map[string]any{"runtimeOptions": map[string]any{"max_cached_interpreters": 16}}}}}},
	} {
		b.Run(tc.name, func(b *testing.B) {
			e := newEnv(b, envOptions{})
			e.admin.do("PUT", udfPath("check"), map[string]string{"code": "export function main() { if (context.contents.length > 100) throw new Error(\"too long\"); }"}).expect(201, "")
			path := q("/app/transactions", v2024, "collectionId", "bench")
			e.contributor.post(path, tc.body).expect(200, "") // the collection exists; the program is compiled
			b.SetParallelism(16)
			cpu0 := cpuTime(b)
			start := time.Now()
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if r := e.contributor.do("POST", path, tc.body); r.status != 200 {
						b.Errorf("append: %d %s", r.status, r.body)
						return
					}
				}
			})
			b.StopTimer()
			b.ReportMetric(float64((cpuTime(b)-cpu0).Microseconds())/float64(b.N), "cpu-µs/op")
			b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "appends/s")
		})
	}
}
