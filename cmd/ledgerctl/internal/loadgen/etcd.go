package loadgen

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
	"sync/atomic"
)

// etcdPutPath is the v3 JSON gateway's put (etcd 3.4 and later).
const etcdPutPath = "/v3/kv/put"

// etcdPut is the body of one put of a value of size bytes to key.
func etcdPut(key string, size int) ([]byte, error) {
	return json.Marshal(map[string]string{
		"key":   base64.StdEncoding.EncodeToString([]byte(key)),
		"value": base64.StdEncoding.EncodeToString([]byte(strings.Repeat("x", size))),
	})
}

// RunEtcd measures etcd under the load Run puts on ledgerd: o.Connections
// keep-alive mTLS HTTP/1.1 connections, each putting values of o.Size bytes
// back to back through etcd's v3 JSON gateway (POST /v3/kv/put, key and
// value base64), each connection to its own key (Collection/<n>), for
// o.Warmup, then o.Duration measured. o.CertFile is the client certificate
// and key, o.ServiceCert the CA that signed the server's certificate.
//
// etcd answers a put once it is committed (a quorum has it in its WAL,
// fsynced) and applied, so the put's latency is also its append-to-commit
// latency: the report gives it in both places. There is no second phase.
func RunEtcd(ctx context.Context, o Options, stderr io.Writer) (*Report, error) {
	t, err := newTarget(o)
	if err != nil {
		return nil, err
	}
	reqs := make([][]byte, o.Connections)
	for i := range reqs {
		body, err := etcdPut(o.Collection+"/"+strconv.Itoa(i), o.Size)
		if err != nil {
			return nil, err
		}
		reqs[i] = t.request("POST", etcdPutPath, body)
	}
	var dials atomic.Int64
	// Preflight: one put, so that a wrong URL or credential fails once and
	// clearly.
	pc := &conn{t: t, dials: &dials}
	rep, err := pc.roundTrip(ctx, reqs[0], true)
	pc.close()
	if err != nil {
		return nil, fmt.Errorf("first put to %s: %w", o.Endpoint, err)
	}
	if rep.status != 200 || !strings.Contains(string(rep.body), `"revision"`) {
		return nil, fmt.Errorf("first put: HTTP %d: %.300s", rep.status, rep.body)
	}
	dials.Store(0)

	conns, stopConns, err := openConns(ctx, t, o.Connections, &dials)
	if err != nil {
		return nil, err
	}
	defer stopConns()

	fmt.Fprintf(stderr, "bench: etcd puts: %s warm-up, %s measured, %d connections...\n", o.Warmup, o.Duration, o.Connections)
	puts := runPhaseEach(ctx, conns, o.Warmup, o.Duration, func(i int) []byte { return reqs[i] }, nil, 0)
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}
	p := phaseReportOf("POST "+etcdPutPath, puts)
	rp := &Report{
		Endpoint:       o.Endpoint,
		Server:         "etcd",
		Connections:    o.Connections,
		DurationS:      o.Duration.Seconds(),
		WarmupS:        o.Warmup.Seconds(),
		Size:           o.Size,
		Collection:     o.Collection,
		Appends:        p,
		Committed:      CommitReport{Measured: p.Requests, Latency: p.Latency},
		TLSConnections: int(dials.Load()),
	}
	rp.Reconnects = rp.TLSConnections - o.Connections
	return rp, nil
}
