package loadgen

import (
	"fmt"
	"strconv"
	"strings"
)

// txid is a transaction id, <view>.<seqno>.
type txid struct{ view, seqno uint64 }

func (id txid) String() string { return fmt.Sprintf("%d.%d", id.view, id.seqno) }

// parseTxID parses a transaction id; view and seqno are positive.
func parseTxID(s string) (txid, bool) {
	v, q, ok := strings.Cut(s, ".")
	if !ok {
		return txid{}, false
	}
	view, err1 := strconv.ParseUint(v, 10, 64)
	seqno, err2 := strconv.ParseUint(q, 10, 64)
	if err1 != nil || err2 != nil || view == 0 || seqno == 0 {
		return txid{}, false
	}
	return txid{view, seqno}, true
}
