package constitution

import (
	"context"
	"errors"
	"reflect"
	"strings"
	"testing"
)

func TestRunBallot(t *testing.T) {
	ctx := context.Background()
	kv := members(map[string]string{"m1": "Active"})
	p := proposal(t, map[string]any{"name": "set_user", "args": map[string]any{"user_id": "u", "role": "Reader"}})
	cases := map[string]struct {
		ballot string
		want   bool
		err    string
	}{
		"yes": {"export function vote(proposal, proposerId) { return true; }", true, ""},
		"no":  {"export function vote(proposal, proposerId) { return false; }", false, ""},
		// A ballot that reads the proposal and the KV.
		"conditional": {`export function vote(rawProposal, proposerId) {
  const p = JSON.parse(rawProposal);
  const info = ccf.bufToJsonCompatible(ccf.kv["public:ccf.gov.members.info"].get(ccf.strToBuf(proposerId)));
  return p.actions[0].args.role === "Reader" && info.status === "Active";
}`, true, ""},
		"not boolean": {"export function vote() { return 1; }", false, "not a boolean"},
		"no vote":     {"export function ballot() { return true; }", false, "not an exported function"},
		"writes":      {`export function vote() { ccf.kv["public:ledgerd.users"].set(ccf.strToBuf("x"), ccf.strToBuf("y")); return true; }`, false, "read-only"},
		"effects":     {"export function vote() { ccf.node.triggerLedgerRekey(); return true; }", false, "only available in apply"},
		"private":     {`export function vote() { ccf.kv["ledgerd.secrets"].get(ccf.strToBuf("k")); return true; }`, false, "only public tables"},
		"syntax":      {"export function vote( { return true; }", false, "ballot"},
	}
	for name, tc := range cases {
		got, err := RunBallot(ctx, Limits{}, kv, tc.ballot, p, "m1")
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%s: err = %v; want one mentioning %q", name, err, tc.err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("%s: RunBallot = %v, %v; want %v", name, got, err, tc.want)
		}
	}
	if _, ok := kv.Get("public:ledgerd.users", []byte("x")); ok {
		t.Error("a ballot wrote to the KV")
	}
}

func TestModuleShape(t *testing.T) {
	const fns = "\nexport function resolve() { return \"Open\"; }\nexport function apply() {}\n"
	for name, tc := range map[string]struct {
		src string
		err string
	}{
		"functions":   {"export function validate() { return { valid: true }; }" + fns, ""},
		"export list": {"function v() { return { valid: true }; }\nexport { v as validate };" + fns, ""},
		"const":       {"export const validate = () => ({ valid: true });" + fns, ""},
		"import":      {"import { x } from \"y\";\nexport function validate() {}" + fns, "import is not supported"},
		"default":     {"export default function validate() {}" + fns, "only named exports"},
		"missing":     {"export function validate() {}\nexport function resolve() {}\n", "does not export a function apply"},
		"twice":       {"export function validate() {}\nexport { validate };" + fns, "exported twice"},
		"private":     {"function validate() {}" + fns, "does not export a function validate"},
	} {
		_, err := Load(tc.src, Limits{})
		if tc.err == "" && err != nil {
			t.Errorf("%s: Load = %v", name, err)
		}
		if tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)) {
			t.Errorf("%s: Load = %v; want an error mentioning %q", name, err, tc.err)
		}
	}
	// Top-level declarations are the module's, not globals shared between
	// calls; each call starts from the module's initial state.
	c, err := Load("let n = 0;\nexport function validate() { n++; return { valid: true, description: String(n) }; }"+fns, Limits{})
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 2; i++ {
		res, err := c.Validate(context.Background(), nil)
		if err != nil || res.Description != "1" {
			t.Errorf("call %d: Validate = %+v, %v; want description 1 (a fresh module)", i, res, err)
		}
	}
}

// The module transform is deterministic and keeps line numbers.
func TestModuleScriptLines(t *testing.T) {
	src := "// c\nexport function validate() {\n  throw new Error(\"line 3\");\n}\nexport function resolve() {}\nexport function apply() {}\n"
	a, err := moduleScript(src)
	if err != nil {
		t.Fatal(err)
	}
	if b, _ := moduleScript(src); a != b {
		t.Error("moduleScript is not deterministic")
	}
	c, err := Load(src, Limits{})
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.Validate(context.Background(), nil)
	var se *ScriptError
	if !errors.As(err, &se) || se.Func != "validate" || !strings.Contains(se.Message, "constitution.js:3:") {
		t.Errorf("Validate = %v; want a ScriptError at constitution.js:3", err)
	}
}

