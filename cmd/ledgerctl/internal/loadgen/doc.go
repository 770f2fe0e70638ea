// Package loadgen is the load generator behind `ledgerctl bench`: it
// appends entries over N keep-alive mTLS connections, tracks every
// measured append until it is Committed, then measures the same server's
// cheapest authenticated endpoint over the same connections, and reports
// both rates and their ratio.
//
// The client is a minimal HTTP/1.1 client over one tls.Conn per worker,
// not net/http's Transport: each worker owns exactly one connection, so
// there are exactly N TLS connections, reused for every request (a broken
// connection is redialled and reported as a reconnect), and the generator,
// which shares the CPU with the server on small machines, spends as little
// of it as it can. Requests are precomputed bytes; responses are parsed by
// http.ReadResponse.
//
// One file per concern:
//
//	config.go     Options, the bench's constants
//	transport.go  the target, one keep-alive connection per worker, round trips, error kinds
//	commit.go     commit tracking: appends resolved as the committed id passes them
//	poller.go     the status loop that observes the committed id
//	phase.go      a measured phase: every worker sends one request back to back
//	run.go        Run: preflight, connections, the append phase, the status phase
//	latency.go    latency summaries (nearest-rank percentiles)
//	cpu.go        CPU use from /proc
//	report.go     the report, its JSON and its text
//	server.go     a throwaway ledgerd for --start
package loadgen
