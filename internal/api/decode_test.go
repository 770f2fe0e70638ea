package api

import (
	"encoding/json"
	"net/url"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/ledgerd/ledgerd/internal/auth"
	"github.com/ledgerd/ledgerd/internal/node"
)

func TestDecodeEntryRequest(t *testing.T) {
	for body, want := range map[string]string{
		`{"contents":"x"}`:                                  "x",
		` { "contents" : "a\nb" } `:                         "a\nb",
		`{"contents":""}`:                                   "",
		`{"contents":"\ud83d\ude00"}`:                       "😀",
		`{"contents":"\u00e9\u0000"}`:                       "é\x00",
		`{"contents":"` + strings.Repeat(`\"`, 8192) + `"}`: strings.Repeat(`"`, 8192),
	} {
		got, err := decodeEntryRequest([]byte(body), "collectionId", "c")
		if err != nil || string(got) != want {
			t.Errorf("decodeEntryRequest(%.40q) = %.40q, %v; want %.40q", body, got, err, want)
		}
	}
}

// The entry model's read-only fields may come along: the transaction id is
// ignored; a collection must be the one the query names.
func TestDecodeEntryRequestReadOnlyFields(t *testing.T) {
	if got, err := decodeEntryRequest([]byte(`{"contents":"x","collectionId":"c","transactionId":"2.5"}`), "collectionId", "c"); err != nil || string(got) != "x" {
		t.Fatalf("entry read back and posted again: %q, %v", got, err)
	}
	for _, body := range []string{
		`{"contents":"x","collectionId":"other"}`,
		`{"contents":"x","subLedgerId":"c"}`,
		`{"contents":"x","collectionId":5}`,
		`{"contents":"x","transactionId":7}`,
	} {
		if _, err := decodeEntryRequest([]byte(body), "collectionId", "c"); err == nil || classify(err).status != 400 {
			t.Errorf("decodeEntryRequest(%s) = %v, want a 400", body, err)
		}
	}
}

func TestHasLoneSurrogate(t *testing.T) {
	for raw, want := range map[string]bool{
		`"plain"`:               false,
		`"\ud83d\ude00"`:        false,
		`"\\ud800"`:             false, // an escaped backslash, then text
		`"\ud800"`:              true,
		`"\ud800\n"`:            true,
		`"\ud800\u0041"`:        true,
		`"\udfff"`:              true,
		`"x\ud83d\ude00\udc00"`: true,
	} {
		if got := hasLoneSurrogate([]byte(raw)); got != want {
			t.Errorf("hasLoneSurrogate(%s) = %v, want %v", raw, got, want)
		}
	}
}

func TestDecodeRoleRequest(t *testing.T) {
	const id = "0A:1B:2C:3D:4E:5F:60:71:82:93:A4:B5:C6:D7:E8:F9:0A:1B:2C:3D:4E:5F:60:71:82:93:A4:B5:C6:D7:E8:F9"
	if r, err := decodeRoleRequest([]byte(`{"assignedRole":"Contributor"}`), false, id); err != nil || !slices.Equal(r, []string{"Contributor"}) {
		t.Fatalf("single: %v %v", r, err)
	}
	// Every role of the list is kept (the caller canonicalises and drops
	// repeats); user-defined role names are shaped like any other.
	if r, err := decodeRoleRequest([]byte(`{"assignedRoles":["Reader","Administrator","auditor"]}`), true, id); err != nil || !slices.Equal(r, []string{"Reader", "Administrator", "auditor"}) {
		t.Fatalf("multi: %v %v", r, err)
	}
	// A user as GET returns it: the read-only userId is the path's (in any
	// letter case, as fingerprints are normalised). Without a role, the
	// merge patch changes nothing (nil).
	reader := []string{"Reader"}
	for _, tc := range []struct {
		body  string
		multi bool
		want  []string
	}{
		{`{"assignedRole":"Reader","userId":"` + id + `"}`, false, reader},
		{`{"userId":"` + strings.ToLower(id) + `","assignedRole":"Reader"}`, false, reader},
		{`{"assignedRoles":["Reader"],"userId":"` + id + `"}`, true, reader},
		{`{"user_id":"` + id + `","assignedRoles":["Reader"]}`, true, reader}, // ACL's programmability guide
		{`{}`, false, nil},
		{` { } `, true, nil},
		{`{"userId":"` + id + `"}`, false, nil},
	} {
		if r, err := decodeRoleRequest([]byte(tc.body), tc.multi, id); err != nil || !slices.Equal(r, tc.want) || (r == nil) != (tc.want == nil) {
			t.Errorf("%s: %v %v, want %v", tc.body, r, err, tc.want)
		}
	}
	// Another user's id, or one that is not a string, is refused.
	other := strings.Replace(id, "0A", "0B", 1)
	for _, body := range []string{`{"assignedRole":"Reader","userId":"` + other + `"}`, `{"userId":"` + other + `"}`, `{"user_id":"` + other + `"}`,
		`{"assignedRole":"Reader","userId":null}`, `{"assignedRole":"Reader","userId":7}`, `{"userId":""}`,
		`{"assignedRole":"Reader","userId":"` + id + `","userId":"` + id + `"}`, `{"assignedRole":null}`} {
		_, err := decodeRoleRequest([]byte(body), false, id)
		if ae := classify(err); err == nil || ae.status != 400 || ae.code != codeInvalidInput {
			t.Errorf("%s: %v, want 400 InvalidInput", body, err)
		}
	}
	// Bad role lists: each a 400 before anything is stored.
	long := strings.Repeat("r", MaxRoleNameBytes+1)
	many := `["` + strings.Repeat(`a","`, MaxUserRoles) + `a"]`
	for _, body := range []string{`{"assignedRoles":[]}`, `{"assignedRoles":"Reader"}`, `{"assignedRoles":[""]}`,
		`{"assignedRoles":["` + long + `"]}`, `{"assignedRoles":` + many + `}`, `{"assignedRoles":["a\u0000"]}`,
		`{"assignedRoles":["a\u202e"]}`, `{"assignedRoles":[7]}`, `{"assignedRoles":["Reader",]}`} {
		_, err := decodeRoleRequest([]byte(body), true, id)
		if ae := classify(err); err == nil || ae.status != 400 || ae.code != codeInvalidInput {
			t.Errorf("%s: %v, want 400 InvalidInput", clip(body), err)
		}
	}
	if _, err := decodeRoleRequest([]byte(`{"userId":"`+other+`"}`), false, id); err == nil ||
		!strings.Contains(err.Error(), "not the user id of the path") {
		t.Errorf("differing userId: %v", err)
	}
}

