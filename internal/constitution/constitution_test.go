package constitution

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"reflect"
	"strings"
	"testing"
	"time"
)

// testCert returns a fresh self-signed certificate in PEM and its DER.
func testCert(t *testing.T) (string, []byte) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "user"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})), der
}

// fingerprintOf is ledgerd's certificate user id, computed independently.
func fingerprintOf(der []byte) string {
	sum := sha256.Sum256(der)
	parts := make([]string, len(sum))
	for i, b := range sum {
		parts[i] = fmt.Sprintf("%02X", b)
	}
	return strings.Join(parts, ":")
}

func proposal(t *testing.T, actions ...map[string]any) []byte {
	t.Helper()
	b, err := json.Marshal(map[string]any{"actions": actions})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func loadDefault(t *testing.T) *Constitution {
	t.Helper()
	c, err := Load(Default(), Limits{})
	if err != nil {
		t.Fatalf("Load(Default()): %v", err)
	}
	return c
}

// members returns a KV with the given member ids and statuses.
func members(statuses map[string]string) MemKV {
	kv := NewMemKV()
	for id, st := range statuses {
		kv.Set("public:ccf.gov.members.info", []byte(id), []byte(`{"status":"`+st+`"}`))
	}
	return kv
}

func snapshot(kv MemKV) map[string]map[string]string {
	out := map[string]map[string]string{}
	for t, m := range kv {
		out[t] = map[string]string{}
		for k, v := range m {
			out[t][k] = string(v)
		}
	}
	return out
}

func TestDefaultValidate(t *testing.T) {
	c := loadDefault(t)
	cert, _ := testCert(t)
	ctx := context.Background()

	good := proposal(t, map[string]any{"name": "set_user", "args": map[string]any{"cert": cert, "role": "Contributor"}})
	res, err := c.Validate(ctx, good)
	if err != nil || !res.Valid {
		t.Fatalf("Validate(set_user) = %+v, %v; want valid", res, err)
	}

	bad := map[string]struct {
		body []byte
		want string
	}{
		"no role":      {proposal(t, map[string]any{"name": "set_user", "args": map[string]any{"cert": cert}}), "role must be one of"},
		"bad role":     {proposal(t, map[string]any{"name": "set_user", "args": map[string]any{"cert": cert, "role": "Owner"}}), "role must be one of"},
		"not a cert":   {proposal(t, map[string]any{"name": "set_user", "args": map[string]any{"cert": "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n", "role": "Reader"}}), "X.509"},
		"no args":      {proposal(t, map[string]any{"name": "set_user"}), "args must be of type object"},
		"unknown":      {proposal(t, map[string]any{"name": "make_me_admin", "args": map[string]any{}}), `no such action "make_me_admin"`},
		"not JSON":     {[]byte(`{"actions": [`), "not JSON"},
		"no actions":   {[]byte(`{"actions": []}`), "no actions"},
		"actions type": {[]byte(`{"actions": {}}`), "array of actions"},
		"bad member":   {proposal(t, map[string]any{"name": "remove_member", "args": map[string]any{"member_id": "abc"}}), "64 hexadecimal"},
		"rekey args":   {proposal(t, map[string]any{"name": "trigger_ledger_rekey", "args": map[string]any{"x": 1}}), "no arguments"},
	}
	for name, tc := range bad {
		res, err := c.Validate(ctx, tc.body)
		if err != nil {
			t.Errorf("%s: Validate error %v; want a result", name, err)
			continue
		}
		if res.Valid || !strings.Contains(res.Description, tc.want) {
			t.Errorf("%s: Validate = %+v; want invalid mentioning %q", name, res, tc.want)
		}
	}
}

func TestDefaultResolve(t *testing.T) {
	c := loadDefault(t)
	ctx := context.Background()
	kv := members(map[string]string{"m1": "Active", "m2": "Active", "m3": "Active", "m4": "Accepted"})
	p := proposal(t, map[string]any{"name": "trigger_snapshot"})
	steps := []struct {
		votes []Vote
		want  State
	}{
		{nil, Open},
		{[]Vote{{"m1", true}}, Open},
		{[]Vote{{"m1", true}, {"m4", true}}, Open}, // m4 is not Active: does not count
		{[]Vote{{"m1", true}, {"m2", true}}, Accepted},
		{[]Vote{{"m1", false}}, Open},
		{[]Vote{{"m1", false}, {"m2", false}}, Rejected},
		{[]Vote{{"m1", true}, {"m2", false}, {"m3", true}}, Accepted},
	}
	for _, s := range steps {
		got, err := c.Resolve(ctx, kv, p, "m1", s.votes)
		if err != nil || got != s.want {
			t.Errorf("Resolve(votes %v) = %q, %v; want %q", s.votes, got, err, s.want)
		}
	}
	// One Active member: its own yes is a majority.
	got, err := c.Resolve(ctx, members(map[string]string{"m1": "Active"}), p, "m1", []Vote{{"m1", true}})
	if err != nil || got != Accepted {
		t.Errorf("single member: Resolve = %q, %v; want Accepted", got, err)
	}
}

func TestDefaultApply(t *testing.T) {
	c := loadDefault(t)
	ctx := context.Background()
	cert, der := testCert(t)
	kv := members(map[string]string{"m1": "Active"})
	kv.Set("public:ccf.gov.proposals_info", []byte("other"), []byte(`{"state":"Open"}`))
	kv.Set("public:ccf.gov.proposals_info", []byte("done"), []byte(`{"state":"Accepted"}`))
	kv.Set("public:ccf.gov.proposals_info", []byte("this"), []byte(`{"state":"Open"}`))
	kv.Set("public:ccf.internal.signatures", make([]byte, 8), []byte(`{"root":"abcd"}`))

	p := proposal(t,
		map[string]any{"name": "set_user", "args": map[string]any{"cert": cert, "role": "Contributor"}},
		map[string]any{"name": "set_user", "args": map[string]any{"user_id": "aad-oid-1", "role": "Reader"}},
		map[string]any{"name": "set_member", "args": map[string]any{"cert": cert, "member_data": map[string]any{"who": "x"}}},
		map[string]any{"name": "set_constitution", "args": map[string]any{"constitution": "export function validate() {}"}},
		map[string]any{"name": "trigger_ledger_rekey"},
	)
	if res, err := c.Validate(ctx, p); err != nil || !res.Valid {
		t.Fatalf("Validate = %+v, %v", res, err)
	}
	effects, err := c.Apply(ctx, kv, p, "this")
	if err != nil {
		t.Fatalf("Apply: %v", err)
	}
	check := func(table, key, want string) {
		t.Helper()
		got, ok := kv.Get(table, []byte(key))
		if !ok || string(got) != want {
			t.Errorf("%s[%q] = %q (present %v); want %q", table, key, got, ok, want)
		}
	}
	check("public:ledgerd.users", fingerprintOf(der), `{"assignedRole":"Contributor"}`)
	check("public:ledgerd.users", "aad-oid-1", `{"assignedRole":"Reader"}`)
	sum := sha256.Sum256(der)
	memberID := hex.EncodeToString(sum[:])
	check("public:ccf.gov.members.certs", memberID, cert)
	check("public:ccf.gov.members.info", memberID, `{"member_data":{"who":"x"},"status":"Accepted"}`)
	check("public:ccf.gov.members.acks", memberID, `{"state_digest":"abcd"}`)
	check("public:ccf.gov.constitution", string(make([]byte, 8)), "export function validate() {}")
	check("public:ccf.gov.proposals_info", "other", `{"state":"Dropped"}`)
	check("public:ccf.gov.proposals_info", "done", `{"state":"Accepted"}`)
	check("public:ccf.gov.proposals_info", "this", `{"state":"Open"}`)
	if want := []Effect{{Name: "node.triggerLedgerRekey", Args: []any{}}}; !reflect.DeepEqual(effects, want) {
		t.Errorf("effects = %#v; want %#v", effects, want)
	}

	// remove_user by CCF's hex id removes the fingerprint-keyed user.
	if _, err := c.Apply(ctx, kv, proposal(t, map[string]any{"name": "remove_user", "args": map[string]any{"user_id": memberID}}), "p2"); err != nil {
		t.Fatalf("Apply(remove_user): %v", err)
	}
	if _, ok := kv.Get("public:ledgerd.users", []byte(fingerprintOf(der))); ok {
		t.Error("remove_user by hex id left the user")
	}
}

// An action that fails half-way (set_member_data of a member that does not
// exist, after a set_user) applies nothing.
func TestDefaultApplyFailureAppliesNothing(t *testing.T) {
	c := loadDefault(t)
	kv := members(map[string]string{"m1": "Active"})
	before := snapshot(kv)
	p := proposal(t,
		map[string]any{"name": "set_user", "args": map[string]any{"user_id": "u", "role": "Reader"}},
		map[string]any{"name": "set_member_data", "args": map[string]any{"member_id": strings.Repeat("a", 64), "member_data": map[string]any{}}},
	)
	_, err := c.Apply(context.Background(), kv, p, "p")
	var se *ScriptError
	if !errors.As(err, &se) || !strings.Contains(se.Message, "does not exist") {
		t.Fatalf("Apply = %v; want a ScriptError saying the member does not exist", err)
	}
	if got := snapshot(kv); !reflect.DeepEqual(got, before) {
		t.Errorf("KV changed by a failed apply: %v; was %v", got, before)
	}
}

// Node functions need a Host; without one the action fails clearly.
func TestNetworkNeedsHost(t *testing.T) {
	c := loadDefault(t)
	kv := NewMemKV()
	kv.Set("public:ccf.gov.service.config", make([]byte, 8), []byte(`{}`))
	kv.Set("public:ccf.gov.nodes.info", []byte(strings.Repeat("b", 64)), []byte(`{"status":"Pending"}`))
	p := proposal(t, map[string]any{"name": "transition_node_to_trusted", "args": map[string]any{"node_id": strings.Repeat("b", 64), "valid_from": "20260101000000Z"}})
	_, err := c.Apply(context.Background(), kv, p, "p")
	if err == nil || !strings.Contains(err.Error(), "getLatestLedgerSecretSeqno is not available") {
		t.Fatalf("Apply without host = %v; want not available", err)
	}
	_, err = c.WithHost(fakeHost{}).Apply(context.Background(), kv, p, "p")
	if err != nil {
		t.Fatalf("Apply with host: %v", err)
	}
	got, _ := kv.Get("public:ccf.gov.nodes.info", []byte(strings.Repeat("b", 64)))
	if string(got) != `{"status":"Trusted","ledger_secret_seqno":42}` {
		t.Errorf("node info = %s", got)
	}
}

type fakeHost struct{}

func (fakeHost) GenerateNetworkCertificate(string, int64) (string, error) { return "", nil }
func (fakeHost) GenerateEndorsedCertificate(string, string, int64) (string, error) {
	return "", nil
}
func (fakeHost) LatestLedgerSecretSeqno() (int64, error) { return 42, nil }

func TestBallotProgramCache(t *testing.T) {
	c := &programCache{max: 2}
	yes := "export function vote (proposal, proposerId) { return true; }"
	p1, err := c.compile(yes)
	if err != nil {
		t.Fatal(err)
	}
	if p2, _ := c.compile(yes); p2 != p1 {
		t.Fatal("the same ballot text was compiled again")
	}
	if _, err := c.compile("export function vote ("); err == nil || len(c.progs) != 1 {
		t.Fatalf("a ballot that does not compile: err %v, %d cached", err, len(c.progs))
	}
	c.compile("export function vote () { return false; }")
	c.compile("export function vote () { return 1 > 0; }")
	if len(c.progs) > c.max {
		t.Fatalf("%d programs cached, max %d", len(c.progs), c.max)
	}
	// A cached program runs in a fresh runtime each time: a ballot's global
	// state does not survive from one run to the next.
	counter := "var n = 0;\nexport function vote () { n++; return n === 1; }"
	for i := 0; i < 2; i++ {
		yes, err := RunBallot(context.Background(), Limits{}, nil, counter, []byte("{}"), "m")
		if err != nil || !yes {
			t.Fatalf("run %d: %v %v", i, yes, err)
		}
	}
}
