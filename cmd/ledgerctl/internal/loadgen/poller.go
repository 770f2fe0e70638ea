package loadgen

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"time"
)

// poller polls the committed transaction id over its own connection.
type poller struct {
	conn    *conn
	req     []byte // a cheap authenticated GET
	target  *target
	tracker *commitTracker
	polls   int
	errors  map[string]int
	lat     []time.Duration
}

// run polls until ctx ends.
func (p *poller) run(ctx context.Context) {
	for ctx.Err() == nil {
		sent := time.Now()
		rep, err := p.conn.roundTrip(ctx, p.req, false)
		recv := time.Now()
		if ctx.Err() != nil {
			return
		}
		id, ok := parseTxID(rep.txID)
		switch {
		case err != nil || rep.status != http.StatusOK:
			p.errors[errorKind(rep, err)]++
			sleepCtx(ctx, errorBackoff)
			continue
		case !ok:
			p.errors["no transaction id"]++
		default:
			p.polls++
			p.lat = append(p.lat, recv.Sub(sent))
			p.tracker.observe(id, recv)
		}
		for _, u := range p.tracker.takeUncertain() {
			state, err := p.status(ctx, u.id)
			if err != nil {
				p.errors[err.Error()]++
			}
			p.tracker.settle(u, state, time.Now())
		}
		sleepCtx(ctx, time.Until(sent.Add(pollInterval)))
	}
}

// status asks the state of one transaction (rare: only after a view change).
func (p *poller) status(ctx context.Context, id txid) (string, error) {
	rep, err := p.conn.roundTrip(ctx, p.target.request("GET", statusPath(id), nil), true)
	if err != nil || rep.status != http.StatusOK {
		return "", errors.New(errorKind(rep, err))
	}
	var body struct{ State string }
	if err := json.Unmarshal(rep.body, &body); err != nil {
		return "", errors.New("status: not JSON")
	}
	return body.State, nil
}

func statusPath(id txid) string {
	return "/app/transactions/" + id.String() + "/status?api-version=" + apiVersion
}

func sleepCtx(ctx context.Context, d time.Duration) {
	if d <= 0 {
		return
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}
