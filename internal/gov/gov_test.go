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
	if r, ok := gov.UserRole(st, "A"); !ok || r != auth.RoleAdministrator {
		t.Fatalf("role of A: %v %v", r, ok)
	}
	if got := gov.CountRole(st, auth.RoleAdministrator); got != 1 {
		t.Fatalf("%d administrators", got)
	}
	st.apply([]ledger.MapWrites{gov.SetUser("R", auth.RoleContributor), gov.RemoveUser("A")})
	if _, ok := (gov.Directory{State: st}).Role("A"); ok {
		t.Fatal("removed user still has a role")
	}
	if users := gov.Users(st); len(users) != 1 || users[0] != (gov.User{ID: "R", Role: auth.RoleContributor}) {
		t.Fatalf("users %+v", users)
	}
	// A damaged record grants nothing.
	st.apply([]ledger.MapWrites{{Name: tables.UsersMap, Writes: []ledger.KV{{Key: []byte("X"), Value: []byte(`{"assignedRole":"Root"}`)}}}})
	if _, ok := gov.UserRole(st, "X"); ok {
		t.Fatal("a user with an unknown role has a role")
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
