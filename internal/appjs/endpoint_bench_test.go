package appjs

import (
	"context"
	"testing"
)

// BenchmarkEndpointCall is one call of a trivial CCF endpoint, the cost a
// user-defined endpoint adds to a request (the lead measures; do not run
// long on a loaded machine).
func BenchmarkEndpointCall(b *testing.B) {
	p, err := Compile(Module{Name: "app.js", Source: "export function hello(request) {\n  return { body: { hello: request.params.name } };\n}"})
	if err != nil {
		b.Fatal(err)
	}
	req := &Request{Method: "GET", URL: "/app/hello/x", Route: "/hello/{name}", Path: "/app/hello/x", Params: map[string]string{"name": "x"},
		Headers: map[string]string{"accept": "*/*"}, Caller: []byte(`{"policy":"no_auth"}`)}
	c := Call{Module: "app.js", Function: "hello", Args: []any{req}, Response: true, ReadOnly: true}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := p.Run(context.Background(), c); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkEndpointCallPooled is BenchmarkEndpointCall on a Pool.
func BenchmarkEndpointCallPooled(b *testing.B) {
	p, err := Compile(Module{Name: "app.js", Source: "export function hello(request) {\n  return { body: { hello: request.params.name } };\n}"})
	if err != nil {
		b.Fatal(err)
	}
	req := &Request{Method: "GET", URL: "/app/hello/x", Route: "/hello/{name}", Path: "/app/hello/x", Params: map[string]string{"name": "x"},
		Headers: map[string]string{"accept": "*/*"}, Caller: []byte(`{"policy":"no_auth"}`)}
	c := Call{Module: "app.js", Function: "hello", Args: []any{req}, Response: true, ReadOnly: true}
	pool := p.NewPool()
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := pool.Run(context.Background(), c, 16); err != nil {
				b.Fatal(err)
			}
		}
	})
}
