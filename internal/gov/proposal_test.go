package gov_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/ledgerd/ledgerd/internal/gov"
)

func TestDecodeProposal(t *testing.T) {
	p, err := gov.DecodeProposal([]byte(`{"actions":[{"name":"set_user","args":{"user_id":"u","role":"Reader"}},{"name":"trigger_snapshot"}]}`))
	if err != nil || len(p.Actions) != 2 || p.Actions[0].Name != "set_user" || p.Actions[1].Args != nil {
		t.Fatalf("%+v %v", p, err)
	}
	for _, bad := range []string{``, `null`, `[]`, `{}`, `{"actions":null}`, `{"actions":{}}`, `{"actions":[]}`,
		`{"actions":[null]}`, `{"actions":[{"name":""}]}`, `{"actions":[{"name":5}]}`, `{"actions":[{}]}`,
		`{"actions":[{"name":"a"}]} {}`, "{\"actions\":[{\"name\":\"\xff\"}]}",
		`{"actions":[` + strings.Repeat(`{"name":"a"},`, gov.MaxActions) + `{"name":"a"}]}`} {
		if _, err := gov.DecodeProposal([]byte(bad)); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

// FuzzDecodeProposal: the decoder never panics, and what it accepts is a
// JSON object whose actions all have names.
func FuzzDecodeProposal(f *testing.F) {
	for _, s := range []string{`{"actions":[{"name":"set_user","args":{}}]}`, `{"actions":[{"name":"a","args":[1,2]}],"x":1}`, `{"actions":[]}`, `[`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := gov.DecodeProposal(b)
		if err != nil {
			return
		}
		if !json.Valid(b) || len(p.Actions) == 0 || len(p.Actions) > gov.MaxActions {
			t.Fatalf("accepted %q as %+v", b, p)
		}
		for _, a := range p.Actions {
			if a.Name == "" {
				t.Fatalf("accepted an action without a name: %q", b)
			}
		}
	})
}
