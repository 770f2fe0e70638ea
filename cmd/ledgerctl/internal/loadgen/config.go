package loadgen

import "time"

// apiVersion is the api-version of every ACL request the bench makes.
const apiVersion = "2022-05-13"

// tagsAPIVersion is the api-version of appends with Options.Tags, the first
// that has entry tags.
const tagsAPIVersion = "2024-12-09-preview"

// txIDHeader is the header that carries a write's transaction id, or the
// committed transaction id a read was served at.
const txIDHeader = "X-Ms-Ccf-Transaction-Id"

// MaxSize bounds Options.Size: the body is built in memory, and the server
// refuses contents over 8 KiB anyway (which the bench reports as errors).
const MaxSize = 1 << 20

// Bounds of the bench's own waits.
const (
	// startTimeout bounds a throwaway ledgerd's start: its announcement,
	// then /healthz answering 200.
	startTimeout = 30 * time.Second
	// stopTimeout bounds a throwaway ledgerd's graceful stop before it is
	// killed.
	stopTimeout = 15 * time.Second
	// pollInterval is the shortest time between the starts of two commit
	// polls: the resolution of append-to-Committed latencies is this or
	// one poll round trip, whichever is longer.
	pollInterval = time.Millisecond
	// errorBackoff keeps a worker whose connection failed from spinning
	// on a dead server.
	errorBackoff = 10 * time.Millisecond
)

// Options are what a run measures and against what.
type Options struct {
	Endpoint    string        // https://HOST[:PORT][/PREFIX]
	CertFile    string        // PEM with the client certificate and key
	ServiceCert string        // PEM service certificate to pin
	Connections int           // concurrent connections, one worker each
	Duration    time.Duration // measured time of each phase
	Warmup      time.Duration // unmeasured time before each phase's measurement
	Timeout     time.Duration // of every request, and of waiting for commits after the append phase
	Size        int           // entry contents, in bytes
	Collection  string        // collection to append to
	Tags        string        // if set, every append carries these tags (?tags=, api-version tagsAPIVersion)
	// PreHook, if set, is the id of a user-defined function every append
	// names as its one pre-hook ({"preHooks":[{"functionId":PreHook}]},
	// api-version tagsAPIVersion, the first with hooks).
	PreHook string
	// GovEvery, if not 0, runs governance alongside the phases: every
	// GovEvery, the member of MemberCert proposes set_user of a fresh user
	// and votes yes (see GovReport).
	GovEvery   time.Duration
	MemberCert string // PEM with a member's certificate and ECDSA key
	// GetPath, if set, is what the read phase GETs (a path and query,
	// e.g. a user-defined endpoint /app/hello) instead of the first
	// append's status.
	GetPath string
}
