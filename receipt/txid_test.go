package receipt_test

import (
	"errors"
	"testing"

	"github.com/ledgerd/ledgerd/receipt"
)

func TestParseTxID(t *testing.T) {
	for _, s := range []string{"2.35", "1.1", "18446744073.9", "9223372036854775807.9223372036854775807"} {
		if id, err := receipt.ParseTxID(s); err != nil || id.String() != s {
			t.Errorf("ParseTxID(%q) = %v, %v", s, id, err)
		}
	}
	for _, s := range []string{"", "2", "2.", ".3", "a.b", "2.3.4", "0.5", "5.0", "0.0", "-1.2", "02.3", "2.05", "2.+3", " 2.3", "2.3 ",
		"99999999999999999999.1", "9223372036854775808.1"} {
		if _, err := receipt.ParseTxID(s); !errors.Is(err, receipt.ErrBadTxID) {
			t.Errorf("ParseTxID(%q) error = %v, want ErrBadTxID", s, err)
		}
	}
}

// FuzzParseTxID: an id that parses prints back as the input (one spelling
// per id), and every TxID with positive view and seqno below 2^63 parses
// back from its String.
func FuzzParseTxID(f *testing.F) {
	for _, s := range []string{"2.35", "1.1", "0.0", "a.b", "", "02.3"} {
		f.Add(s, uint64(2), uint64(35))
	}
	f.Fuzz(func(t *testing.T, s string, view, seqno uint64) {
		id, err := receipt.ParseTxID(s)
		if err == nil && id.String() != s {
			t.Fatalf("ParseTxID(%q) round-trips to %q", s, id.String())
		}
		want := receipt.TxID{View: view, Seqno: seqno}
		got, err := receipt.ParseTxID(want.String())
		valid := view > 0 && seqno > 0 && view < 1<<63 && seqno < 1<<63
		if valid != (err == nil) || valid && got != want {
			t.Fatalf("ParseTxID(%q) = %v, %v", want.String(), got, err)
		}
	})
}
