package appjs

import (
	"context"
	"testing"
)

// BenchmarkPoolHook is one trivial hook's call on a pooled runtime: the
// module kept (only declarations) and not (a top-level statement that
// makes it evaluated in every call).
func BenchmarkPoolHook(b *testing.B) {
	for _, tc := range []struct{ name, src string }{
		{"kept", "export function main() { if (context.contents.length > 100000) throw new Error(\"too long\"); }"},
		{"evaluated", "export function main() { if (context.contents.length > 100000) throw new Error(\"too long\"); }\nvoid 0;"},
	} {
		b.Run(tc.name, func(b *testing.B) {
			p, err := Compile(Module{Name: "function.js", Source: tc.src})
			if err != nil {
				b.Fatal(err)
			}
			pool := p.NewPool()
			ctx := context.Background()
			globals := map[string]any{"context": map[string]any{"contents": "benchmark entry", "collectionId": "bench"}}
			b.ReportAllocs()
			for b.Loop() {
				if _, err := pool.Run(ctx, Call{Function: "main", Globals: globals}, 10); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
