package api_test

import (
	"io"
	"net/http"
	"testing"
)

// BenchmarkUserDefinedEndpoint is issue 12's speed target for a trivial
// user-defined endpoint (≥ 5,000 requests/s on the 2-core machine with
// ledgerctl-bench-style load): parallel keep-alive HTTPS GETs of a readonly
// no_auth endpoint that answers a small JSON object, over real TLS, client
// and server in one process. It reports requests/s and the CPU time of the
// whole process per request. The lead measures it on a quiet machine:
//
//	go test -run XXX -bench BenchmarkUserDefinedEndpoint -benchtime 20000x -cpu 2 ./internal/api/
func BenchmarkUserDefinedEndpoint(b *testing.B) {
	e := newEnv(b, envOptions{})
	bundle := `{"metadata":{"endpoints":{"/u/hello/{name}":{"get":{"js_module":"app.js","js_function":"hello","mode":"readonly","forwarding_required":"never","authn_policies":["no_auth"]}}}},` +
		`"modules":[{"name":"app.js","module":"export function hello(request) {\n  return { body: { hello: request.params.name } };\n}"}]}`
	e.admin.do("PUT", q(ude, v2024), bundle).expect(201, "")
	// HTTP/1.1 keep-alive connections, one per worker, as ledgerctl bench.
	tr := e.client(nil).hc.Transport.(*http.Transport).Clone()
	tr.ForceAttemptHTTP2 = false
	tr.TLSClientConfig.NextProtos = []string{"http/1.1"}
	tr.MaxIdleConnsPerHost = 64
	defer tr.CloseIdleConnections()
	hc := &http.Client{Transport: tr}
	url := e.base + "/app/u/hello/bench"
	get := func() {
		resp, err := hc.Get(url)
		if err != nil {
			b.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			b.Fatalf("status %d", resp.StatusCode)
		}
	}
	get()
	b.SetParallelism(16) // 32 connections on 2 cores, as ledgerctl bench's default load
	cpu0 := cpuTime(b)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			get()
		}
	})
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "req/s")
	b.ReportMetric(float64((cpuTime(b)-cpu0).Microseconds())/float64(b.N), "cpu-us/op")
}
