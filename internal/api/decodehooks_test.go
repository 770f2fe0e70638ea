package api

import (
	"reflect"
	"strings"
	"testing"
)

// fastHookCorpus are append bodies with hooks, those the fast path must
// take first.
var fastHookCorpus = []string{
	`{"contents":"x","preHooks":[{"functionId":"check"}]}`,
	` { "preHooks" : [ { "functionId" : "a" } , {"functionId":"b.c-d_1"} ] , "contents" : "é" , "postHooks":[{"functionId":"z"}] } `,
	`{"contents":"","postHooks":[{"functionId":"p"}]}`,
	`{"contents":"x","preHooks":[{"functionId":"1"},{"functionId":"2"},{"functionId":"3"},{"functionId":"4"},{"functionId":"5"}]}`,
	// Not taken by the fast path: the full decoder decides.
	`{"contents":"x","preHooks":[{"functionId":"1"},{"functionId":"2"},{"functionId":"3"},{"functionId":"4"},{"functionId":"5"},{"functionId":"6"}]}`,
	`{"contents":"x","preHooks":[]}`,
	`{"contents":"x","preHooks":[{"functionId":"check","properties":{"arguments":["a"]}}]}`,
	`{"contents":"x","preHooks":[{"functionId":"_bad"}]}`,
	`{"contents":"x","preHooks":[{"functionId":""}]}`,
	`{"contents":"x","preHooks":[{"functionId":"` + strings.Repeat("a", MaxFunctionIDBytes+1) + `"}]}`,
	`{"contents":"x","preHooks":[{"functionId":"a"}],"preHooks":[{"functionId":"b"}]}`,
	`{"contents":"x","contents":"y","preHooks":[{"functionId":"a"}]}`,
	`{"contents":"x","preOperationHooks":[{"functionId":"a"}]}`,
	`{"contents":"a\nb","preHooks":[{"functionId":"a"}]}`,
	`{"contents":"x","preHooks":[{"functionId":"\u0061"}]}`,
	`{"contents":"x","preHooks":[{"functionId":"a"}]} x`,
	`{"contents":"x","preHooks":[{"functionId":"a"},]}`,
	`{"contents":"x","preHooks":[{"functionId":"a"}],}`,
	`{"contents":"x","preHooks":[{"functionId":"a"}]`,
	`{"contents":"x","preHooks":{"functionId":"a"}}`,
	`{"contents":"x","preHooks":[{"functionId":"a"}],"collectionId":"c"}`,
	`{"contents":"\xff","preHooks":[{"functionId":"a"}]}`,
	`{"preHooks":[{"functionId":"a"}]}`,
	`{"contents":"x"}`,
	`{"contents":1,"preHooks":[{"functionId":"a"}]}`,
}

// TestFastHookRequest: what fastHookRequest accepts, the full decoder
// decodes to the same contents and hooks; the common shapes take it.
func TestFastHookRequest(t *testing.T) {
	for i, body := range fastHookCorpus {
		_, _, ok := fastHookRequest([]byte(body))
		if want := i < 4; ok != want {
			t.Errorf("fastHookRequest(%.60q) ok = %v, want %v", body, ok, want)
		}
		checkFastHookRequest(t, body)
	}
}

func checkFastHookRequest(t *testing.T, body string) {
	contents, h, ok := fastHookRequest([]byte(body))
	if !ok {
		return
	}
	want, wantHooks, err := decodeEntryFull([]byte(body), "collectionId", "c", true)
	if err != nil {
		t.Fatalf("fastHookRequest(%q) accepts what the full decoder refuses: %v", body, err)
	}
	if string(contents) != string(want) || !reflect.DeepEqual(h, wantHooks) {
		t.Fatalf("fastHookRequest(%q) = %q %+v; the full decoder gives %q %+v", body, contents, h, want, wantHooks)
	}
}

func FuzzFastHookRequest(f *testing.F) {
	for _, s := range fastHookCorpus {
		f.Add(s)
	}
	f.Fuzz(checkFastHookRequest)
}
