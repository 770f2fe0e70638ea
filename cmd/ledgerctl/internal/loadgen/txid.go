package loadgen

import "github.com/ledgerd/ledgerd/receipt"

// txid is a transaction id, <view>.<seqno>.
type txid = receipt.TxID

// parseTxID parses a transaction id with receipt.ParseTxID.
func parseTxID(s string) (txid, bool) {
	id, err := receipt.ParseTxID(s)
	return id, err == nil
}