func TestDecodeRolesBody(t *testing.T) {
	want := []roleJSON{{RoleName: "auditor", RoleActions: []string{auth.ActionRead, auth.ActionReceiptsRead}}}
	for _, body := range []string{
		`[{"roleName":"auditor","roleActions":["` + auth.ActionRead + `","` + auth.ActionReceiptsRead + `","` + auth.ActionRead + `"]}]`,
		`{"roles":[{"role_name":"auditor","role_actions":["` + auth.ActionRead + `","` + auth.ActionReceiptsRead + `"]}]}`,
	} {
		got, err := decodeRolesBody([]byte(body))
		if err != nil || len(got) != 1 || got[0].RoleName != want[0].RoleName || !slices.Equal(got[0].RoleActions, want[0].RoleActions) {
			t.Errorf("%s: %+v %v", body, got, err)
		}
	}
	tooMany := "[" + strings.Repeat(`{"roleName":"x","roleActions":[]},`, MaxRolesPerRequest) + `{"roleName":"x","roleActions":[]}]`
	manyActions := `[{"roleName":"x","roleActions":["a"` + strings.Repeat(`,"a"`, MaxRoleActions) + `]}]`
	for _, body := range []string{``, `[]`, `{}`, `{"roles":[]}`, `[{"roleName":"x"}]`, `[{"roleActions":[]}]`, `[1]`,
		`[{"roleName":"reader","roleActions":[]}]`, `[{"roleName":"ADMINISTRATOR","roleActions":[]}]`,
		`[{"roleName":"x","roleActions":[]},{"roleName":"x","roleActions":[]}]`,
		`[{"roleName":"x","role_name":"y","roleActions":[]}]`, `[{"roleName":"x","roleActions":[""]}]`,
		`[{"roleName":"` + strings.Repeat("n", MaxRoleNameBytes+1) + `","roleActions":[]}]`,
		`[{"roleName":"x","roleActions":["` + strings.Repeat("a", MaxActionBytes+1) + `"]}]`,
		tooMany, manyActions, `[{"roleName":"x","roleActions":[]}] []`, "[{\"roleName\":\"\xff\",\"roleActions\":[]}]",
		`[{"roleName":"x","roleActions":[],"extra":1}]`} {
		_, err := decodeRolesBody([]byte(body))
		if ae := classify(err); err == nil || ae.status != 400 || ae.code != codeInvalidInput {
			t.Errorf("%s: %v, want 400 InvalidInput", clip(body), err)
		}
	}
}

func TestDefaults(t *testing.T) {
	if DefaultMaxCollections != 5000 || MaxContentsBytes != 8192 || MaxCollectionIDBytes != 256 || MaxBodyBytes != 1<<20 {
		t.Fatal("ACL limits changed")
	}
	if got := (Config{}).withDefaults().MaxCollections; got != DefaultMaxCollections {
		t.Fatalf("default MaxCollections %d", got)
	}
	if defaultDialect.version != "2022-05-13" {
		t.Fatalf("default dialect %q", defaultDialect.version)
	}
	for v, d := range supportedVersions {
		if d.version != v || d.pageSeqnos == 0 {
			t.Errorf("supportedVersions[%q] = %+v", v, d)
		}
	}
}

