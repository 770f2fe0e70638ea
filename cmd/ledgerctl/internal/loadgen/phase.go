package loadgen

import (
	"context"
	"sync"
	"time"
)

// workerResult is what one worker measured in one phase.
type workerResult struct {
	lat    []time.Duration
	errors map[string]int
	sample string // the first error's details
}

// phaseResult is one phase's measurement.
type phaseResult struct {
	lat     []time.Duration
	errors  map[string]int
	samples []string
	window  time.Duration
	cpuSelf float64 // cores used by this process in the window, -1 unknown
	cpuSrv  float64 // cores used by the server in the window, -1 unknown
}

// runPhase has every connection's worker send req back to back for warmup,
// then for measure. A request is measured if it completes in the measured
// window. ok, if set, checks a 2xx answer (returning an error kind) and
// learns from it.
func runPhase(ctx context.Context, conns []*conn, warmup, measure time.Duration, req []byte,
	ok func(rep reply, start, end time.Time, measured bool) string, serverPID int) phaseResult {
	return runPhaseEach(ctx, conns, warmup, measure, func(int) []byte { return req }, ok, serverPID)
}

// runPhaseEach is runPhase with each connection's own request: worker i
// sends req(i).
func runPhaseEach(ctx context.Context, conns []*conn, warmup, measure time.Duration, req func(i int) []byte,
	ok func(rep reply, start, end time.Time, measured bool) string, serverPID int) phaseResult {
	begin := time.Now()
	t0 := begin.Add(warmup)
	t1 := t0.Add(measure)
	results := make([]workerResult, len(conns))
	var wg sync.WaitGroup
	for i, c := range conns {
		wg.Go(func() {
			r := &results[i]
			r.errors = map[string]int{}
			req := req(i)
			for ctx.Err() == nil {
				start := time.Now()
				if !start.Before(t1) {
					return
				}
				rep, err := c.roundTrip(ctx, req, false)
				end := time.Now()
				measured := !end.Before(t0) && !end.After(t1)
				kind := ""
				switch {
				case ctx.Err() != nil:
					return
				case err != nil || rep.status/100 != 2:
					kind = errorKind(rep, err)
				case ok != nil:
					kind = ok(rep, start, end, measured)
				}
				if kind != "" {
					r.errors[kind]++
					if r.sample == "" {
						r.sample = errorSample(kind, rep, err)
					}
					if err != nil {
						sleepCtx(ctx, errorBackoff)
					}
					continue
				}
				if measured {
					r.lat = append(r.lat, end.Sub(start))
				}
			}
		})
	}
	sleepCtx(ctx, time.Until(t0))
	srvPID := serverPID
	if srvPID == 0 {
		srvPID = -1 // unknown
	}
	self0, srv0 := procCPU(0), procCPU(srvPID)
	sleepCtx(ctx, time.Until(t1))
	self1, srv1 := procCPU(0), procCPU(srvPID)
	wg.Wait()

	res := phaseResult{errors: map[string]int{}, window: measure, cpuSelf: cores(self0, self1, measure), cpuSrv: cores(srv0, srv1, measure)}
	for _, r := range results {
		res.lat = append(res.lat, r.lat...)
		for k, n := range r.errors {
			res.errors[k] += n
		}
		if r.sample != "" && len(res.samples) < 3 {
			res.samples = append(res.samples, r.sample)
		}
	}
	return res
}
