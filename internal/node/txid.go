package node

import "github.com/ledgerd/ledgerd/receipt"

// TxID identifies a transaction: receipt.TxID, "<view>.<seqno>".
type TxID = receipt.TxID

// ErrBadTxID reports a transaction id that is not "<view>.<seqno>".
var ErrBadTxID = receipt.ErrBadTxID

// ParseTxID is receipt.ParseTxID, the one parser of transaction ids.
func ParseTxID(s string) (TxID, error) { return receipt.ParseTxID(s) }

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
