package auth_test

import (
	"encoding/json"
	"errors"
	"testing"

	"github.com/ledgerd/ledgerd/internal/auth"
)

func TestParseRole(t *testing.T) {
	for _, r := range []auth.Role{auth.RoleReader, auth.RoleContributor, auth.RoleAdministrator} {
		got, err := auth.ParseRole(r.String())
		if err != nil || got != r {
			t.Errorf("ParseRole(%q) = %v, %v", r.String(), got, err)
		}
	}
	for _, s := range []string{"", "None", "reader", "READER", "Admin", "Administrator ", "Owner", "Reader\x00"} {
		got, err := auth.ParseRole(s)
		if !errors.Is(err, auth.ErrUnknownRole) || got != auth.RoleNone {
			t.Errorf("ParseRole(%q) = %v, %v; want RoleNone, ErrUnknownRole", s, got, err)
		}
	}
}

func TestRoleString(t *testing.T) {
	for r, want := range map[auth.Role]string{
		auth.RoleNone: "None", auth.RoleReader: "Reader", auth.RoleContributor: "Contributor",
		auth.RoleAdministrator: "Administrator", 7: "Role(7)", -1: "Role(-1)",
	} {
		if got := r.String(); got != want {
			t.Errorf("Role(%d).String() = %q, want %q", int(r), got, want)
		}
	}
}

func TestRoleAllows(t *testing.T) {
	roles := []auth.Role{auth.RoleNone, auth.RoleReader, auth.RoleContributor, auth.RoleAdministrator, 4, -1}
	for _, have := range roles {
		for _, need := range roles {
			want := have.Valid() && need.Valid() && have >= need
			if got := have.Allows(need); got != want {
				t.Errorf("%v.Allows(%v) = %v, want %v", have, need, got, want)
			}
		}
	}
	// The ACL mapping, spelled out (acl-api.md §5).
	if !auth.RoleAdministrator.Allows(auth.RoleContributor) || !auth.RoleContributor.Allows(auth.RoleReader) ||
		auth.RoleReader.Allows(auth.RoleContributor) || auth.RoleContributor.Allows(auth.RoleAdministrator) ||
		auth.RoleNone.Allows(auth.RoleReader) || auth.RoleAdministrator.Allows(auth.RoleNone) {
		t.Error("role order is not Reader < Contributor < Administrator")
	}
}

func TestRoleJSON(t *testing.T) {
	type user struct {
		AssignedRole auth.Role `json:"assignedRole"`
	}
	b, err := json.Marshal(user{auth.RoleContributor})
	if err != nil || string(b) != `{"assignedRole":"Contributor"}` {
		t.Errorf("Marshal = %s, %v", b, err)
	}
	var u user
	if err := json.Unmarshal([]byte(`{"assignedRole":"Administrator"}`), &u); err != nil || u.AssignedRole != auth.RoleAdministrator {
		t.Errorf("Unmarshal = %v, %v", u.AssignedRole, err)
	}
	if err := json.Unmarshal([]byte(`{"assignedRole":"administrator"}`), &u); !errors.Is(err, auth.ErrUnknownRole) {
		t.Errorf("Unmarshal of bad role: err = %v", err)
	}
	if _, err := json.Marshal(user{auth.RoleNone}); !errors.Is(err, auth.ErrUnknownRole) {
		t.Errorf("Marshal of RoleNone: err = %v", err)
	}
}
