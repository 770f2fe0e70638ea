package node

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// TxID identifies a transaction as CCF does: the view (Raft term) in which it
// was sequenced and its seqno (Raft index, the position in the ledger).
type TxID struct {
	View, Seqno uint64
}

// String formats the id as "<view>.<seqno>", the form of the
// x-ms-ccf-transaction-id header.
func (t TxID) String() string { return fmt.Sprintf("%d.%d", t.View, t.Seqno) }

// ErrBadTxID reports a transaction id that is not "<view>.<seqno>".
var ErrBadTxID = errors.New("malformed transaction id")

// ParseTxID parses "<view>.<seqno>" (both decimal, seqno > 0, view > 0).
func ParseTxID(s string) (TxID, error) {
	v, q, ok := strings.Cut(s, ".")
	if !ok || len(s) > 41 {
		return TxID{}, fmt.Errorf("%w: %q", ErrBadTxID, s)
	}
	view, err1 := parseDecimal(v)
	seqno, err2 := parseDecimal(q)
	if err1 != nil || err2 != nil || view == 0 || seqno == 0 {
		return TxID{}, fmt.Errorf("%w: %q", ErrBadTxID, s)
	}
	return TxID{View: view, Seqno: seqno}, nil
}

func parseDecimal(s string) (uint64, error) {
	if s == "" || (len(s) > 1 && s[0] == '0') {
		return 0, ErrBadTxID
	}
	for _, c := range s {
		if c < '0' || c > '9' {
			return 0, ErrBadTxID
		}
	}
	return strconv.ParseUint(s, 10, 63)
}

// Status is a transaction's status as CCF defines it
// (doc/use_apps/verify_tx.rst, src/node/rpc/tx_status.h).
type Status int

// The statuses. Transitions: Unknown → Pending → Committed, or Pending →
// Invalid (rolled back), or Pending → Unknown just after an election.
const (
	StatusUnknown Status = iota
	StatusPending
	StatusCommitted
	StatusInvalid
)

// String returns the JSON enum string of the status.
func (s Status) String() string {
	switch s {
	case StatusPending:
		return "Pending"
	case StatusCommitted:
		return "Committed"
	case StatusInvalid:
		return "Invalid"
	default:
		return "Unknown"
	}
}
