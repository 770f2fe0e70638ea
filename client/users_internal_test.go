package client

import "testing"

// TestUserOfSeveralRoles: a user answered in the multi-role form is shown
// by its highest built-in role, else its first (user-defined) role.
func TestUserOfSeveralRoles(t *testing.T) {
	for _, tc := range []struct {
		in   userJSON
		want Role
	}{
		{userJSON{AssignedRole: RoleReader}, RoleReader},
		{userJSON{AssignedRoles: []Role{"auditor", RoleReader, RoleContributor}}, RoleContributor},
		{userJSON{AssignedRoles: []Role{"auditor", "teller"}}, "auditor"},
		{userJSON{}, ""},
	} {
		if got := tc.in.user().Role; got != tc.want {
			t.Errorf("%+v: %q, want %q", tc.in, got, tc.want)
		}
	}
}
