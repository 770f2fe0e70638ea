package auth

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"sync/atomic"
	"time"
)

const (
	// maxJWKSSize caps a JWKS document.
	maxJWKSSize = 1 << 20
	// fetchTimeout bounds one JWKS fetch.
	fetchTimeout = 10 * time.Second
	// minRefetch is the least time between two fetches of one JWKS URL,
	// whatever triggers them (unknown kids, expiry, failures).
	minRefetch = 30 * time.Second
)

// keySource supplies an issuer's signing keys.
type keySource interface {
	// current returns the keys to verify with now.
	current(ctx context.Context) (*keySet, error)
	// refetch is called when a token names a kid that current did not
	// have; it returns a newer key set, or false if there is none (static
	// keys, or a fetch within the last minRefetch).
	refetch(ctx context.Context) (*keySet, bool)
}

// staticKeys is a JWKS loaded once from a file.
type staticKeys struct{ set *keySet }

func (s staticKeys) current(context.Context) (*keySet, error) { return s.set, nil }
func (s staticKeys) refetch(context.Context) (*keySet, bool)  { return nil, false }

// loadJWKSFile reads and parses a JWKS file at construction time.
func loadJWKSFile(path string, log *slog.Logger) (staticKeys, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return staticKeys{}, fmt.Errorf("auth: couldn't read JWKS file: %w", err)
	}
	set, skipped, err := parseJWKS(data)
	logSkipped(log, "file", path, skipped)
	if err != nil {
		return staticKeys{}, fmt.Errorf("auth: couldn't load JWKS file %s: %w", path, err)
	}
	return staticKeys{set}, nil
}

// logSkipped warns about keys a JWKS listed but that can't be used.
func logSkipped(log *slog.Logger, kind, where string, skipped []error) {
	for _, err := range skipped {
		log.Warn("auth: ignoring JWKS key", kind, where, "reason", err)
	}
}

// remoteKeys is a JWKS fetched from a URL and cached. It is refreshed when
// older than the refresh interval and when a token names an unknown kid,
// never more than once per minRefetch; a failed fetch keeps the previous
// keys.
type remoteKeys struct {
	url    string
	client *http.Client
	every  time.Duration
	now    func() time.Time
	log    *slog.Logger

	snap atomic.Pointer[keySnapshot] // nil until the first successful fetch

	sem     chan struct{} // holds one token while a fetch is under way
	lastTry time.Time     // guarded by sem
	lastErr error         // guarded by sem
}

// keySnapshot is a fetched key set and when it was fetched.
type keySnapshot struct {
	set     *keySet
	fetched time.Time
}

func newRemoteKeys(url string, client *http.Client, opts JWTOptions) *remoteKeys {
	return &remoteKeys{
		url: url, client: client, every: opts.RefreshInterval, now: opts.Now, log: opts.Logger,
		sem: make(chan struct{}, 1),
	}
}

func (r *remoteKeys) current(ctx context.Context) (*keySet, error) {
	snap := r.snap.Load()
	if snap != nil && r.now().Sub(snap.fetched) < r.every {
		return snap.set, nil
	}
	return r.update(ctx, false)
}

func (r *remoteKeys) refetch(ctx context.Context) (*keySet, bool) {
	before := r.snap.Load()
	set, err := r.update(ctx, true)
	if err != nil || before != nil && set == before.set {
		return nil, false
	}
	return set, true
}

// update fetches the JWKS if it is due, one fetch at a time, and returns
// the newest keys it has. A caller that holds usable keys doesn't wait for
// another caller's routine refresh.
func (r *remoteKeys) update(ctx context.Context, unknownKID bool) (*keySet, error) {
	snap := r.snap.Load()
	if !r.acquire(ctx, snap == nil || unknownKID) {
		if snap != nil {
			return snap.set, nil
		}
		return nil, fmt.Errorf("%w: %w", ErrKeysUnavailable, ctx.Err())
	}
	defer r.release()
	snap = r.snap.Load() // another caller may have fetched meanwhile
	now := r.now()
	if !r.due(snap, now, unknownKID) {
		return r.best(snap)
	}
	set, err := r.fetch(ctx)
	if err != nil && ctx.Err() != nil {
		return r.best(snap) // the caller gave up; not the issuer's fault
	}
	r.lastTry, r.lastErr = now, err
	if err != nil {
		r.log.Warn("auth: couldn't refresh JWKS, keeping previous keys", "url", r.url, "err", err)
		return r.best(snap)
	}
	r.snap.Store(&keySnapshot{set: set, fetched: now})
	r.log.Info("auth: fetched JWKS", "url", r.url, "keys", len(set.keys))
	return set, nil
}

// acquire takes the fetch semaphore, waiting for it only if wait is set.
func (r *remoteKeys) acquire(ctx context.Context, wait bool) bool {
	if !wait {
		select {
		case r.sem <- struct{}{}:
			return true
		default:
			return false
		}
	}
	select {
	case r.sem <- struct{}{}:
		return true
	case <-ctx.Done():
		return false
	}
}

func (r *remoteKeys) release() { <-r.sem }

// due reports whether a fetch should happen now. Called with sem held.
func (r *remoteKeys) due(snap *keySnapshot, now time.Time, unknownKID bool) bool {
	if !r.lastTry.IsZero() && now.Sub(r.lastTry) < minRefetch {
		return false
	}
	return snap == nil || unknownKID || now.Sub(snap.fetched) >= r.every
}

// best returns the cached keys, or why there are none. Called with sem held.
func (r *remoteKeys) best(snap *keySnapshot) (*keySet, error) {
	if snap != nil {
		return snap.set, nil
	}
	if r.lastErr != nil {
		return nil, fmt.Errorf("%w: %w", ErrKeysUnavailable, r.lastErr)
	}
	return nil, fmt.Errorf("%w: JWKS not fetched yet", ErrKeysUnavailable)
}

// fetch downloads and parses the JWKS.
func (r *remoteKeys) fetch(ctx context.Context) (*keySet, error) {
	ctx, cancel := context.WithTimeout(ctx, fetchTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, r.url, nil)
	if err != nil {
		return nil, fmt.Errorf("auth: couldn't fetch JWKS: %w", err)
	}
	req.Header.Set("Accept", "application/json")
	resp, err := r.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("auth: couldn't fetch JWKS: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("auth: couldn't fetch JWKS from %s: HTTP status %s", r.url, resp.Status)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxJWKSSize+1))
	if err != nil {
		return nil, fmt.Errorf("auth: couldn't read JWKS from %s: %w", r.url, err)
	}
	if len(body) > maxJWKSSize {
		return nil, errors.New("auth: couldn't fetch JWKS: body is larger than 1 MiB")
	}
	set, skipped, err := parseJWKS(body)
	logSkipped(r.log, "url", r.url, skipped)
	return set, err
}
