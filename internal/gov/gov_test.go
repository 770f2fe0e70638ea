package gov_test

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/pem"
	"slices"
	"strings"
	"testing"

	"github.com/ledgerd/ledgerd/internal/auth"
	"github.com/ledgerd/ledgerd/internal/gov"
	"github.com/ledgerd/ledgerd/internal/identity"
	"github.com/ledgerd/ledgerd/internal/ledger"
	"github.com/ledgerd/ledgerd/internal/tables"
)

// mapState is a gov.State over applied writes, as the node applies them.
type mapState map[string]map[string][]byte

func (s mapState) apply(ws []ledger.MapWrites) {
	for _, w := range ws {
		if s[w.Name] == nil {
			s[w.Name] = map[string][]byte{}
		}
		for _, kv := range w.Writes {
			s[w.Name][string(kv.Key)] = kv.Value
		}
		for _, k := range w.Removes {
			delete(s[w.Name], string(k))
		}
	}
}

func (s mapState) Get(name string, key []byte) ([]byte, bool) {
	v, ok := s[name][string(key)]
	return v, ok
}

func (s mapState) Range(name string, fn func(key, value []byte) bool) {
	keys := make([]string, 0, len(s[name]))
	for k := range s[name] {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		if !fn([]byte(k), s[name][k]) {
			return
		}
	}
}

func memberPEM(t *testing.T) ([]byte, string) {
	t.Helper()
	certPEM, _, err := identity.NewClientIdentity("member", nil)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := pem.Decode(certPEM)
	sum := sha256.Sum256(b.Bytes)
	return certPEM, hex.EncodeToString(sum[:])
}

func TestGenesisRoundTrip(t *testing.T) {
	m, id := memberPEM(t)
	ws, err := gov.Genesis{
		Members: [][]byte{m},
		Users:   []gov.User{{ID: "A", Role: auth.RoleAdministrator}, {ID: "R", Role: auth.RoleReader}},
	}.Writes()
	if err != nil {
		t.Fatal(err)
	}
	st := mapState{}
	st.apply(ws)
	members, err := gov.Members(st)
	if err != nil || len(members) != 1 || members[0].ID != id || members[0].Status != gov.MemberActive || string(members[0].CertPEM) != string(m) {
		t.Fatalf("members %+v, %v", members, err)
	}
	if !gov.IsActiveMember(st, id) || gov.IsActiveMember(st, "other") {
		t.Fatal("IsActiveMember")
	}
	if script, ok := gov.Constitution(st); !ok || script != gov.DefaultConstitution {
		t.Fatal("constitution")
	}
	if r, ok := gov.UserRoles(st, "A"); !ok || !slices.Equal(r, []string{"Administrator"}) {
		t.Fatalf("roles of A: %v %v", r, ok)
	}
	// One built-in role is stored in the single-role form ledgers written
	// before multi-role users hold, byte for byte.
	if raw, _ := st.Get(tables.UsersMap, []byte("A")); string(raw) != `{"assignedRole":"Administrator"}` {
		t.Fatalf("record of A: %s", raw)
	}
	if got := gov.CountRole(st, "Administrator"); got != 1 {
		t.Fatalf("%d administrators", got)
	}
	st.apply([]ledger.MapWrites{gov.SetUser("R", "contributor", "auditor", "Contributor"), gov.RemoveUser("A")})
	if _, ok := gov.UserRoles(st, "A"); ok {
		t.Fatal("removed user still has a role")
	}
	users := gov.Users(st)
	if len(users) != 1 || users[0].ID != "R" || !slices.Equal(users[0].Roles, []string{"Contributor", "auditor"}) || users[0].Role != auth.RoleContributor {
		t.Fatalf("users %+v", users)
	}
	if raw, _ := st.Get(tables.UsersMap, []byte("R")); string(raw) != `{"assignedRoles":["Contributor","auditor"]}` {
		t.Fatalf("record of R: %s", raw)
	}
	// Old records, as the constitution's set_user also writes them, decode;
	// damaged ones grant nothing.
	for raw, want := range map[string][]string{
		`{"assignedRole":"Reader"}`:                            {"Reader"},
		`{"assignedRole":"reader"}`:                            {"Reader"},
		`{"assignedRole":"auditor"}`:                           {"auditor"},
		`{"assignedRoles":["Reader","Administrator"]}`:         {"Reader", "Administrator"},
		`{"assignedRole":""}`:                                  nil,
		`{"assignedRoles":[]}`:                                 nil,
		`{"assignedRoles":[""]}`:                               nil,
		`{"assignedRole":"Reader","assignedRoles":["Reader"]}`: nil,
		`{}`:               nil,
		`null`:             nil,
		`{"assignedRole":`: nil,
	} {
		st.apply([]ledger.MapWrites{{Name: tables.UsersMap, Writes: []ledger.KV{{Key: []byte("X"), Value: []byte(raw)}}}})
		got, ok := gov.UserRoles(st, "X")
		if ok != (want != nil) || !slices.Equal(got, want) {
			t.Errorf("%s: %v %v, want %v", raw, got, ok, want)
		}
	}
	// User-defined roles.
	st.apply([]ledger.MapWrites{gov.SetRole("auditor", []string{"a", "b"}), gov.SetRole("zz", []string{})})
	if a, ok := gov.RoleActions(st, "auditor"); !ok || !slices.Equal(a, []string{"a", "b"}) {
		t.Fatalf("auditor: %v %v", a, ok)
	}
	if _, ok := gov.RoleActions(st, "Auditor"); ok {
		t.Fatal("user-defined role names are case-sensitive")
	}
	if rs := gov.Roles(st); len(rs) != 2 || rs[0].Name != "auditor" || rs[1].Name != "zz" || len(rs[1].Actions) != 0 {
		t.Fatalf("roles %+v", rs)
	}
	st.apply([]ledger.MapWrites{gov.RemoveRole("auditor")})
	if _, ok := gov.RoleActions(st, "auditor"); ok {
		t.Fatal("removed role")
	}
}

func TestGenesisValidation(t *testing.T) {
	m, _ := memberPEM(t)
	for name, g := range map[string]gov.Genesis{
		"no members":       {},
		"bad member":       {Members: [][]byte{[]byte("not PEM")}},
		"duplicate member": {Members: [][]byte{m, m}},
		"empty user id":    {Members: [][]byte{m}, Users: []gov.User{{Role: auth.RoleReader}}},
		"no role":          {Members: [][]byte{m}, Users: []gov.User{{ID: "u"}}},
		"custom role":      {Members: [][]byte{m}, Users: []gov.User{{ID: "u", Roles: []string{"auditor"}}}},
		"duplicate user":   {Members: [][]byte{m}, Users: []gov.User{{ID: "u", Role: auth.RoleReader}, {ID: "u", Role: auth.RoleReader}}},
	} {
		if _, err := g.Writes(); err == nil || !strings.HasPrefix(err.Error(), "gov: ") {
			t.Errorf("%s: %v", name, err)
		}
	}
}

func TestDigest(t *testing.T) {
	if got := gov.Digest("abc"); got != "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad" {
		t.Fatal(got)
	}
}
