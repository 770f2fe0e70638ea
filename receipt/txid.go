package receipt

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// TxID identifies a transaction as CCF does: the view (Raft term) in which
// it was sequenced and its seqno (Raft index, its position in the ledger).
// Its text form "<view>.<seqno>" is that of the x-ms-ccf-transaction-id
// header, of ACL's transactionId fields and of commit evidence.
type TxID struct {
	View, Seqno uint64
}

// String formats the id as "<view>.<seqno>".
func (t TxID) String() string {
	return strconv.FormatUint(t.View, 10) + "." + strconv.FormatUint(t.Seqno, 10)
}

// ErrBadTxID reports a transaction id that is not "<view>.<seqno>".
var ErrBadTxID = errors.New("malformed transaction id")

// ParseTxID parses "<view>.<seqno>": both decimal, without sign or leading
// zeros, positive, and below 2^63 (CCF's view and seqno are int64s). It is
// the one parser of transaction ids in ledgerd, its server, client and
// tools; its errors wrap ErrBadTxID. Every id this rule refuses is one CCF
// never writes: String of a parsed id gives back the input.
func ParseTxID(s string) (TxID, error) {
	v, q, ok := strings.Cut(s, ".")
	if !ok || len(s) > 41 {
		return TxID{}, fmt.Errorf("%w: %q is not <view>.<seqno>", ErrBadTxID, s)
	}
	view, err1 := parsePositive(v)
	seqno, err2 := parsePositive(q)
	if err1 != nil || err2 != nil {
		return TxID{}, fmt.Errorf("%w: %q: view and seqno must be positive decimal numbers", ErrBadTxID, s)
	}
	return TxID{View: view, Seqno: seqno}, nil
}

func parsePositive(s string) (uint64, error) {
	if s == "" || s[0] == '0' {
		return 0, ErrBadTxID
	}
	for _, c := range s {
		if c < '0' || c > '9' {
			return 0, ErrBadTxID
		}
	}
	return strconv.ParseUint(s, 10, 63)
}
