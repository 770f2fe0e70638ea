package node

import "github.com/ledgerd/ledgerd/receipt"

// TxID identifies a transaction: receipt.TxID, "<view>.<seqno>".
type TxID = receipt.TxID

// ErrBadTxID reports a transaction id that is not "<view>.<seqno>".
var ErrBadTxID = receipt.ErrBadTxID

// ParseTxID is receipt.ParseTxID, the one parser of transaction ids.
func ParseTxID(s string) (TxID, error) { return receipt.ParseTxID(s) }
