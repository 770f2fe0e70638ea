package loadgen

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/url"
	"strings"
	"sync/atomic"
	"time"
)

// Run connects, runs the append phase and the cheap-endpoint phase, and
// returns the report. serverPID, if not 0, is the server's process, whose
// CPU use the report then shows. Progress lines go to stderr.
func Run(ctx context.Context, o Options, serverPID int, stderr io.Writer) (*Report, error) {
	t, err := newTarget(o)
	if err != nil {
		return nil, err
	}
	entry := map[string]any{"contents": strings.Repeat("x", o.Size)}
	if o.PreHook != "" {
		entry["preHooks"] = []map[string]string{{"functionId": o.PreHook}}
	}
	body, err := json.Marshal(entry)
	if err != nil {
		return nil, err
	}
	appendPath := "/app/transactions?api-version=" + apiVersion + "&collectionId=" + url.QueryEscape(o.Collection)
	if o.PreHook != "" {
		appendPath = "/app/transactions?api-version=" + tagsAPIVersion + "&collectionId=" + url.QueryEscape(o.Collection)
	}
	if o.Tags != "" {
		appendPath = "/app/transactions?api-version=" + tagsAPIVersion + "&collectionId=" + url.QueryEscape(o.Collection) +
			"&tags=" + url.QueryEscape(o.Tags)
	}
	appendReq := t.request("POST", appendPath, body)

	// Preflight, on the poller's connection: one append, so that a wrong
	// credential or role fails once and clearly, and a transaction id the
	// status requests can name.
	var pollDials, loadDials atomic.Int64
	pc := &conn{t: t, dials: &pollDials}
	defer pc.close()
	rep, err := pc.roundTrip(ctx, appendReq, false)
	if err != nil {
		return nil, fmt.Errorf("first append to %s: %w", o.Endpoint, err)
	}
	if rep.status/100 != 2 {
		return nil, fmt.Errorf("first append: %s", errorSample(errorKind(rep, nil), rep, nil))
	}
	seed, ok := parseTxID(rep.txID)
	if !ok {
		return nil, fmt.Errorf("first append: no transaction id in %s (got %q)", txIDHeader, rep.txID)
	}
	statusReq := t.request("GET", statusPath(seed), nil)
	readPath := statusPath(seed)
	readReq := statusReq
	if o.GetPath != "" {
		readPath = o.GetPath
		readReq = t.request("GET", readPath, nil)
	}

	var gl *govLoad
	if o.GovEvery > 0 {
		if gl, err = newGovLoad(o); err != nil {
			return nil, err
		}
		if err := gl.check(ctx); err != nil {
			return nil, fmt.Errorf("first governance proposal (--member-cert %s): %w", o.MemberCert, err)
		}
	}

	// Exactly one TLS connection per worker, opened before any phase.
	conns, stopConns, err := openConns(ctx, t, o.Connections, &loadDials)
	if err != nil {
		return nil, err
	}
	defer stopConns()

	tracker := &commitTracker{}
	pl := &poller{conn: pc, req: statusReq, target: t, tracker: tracker, errors: map[string]int{}}
	pollCtx, stopPolling := context.WithCancel(ctx)
	pollDone := make(chan struct{})
	go func() { defer close(pollDone); pl.run(pollCtx) }()
	defer context.AfterFunc(pollCtx, pc.interrupt)()
	defer func() { stopPolling(); <-pollDone }()

	govCtx, stopGov := context.WithCancel(ctx)
	govDone := make(chan struct{})
	if gl != nil {
		fmt.Fprintf(stderr, "bench: governance: a proposal and its ballot every %s during both phases\n", o.GovEvery)
		go func() { defer close(govDone); gl.run(govCtx) }()
	} else {
		close(govDone)
	}
	defer func() { stopGov(); <-govDone }()

	fmt.Fprintf(stderr, "bench: appends: %s warm-up, %s measured, %d connections...\n", o.Warmup, o.Duration, o.Connections)
	appends := runPhase(ctx, conns, o.Warmup, o.Duration, appendReq, func(rep reply, start, end time.Time, measured bool) string {
		id, ok := parseTxID(rep.txID)
		if !ok {
			return "no transaction id"
		}
		if measured {
			tracker.add(id, start, end)
		}
		return ""
	}, serverPID)
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}
	// Let the poller resolve the last appends, for at most the timeout.
	for deadline := time.Now().Add(o.Timeout); tracker.outstanding() > 0 && time.Now().Before(deadline) && ctx.Err() == nil; {
		sleepCtx(ctx, 5*time.Millisecond)
	}

	fmt.Fprintf(stderr, "bench: GET %s: %s warm-up, %s measured, same connections...\n", readPath, o.Warmup, o.Duration)
	cheap := runPhase(ctx, conns, o.Warmup, o.Duration, readReq, nil, serverPID)
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}
	stopPolling()
	<-pollDone
	stopGov()
	<-govDone

	tracker.mu.Lock()
	committed := CommitReport{
		Measured:   len(tracker.lat),
		Unresolved: len(tracker.pending) + len(tracker.uncertain),
		Invalid:    tracker.invalid,
		Latency:    summarize(tracker.lat),
	}
	tracker.mu.Unlock()
	committed.Polls = pl.polls
	committed.PollErrors = sum(pl.errors)
	committed.PollErrorKinds = nonEmpty(pl.errors)
	committed.PollLatency = summarize(pl.lat)

	rp := &Report{
		Endpoint:       o.Endpoint,
		Connections:    o.Connections,
		DurationS:      o.Duration.Seconds(),
		WarmupS:        o.Warmup.Seconds(),
		Size:           o.Size,
		Collection:     o.Collection,
		Appends:        phaseReportOf("POST "+appendPath, appends),
		Committed:      committed,
		Cheap:          phaseReportOf("GET "+readPath, cheap),
		TLSConnections: int(loadDials.Load()),
	}
	rp.Reconnects = rp.TLSConnections - o.Connections
	if gl != nil {
		rp.Governance = gl.report()
	}
	if rp.Cheap.PerSecond > 0 {
		rp.Ratio = round3(rp.Appends.PerSecond / rp.Cheap.PerSecond)
	}
	a, c := rp.Appends, rp.Cheap
	if a.ServerCPU != nil && a.GeneratorCPU != nil && c.ServerCPU != nil && c.GeneratorCPU != nil {
		perAppend := a.ServerCPU.PerRequestUS + a.GeneratorCPU.PerRequestUS
		perCheap := c.ServerCPU.PerRequestUS + c.GeneratorCPU.PerRequestUS
		if perAppend > 0 {
			x := round3(perCheap / perAppend)
			rp.CPURatio = &x
		}
	}
	return rp, nil
}