func TestKVAccess(t *testing.T) {
	c, err := Load(`
export function validate() { ccf.kv["public:ccf.gov.members.info"].size; return { valid: true }; }
export function resolve() { return "Open"; }
export function apply(proposal) {
  const t = JSON.parse(proposal).table;
  ccf.kv[t].set(ccf.strToBuf("k"), ccf.strToBuf("v"));
}
`, Limits{})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if _, err := c.Validate(ctx, nil); err == nil || !strings.Contains(err.Error(), "validate must not read the KV") {
		t.Errorf("validate reading the KV: %v", err)
	}
	for table, ok := range map[string]bool{
		"public:ccf.gov.members.info":              true,
		"public:ledgerd.users":                     true,
		"public:ledgerd.internal.raft.conf_change": false,
		"public:ccf.internal.signatures":           false,
		"private:thing":                            false,
	} {
		kv := NewMemKV()
		_, err := c.Apply(ctx, kv, []byte(`{"table":"`+table+`"}`), "p")
		if ok != (err == nil) {
			t.Errorf("apply writing %s: err = %v; want allowed %v", table, err, ok)
		}
		if _, present := kv.Get(table, []byte("k")); present != ok {
			t.Errorf("apply writing %s: written %v; want %v", table, present, ok)
		}
	}
}

// The map API seen by JavaScript, over a Tx: reads see the call's own
// writes, forEach is in key order over a snapshot, clear and size work.
func TestKVMapAPI(t *testing.T) {
	c, err := Load(`
export function validate() { return { valid: true }; }
export function resolve() { return "Open"; }
export function apply() {
  const m = ccf.kv["public:ccf.gov.t"];
  const out = [];
  m.set(ccf.strToBuf("b"), ccf.strToBuf("2"));
  out.push(ccf.bufToStr(m.get(ccf.strToBuf("b"))), m.has(ccf.strToBuf("a")), m.size);
  m.forEach((v, k) => { out.push(ccf.bufToStr(k) + "=" + ccf.bufToStr(v)); m.set(ccf.strToBuf(ccf.bufToStr(k) + "x"), v); });
  out.push(m.delete(ccf.strToBuf("a")), m.delete(ccf.strToBuf("zz")), m.get(ccf.strToBuf("a")) === undefined);
  ccf.kv["public:ccf.gov.c"].clear();
  ccf.kv["public:ccf.gov.out"].set(ccf.strToBuf("r"), ccf.jsonCompatibleToBuf(out));
}
`, Limits{})
	if err != nil {
		t.Fatal(err)
	}
	kv := NewMemKV()
	kv.Set("public:ccf.gov.t", []byte("a"), []byte("1"))
	kv.Set("public:ccf.gov.c", []byte("x"), []byte("1"))
	kv.Set("public:ccf.gov.c", []byte("y"), []byte("1"))
	if _, err := c.Apply(context.Background(), kv, nil, "p"); err != nil {
		t.Fatal(err)
	}
	got, _ := kv.Get("public:ccf.gov.out", []byte("r"))
	if want := `["2",true,2,"a=1","b=2",true,false,true]`; string(got) != want {
		t.Errorf("out = %s; want %s", got, want)
	}
	if want := (map[string][]byte{"ax": []byte("1"), "b": []byte("2"), "bx": []byte("2")}); !reflect.DeepEqual(kv["public:ccf.gov.t"], want) {
		t.Errorf("table t = %q; want %q", kv["public:ccf.gov.t"], want)
	}
	if _, ok := kv["public:ccf.gov.c"]; ok {
		t.Errorf("clear left %q", kv["public:ccf.gov.c"])
	}
}

func TestTx(t *testing.T) {
	base := NewMemKV()
	base.Set("t", []byte("a"), []byte("1"))
	base.Set("t", []byte("b"), []byte("2"))
	tx := NewTx(base)
	tx.Set("t", []byte("c"), []byte("3"))
	tx.Delete("t", []byte("a"))
	if _, ok := tx.Get("t", []byte("a")); ok {
		t.Error("Tx.Get sees a deleted key")
	}
	var seen []string
	tx.ForEach("t", func(k, v []byte) bool { seen = append(seen, string(k)+string(v)); return true })
	if want := []string{"b2", "c3"}; !reflect.DeepEqual(seen, want) {
		t.Errorf("ForEach = %v; want %v", seen, want)
	}
	if _, ok := base.Get("t", []byte("c")); ok {
		t.Error("a Tx write reached the base before Commit")
	}
	want := []Write{{Table: "t", Key: []byte("a"), Deleted: true}, {Table: "t", Key: []byte("c"), Value: []byte("3")}}
	if got := tx.Writes(); !reflect.DeepEqual(got, want) {
		t.Errorf("Writes = %+v; want %+v", got, want)
	}
	tx.Commit()
	if !reflect.DeepEqual(base["t"], map[string][]byte{"b": []byte("2"), "c": []byte("3")}) {
		t.Errorf("base after Commit = %q", base["t"])
	}
}
