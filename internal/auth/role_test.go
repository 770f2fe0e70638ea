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

func TestBuiltinRole(t *testing.T) {
	for name, want := range map[string]auth.Role{"Reader": auth.RoleReader, "reader": auth.RoleReader, "READER": auth.RoleReader,
		"contributor": auth.RoleContributor, "administrator": auth.RoleAdministrator, "AdMiNiStRaToR": auth.RoleAdministrator} {
		if got, ok := auth.BuiltinRole(name); !ok || got != want {
			t.Errorf("BuiltinRole(%q) = %v, %v; want %v", name, got, ok, want)
		}
	}
	for _, name := range []string{"", "None", "none", "Admin", "Reader ", "manager", "Reader\x00"} {
		if got, ok := auth.BuiltinRole(name); ok || got != auth.RoleNone {
			t.Errorf("BuiltinRole(%q) = %v, %v; want none", name, got, ok)
		}
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