func FuzzDecodeEntryRequest(f *testing.F) {
	for _, s := range []string{`{"contents":"x"}`, `{"contents":"\ud800"}`, `{"contents":1}`, `{}`, `{"contents":"a","contents":"b"}`,
		`{"contents":"\u0041\ud83d\ude00"}`, `[`, "{\"contents\":\"\xff\"}", `{"contents":"x"} {}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		contents, err := decodeEntryRequest(body, "collectionId", "c")
		if err != nil {
			if classify(err).status != 400 {
				t.Fatalf("error %v is not a 400", err)
			}
			return
		}
		if !utf8.Valid(contents) || len(contents) > MaxContentsBytes {
			t.Fatalf("accepted contents of %d bytes, valid UTF-8 %v", len(contents), utf8.Valid(contents))
		}
		// What was accepted is what the body says.
		var v struct{ Contents *string }
		if json.Unmarshal(body, &v) != nil || v.Contents == nil || *v.Contents != string(contents) {
			t.Fatalf("accepted %q from %q, which encoding/json reads differently", contents, body)
		}
	})
}

func FuzzDecodeRoleRequest(f *testing.F) {
	for _, s := range []string{`{"assignedRole":"Reader"}`, `{"assignedRoles":["Reader","Contributor"]}`, `{"assignedRole":null}`, `{"assignedRoles":[]}`} {
		f.Add([]byte(s), false)
		f.Add([]byte(s), true)
	}
	f.Fuzz(func(t *testing.T, body []byte, multi bool) {
		r, err := decodeRoleRequest(body, multi, "u")
		if err != nil {
			if classify(err).status != 400 {
				t.Fatalf("error %v is not a 400", err)
			}
			return
		}
		for _, name := range r {
			if name == "" || len(name) > MaxRoleNameBytes || strings.ContainsFunc(name, forbiddenIDRune) {
				t.Fatalf("accepted bad role name %q", name)
			}
		}
		if multi && len(r) > MaxUserRoles {
			t.Fatalf("accepted %d roles", len(r))
		}
	})
}

func FuzzParseRangeQuery(f *testing.F) {
	for _, s := range []string{"", "fromTransactionId=2.1&toTransactionId=2.5", "collectionId=a%3Ab&fromTransactionId=2.1002",
		"subLedgerId=x", "fromTransactionId=2.9&toTransactionId=2.1", "toTransactionId=9.9223372036854775807", "collectionId=&x=1"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, rawQuery string) {
		q, err := url.ParseQuery(rawQuery)
		if err != nil {
			return
		}
		for _, d := range []dialect{supportedVersions["0.1-preview"], supportedVersions["2022-05-13"]} {
			rq, err := parseRangeQuery(q, d)
			if err != nil {
				if classify(err).status != 400 {
					t.Fatalf("error %v is not a 400", err)
				}
				continue
			}
			if rq.from == 0 || (rq.hasTo && rq.from > rq.to) || rq.collection == "" || len(rq.collection) > MaxCollectionIDBytes {
				t.Fatalf("accepted %+v from %q", rq, rawQuery)
			}
			// A next link, which the server gives only for a window within
			// the range, parses back to the same range.
			next := rq.from + d.pageSeqnos
			if (rq.hasTo && next > rq.to) || next >= 1<<62 {
				continue
			}
			link := nextLink(d, rq, nodeTxID(next))
			u, err := url.Parse(link)
			if err != nil {
				t.Fatal(err)
			}
			back, err := parseRangeQuery(u.Query(), d)
			if err != nil || back.collection != rq.collection || back.from != next || back.to != rq.to || back.hasTo != rq.hasTo {
				t.Fatalf("next link %q of %+v parses to %+v, %v", link, rq, back, err)
			}
		}
	})
}

func nodeTxID(seqno uint64) node.TxID { return node.TxID{View: 3, Seqno: seqno} }

func TestOneStringObject(t *testing.T) {
	for _, v := range []string{"", "subledger:0", "a b", `q"uote`, `back\slash`, "tab\t", "é", "\u2028", "<&>", string([]byte{0xff})} {
		got := oneStringObject("collectionId", v)
		want, _ := marshal(map[string]string{"collectionId": v})
		if string(got) != string(want) {
			t.Errorf("oneStringObject(%q) = %s, want %s", v, got, want)
		}
		var m map[string]string
		if err := json.Unmarshal(got, &m); err != nil || len(m) != 1 {
			t.Errorf("oneStringObject(%q) = %s is not a one-key object: %v", v, got, err)
		}
	}
}
