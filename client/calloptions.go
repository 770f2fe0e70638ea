package client

import "time"

// AppendOption configures AppendToLedger: InCollection, WithTags,
// WaitForCommit, PollInterval, MaxAttempts.
type AppendOption interface{ applyAppend(*appendSettings) }

// ReadOption configures the reads that poll: GetLedgerEntry,
// GetLedgerEntries and GetTransactionReceipt. PollInterval, MaxAttempts and
// WaitForCommit are ReadOptions.
type ReadOption interface{ applyRead(*pollSettings) }

// PollOption is an option of polling, for both appends and reads.
type PollOption struct{ apply func(*pollSettings) }

func (o PollOption) applyAppend(s *appendSettings) { o.apply(&s.poll) }
func (o PollOption) applyRead(s *pollSettings)     { o.apply(s) }

// PollInterval sets the wait between the queries of a poll (default
// Options.PollInterval). Range pages that are Loading are re-requested with
// a backoff that starts at it and doubles, up to 5s.
func PollInterval(d time.Duration) PollOption {
	return PollOption{func(s *pollSettings) { s.interval = max(d, 0) }}
}

// MaxAttempts bounds the queries of a poll (default Options.PollAttempts);
// n < 1 means no bound but the context's. For a range, it bounds the
// requests of each Loading page.
func MaxAttempts(n int) PollOption {
	return PollOption{func(s *pollSettings) { s.attempts = n }}
}

// WaitForCommit makes AppendToLedger wait until the write is committed,
// and GetTransactionReceipt wait for commit instead of failing with
// ErrUncommitted: AppendToLedger polls the transaction's status, and
// GetTransactionReceipt asks for the receipt again, at the poll interval
// within the poll's bounds. Reads of entries wait for commit anyway.
func WaitForCommit() PollOption {
	return PollOption{func(s *pollSettings) { s.waitCommit = true }}
}

// InCollection makes AppendToLedger write to collection id instead of the
// ledger's default collection ("subledger:0").
func InCollection(id string) AppendOption { return collectionOption(id) }

type collectionOption string

func (o collectionOption) applyAppend(s *appendSettings) { s.collection = string(o) }

// appendSettings are the settings of one AppendToLedger call.
type appendSettings struct {
	collection string
	tags       []string
	poll       pollSettings
}

// pollSettings are the settings of one poll.
type pollSettings struct {
	interval   time.Duration
	attempts   int // < 1: unbounded
	waitCommit bool
}

// pollDefaults returns the client's poll settings.
func (c *Client) pollDefaults() pollSettings {
	return pollSettings{interval: c.pollInterval, attempts: c.pollAttempts}
}

func (c *Client) readSettings(opts []ReadOption) pollSettings {
	s := c.pollDefaults()
	for _, o := range opts {
		if o != nil {
			o.applyRead(&s)
		}
	}
	return s
}

// more reports whether a poll that has made n queries may make another.
func (s pollSettings) more(n int) bool { return s.attempts < 1 || n < s.attempts }

// loadingDelay is the wait before re-requesting a Loading range page for
// the n-th time (n from 1): the poll interval doubled each time, up to
// maxLoadingDelay.
func (s pollSettings) loadingDelay(n int) time.Duration {
	d := s.interval
	for i := 1; i < n && d < maxLoadingDelay; i++ {
		d *= 2
	}
	return min(d, max(maxLoadingDelay, s.interval))
}

const maxLoadingDelay = 5 * time.Second
