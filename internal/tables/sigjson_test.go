package tables

import (
	"bytes"
	"encoding/json"
	"reflect"
	"testing"
)

// sigJSONSeeds are signature values in the shape marshalSignature writes
// and variants that encoding/json reads differently or refuses.
var sigJSONSeeds = []string{
	`{"sig":"MEUCIQ==","node":"ab","hashed_nonce":"00","seqno":10,"view":2,"commit_seqno":0,"commit_view":0,"root":"ff","cert":"-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"}`,
	`{"sig":"","node":"","hashed_nonce":"","seqno":0,"view":0,"commit_seqno":0,"commit_view":0,"root":"","cert":""}`,
	`{"sig":"a","node":"b","hashed_nonce":"c","seqno":18446744073709551615,"view":1,"commit_seqno":2,"commit_view":3,"root":"d","cert":"e"}`,
	`{"sig":"a","node":"b","hashed_nonce":"c","seqno":18446744073709551616,"view":1,"commit_seqno":2,"commit_view":3,"root":"d","cert":"e"}`,
	`{"sig":"a","node":"b","hashed_nonce":"c","seqno":01,"view":1,"commit_seqno":2,"commit_view":3,"root":"d","cert":"e"}`,
	`{"sig":"a","node":"b","hashed_nonce":"c","seqno":-1,"view":1,"commit_seqno":2,"commit_view":3,"root":"d","cert":"e"}`,
	`{"sig":"a","node":"b","hashed_nonce":"c","seqno":1.0,"view":1,"commit_seqno":2,"commit_view":3,"root":"d","cert":"e"}`,
	`{"sig":"a","node":"b","hashed_nonce":"c","seqno":1,"view":1,"commit_seqno":2,"commit_view":3,"root":"d","cert":"e"} `,
	`{"sig":"a","node":"b","hashed_nonce":"c","seqno":1,"view":1,"commit_seqno":2,"commit_view":3,"root":"d","cert":"e"}x`,
	`{"sig":"a\\n","node":"b\u003c","hashed_nonce":"c\t","seqno":1,"view":1,"commit_seqno":2,"commit_view":3,"root":"d\"","cert":"é"}`,
	`{"sig":"a","node":"b","hashed_nonce":"c","seqno":1,"view":1,"commit_seqno":2,"commit_view":3,"root":"d","cert":"e\n`,
	`{"SIG":"a","node":"b","seqno":1,"root":"d","cert":"e","sig":"x"}`,
	`{"sig":null,"seqno":"1"}`,
	`[]`,
	``,
}

// FuzzParseSignature: unmarshalSignature reads every value as
// json.Unmarshal does, and refuses with its error whatever it refuses.
func FuzzParseSignature(f *testing.F) {
	for _, s := range sigJSONSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		in := bytes.Clone(b)
		got, err := unmarshalSignature(b)
		want := new(PrimarySignature)
		werr := json.Unmarshal(b, want)
		if !bytes.Equal(b, in) {
			t.Fatal("the input was modified")
		}
		if (err == nil) != (werr == nil) || err != nil && err.Error() != werr.Error() {
			t.Fatalf("error %v, encoding/json's %v", err, werr)
		}
		if err == nil && !reflect.DeepEqual(got, want) {
			t.Fatalf("parsed %+v, encoding/json %+v", got, want)
		}
	})
}

// FuzzAppendSignatureJSON: marshalSignature writes what json.Marshal does,
// and parsePlainSignature reads back what it writes without escapes.
func FuzzAppendSignatureJSON(f *testing.F) {
	f.Add("MEUCIQ==", "ab", "00", uint64(10), uint64(2), uint64(0), uint64(0), "ff", "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n")
	f.Add("<&>", "\u2028", "\x00\x1f\x7f", uint64(1<<63), uint64(0), uint64(1), uint64(2), "\"\\", "\xff\n")
	f.Fuzz(func(t *testing.T, sig, node, nonce string, seqno, view, cseqno, cview uint64, root, cert string) {
		ps := &PrimarySignature{Sig: sig, Node: node, HashedNonce: nonce, Seqno: seqno, View: view, CommitSeqno: cseqno, CommitView: cview, Root: root, Cert: cert}
		got, err := marshalSignature(ps)
		if err != nil {
			t.Fatal(err)
		}
		want, err := json.Marshal(ps)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("wrote %s, json.Marshal %s", got, want)
		}
		plain := true
		for _, s := range []string{sig, node, nonce, root, cert} {
			if _, ok := appendPlainString(nil, s); !ok {
				plain = false
			}
		}
		back, ok := parsePlainSignature(got)
		if ok != plain {
			t.Fatalf("read back the plain JSON %s: %v", got, ok)
		}
		if ok && !reflect.DeepEqual(back, ps) {
			t.Fatalf("read back %+v, wrote %+v", back, ps)
		}
	})
}

// The signature values a node writes are read without encoding/json, in
// two allocations (the PrimarySignature and its strings).
func TestParsePlainSignatureAllocs(t *testing.T) {
	v, err := marshalSignature(&PrimarySignature{Sig: "MEUCIQ==", Node: "ab", HashedNonce: zeroNonce, Seqno: 10, View: 2, Root: "ff", Cert: "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"})
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := parsePlainSignature(v); !ok {
		t.Fatalf("%s is not read as plain", v)
	}
	if n := testing.AllocsPerRun(100, func() { _, _ = unmarshalSignature(v) }); n > 2 {
		t.Fatalf("%v allocations", n)
	}
}
