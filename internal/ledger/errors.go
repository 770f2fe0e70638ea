package ledger

import (
	"errors"
	"fmt"
	"syscall"
)

// Errors returned by the entry parsers and the Ledger. Test with errors.Is.
var (
	// ErrMalformed reports an entry whose bytes do not follow CCF's entry
	// format (ccf-format.md §1.3–1.5).
	ErrMalformed = errors.New("ledger: malformed entry")
	// ErrAuthentication reports an entry whose AES-GCM tag does not verify
	// with the given ledger secret: the entry was altered, or the key is not
	// the one that wrote it (§1.4).
	ErrAuthentication = errors.New("ledger: entry authentication failed")
	// ErrSnapshotEntry reports a snapshot entry (entry type 1 or the snapshot
	// bit of the IV) where a transaction was expected (§1.7).
	ErrSnapshotEntry = errors.New("ledger: snapshot entry not supported here")
	// ErrNotFound reports a seqno outside [FirstSeqno, LastSeqno].
	ErrNotFound = errors.New("ledger: seqno not in the ledger")
	// ErrNotContiguous reports appended entries whose seqnos do not continue
	// the ledger, or whose views go backwards.
	ErrNotContiguous = errors.New("ledger: entries do not continue the ledger")
	// ErrCommitted reports a Truncate that would drop committed entries.
	ErrCommitted = errors.New("ledger: cannot truncate committed entries")
	// ErrClosed reports a call on a closed Ledger.
	ErrClosed = errors.New("ledger: closed")
)

// malformed returns an error wrapping ErrMalformed with a reason.
func malformed(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrMalformed, fmt.Sprintf(format, args...))
}

// CorruptionError reports something malformed on disk: a chunk file whose
// name, header, entries or positions table break the layout of
// ccf-format.md §1.1–1.2. It names the file, the first seqno affected and the
// byte offset in the file.
type CorruptionError struct {
	File   string // file name within the ledger directory ("" when about the directory)
	Seqno  uint64 // first seqno affected (0 when unknown)
	Offset int64  // byte offset in File (-1 when not about a position)
	Reason string // what is wrong
	Err    error  // underlying error, if any
}

func (e *CorruptionError) Error() string {
	s := fmt.Sprintf("ledger: corrupt ledger file %q at seqno %d", e.File, e.Seqno)
	if e.Offset >= 0 {
		s += fmt.Sprintf(" (offset %d)", e.Offset)
	}
	s += ": " + e.Reason
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s
}

// Unwrap returns the underlying error.
func (e *CorruptionError) Unwrap() error { return e.Err }

// IsResourceExhausted reports whether err is a shortage of disk space or
// quota (ENOSPC, EDQUOT) or of file descriptors (EMFILE, ENFILE). Such an
// error from Sync leaves the Ledger usable: the entries stay appended in
// memory, and the next Sync writes them again, from the last durable point,
// before it fsyncs. Any other I/O error of a writer method is sticky.
func IsResourceExhausted(err error) bool {
	return IsNoSpace(err) || IsTooManyFiles(err)
}

// IsNoSpace reports whether err is a shortage of disk space or quota.
func IsNoSpace(err error) bool {
	return errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT)
}

// IsTooManyFiles reports whether err is a shortage of file descriptors, of
// the process (EMFILE) or of the system (ENFILE).
func IsTooManyFiles(err error) bool {
	return errors.Is(err, syscall.EMFILE) || errors.Is(err, syscall.ENFILE)
}
