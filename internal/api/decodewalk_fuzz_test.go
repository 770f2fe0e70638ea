package api

import (
	"encoding/json"
	"testing"
)

// decodeObject's member walk agrees with encoding/json on valid objects.
func FuzzDecodeObjectWalk(f *testing.F) {
	for _, s := range []string{`{"a":1,"b":"x\"}","c":{"d":[1,{"e":"]"}]},"f":null,"g":true, "h" : -1.5e3 }`, `{}`, ` { "k\u0041" : "v" } `, `{"a":[]}`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		var want map[string]json.RawMessage
		if json.Unmarshal([]byte(s), &want) != nil || want == nil {
			return
		}
		got := map[string]json.RawMessage{}
		fields := map[string]func(json.RawMessage) error{}
		for k := range want {
			k := k
			fields[k] = func(raw json.RawMessage) error { got[k] = raw; return nil }
		}
		if err := decodeObject([]byte(s), fields); err != nil {
			return // duplicates: encoding/json keeps the last
		}
		for k, w := range want {
			var a, b any
			json.Unmarshal(w, &a)
			json.Unmarshal(got[k], &b)
			aj, _ := json.Marshal(a)
			bj, _ := json.Marshal(b)
			if string(aj) != string(bj) {
				t.Fatalf("%q: %s: got %s want %s", s, k, got[k], w)
			}
		}
	})
}

// jsonArrayItems agrees with encoding/json on valid arrays.
func FuzzJSONArrayItems(f *testing.F) {
	for _, s := range []string{`[]`, ` [ 1 , "a]" , {"b":[2]} , null ] `, `[[],[[]]]`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		var want []json.RawMessage
		if json.Unmarshal([]byte(s), &want) != nil || want == nil {
			return
		}
		got := jsonArrayItems(json.RawMessage(skipSpace([]byte(s))))
		if len(got) != len(want) {
			t.Fatalf("%q: %d items, want %d", s, len(got), len(want))
		}
		for i := range want {
			if string(got[i]) != string(want[i]) {
				t.Fatalf("%q: item %d = %s, want %s", s, i, got[i], want[i])
			}
		}
	})
}
