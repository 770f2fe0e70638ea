package receipt_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"testing"

	"github.com/ledgerd/ledgerd/receipt"
)

// FuzzParse checks that Parse never panics, that every error wraps a
// sentinel, and that whatever it accepts survives Marshal and Parse again.
// The seeds are kilobytes long, and the fuzzer's minimisation of a new input
// is quadratic in its length, so run it with a short minimisation budget:
//
//	go test -run '^$' -fuzz FuzzParse -fuzztime 20s -fuzzminimizetime 2s ./receipt/
func FuzzParse(f *testing.F) {
	v := loadVector(f)
	snake := snakeCase(f, v.Receipt)
	f.Add([]byte(v.Receipt))
	f.Add(snake)
	f.Add([]byte(`{"receipt":` + string(snake) + `,"state":"Ready","transactionId":"2.35"}`))
	f.Add([]byte(`{"receipt":null,"state":"Loading","transactionId":""}`))
	f.Add([]byte(`{"leaf":"` + v.Expected.Leaf + `","proof":[],"signature":"MEQ=","is_signature_transaction":true}`))
	f.Add([]byte(`{"leaf":"` + v.Expected.Leaf + `","proof":[{"right":"` + v.Expected.Root + `"}],"root":"` + v.Expected.Root + `","signature":"AA=="}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := receipt.Parse(data)
		if err != nil {
			if !errors.Is(err, receipt.ErrMalformed) && !errors.Is(err, receipt.ErrNotReady) {
				t.Fatalf("Parse error wraps no sentinel: %v", err)
			}
			return
		}
		if _, err := r.ComputeRoot(); err != nil {
			t.Fatalf("ComputeRoot of a parsed receipt: %v", err)
		}
		_, _, _ = r.TransactionID() // must not panic
		out, err := json.Marshal(r)
		if err != nil {
			t.Fatalf("Marshal: %v", err)
		}
		r2, err := receipt.Parse(out)
		if err != nil {
			t.Fatalf("Parse(Marshal(r)) = %v\n%s", err, out)
		}
		out2, err := json.Marshal(r2)
		if err != nil {
			t.Fatalf("Marshal: %v", err)
		}
		if !bytes.Equal(out, out2) {
			t.Fatalf("round trip changed the receipt:\n%s\n%s", out, out2)
		}
	})
}
