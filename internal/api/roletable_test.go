package api

import (
	"testing"

	"github.com/ledgerd/ledgerd/internal/auth"
)

// TestEveryEndpointHasAnAction: every endpoint that needs a role names the
// action it needs, and each action is that of endpoints of one access
// level, so that the built-in roles' actions (derived from the levels) are
// unambiguous.
func TestEveryEndpointHasAnAction(t *testing.T) {
	level := map[string]access{}
	for _, ep := range endpoints() {
		if ep.access < accessReader {
			if ep.action != "" {
				t.Errorf("%s is %v but names action %s", ep.name(), ep.access, ep.action)
			}
			continue
		}
		if ep.action == "" {
			t.Errorf("%s names no action: no one may call it", ep.name())
			continue
		}
		if l, ok := level[ep.action]; ok && l != ep.access {
			t.Errorf("action %s is needed by endpoints of access levels %v and %v", ep.action, l, ep.access)
		}
		level[ep.action] = ep.access
	}
}

func TestBuiltinRoleActions(t *testing.T) {
	for _, tc := range []struct {
		role   auth.Role
		allows []string
		not    []string
	}{
		{auth.RoleReader, []string{auth.ActionRead, auth.ActionHistoricalQuery, auth.ActionReceiptsRead, auth.ActionStatusRead,
			auth.ActionCollectionsRead, auth.ActionMembersRead, auth.ActionConstitutionRead, auth.ActionEnclavesRead},
			[]string{auth.ActionAppend, auth.ActionUsersRead, auth.ActionUsersWrite, auth.ActionRolesRead}},
		{auth.RoleContributor, []string{auth.ActionRead, auth.ActionAppend}, []string{auth.ActionUsersReadAll, auth.ActionRolesWrite}},
		{auth.RoleAdministrator, []string{auth.ActionRead, auth.ActionAppend, auth.ActionUsersReadAll, auth.ActionUsersRead,
			auth.ActionUsersWrite, auth.ActionUsersDelete, auth.ActionRolesRead, auth.ActionRolesWrite, auth.ActionRolesDelete}, nil},
	} {
		for _, a := range tc.allows {
			if !builtinActions[tc.role][a] {
				t.Errorf("%v does not allow %s", tc.role, a)
			}
		}
		for _, a := range tc.not {
			if builtinActions[tc.role][a] {
				t.Errorf("%v allows %s", tc.role, a)
			}
		}
	}
	if len(builtinActions[auth.RoleNone]) != 0 {
		t.Error("RoleNone allows something")
	}
}

// TestDefaultActions: routes listed without an action (the user-defined
// function and endpoint APIs, added with access levels only) get theirs
// from their path and method.
func TestDefaultActions(t *testing.T) {
	for _, tc := range []struct {
		ep   endpoint
		want string
	}{
		{endpoint{method: "GET", pattern: "/app/userDefinedFunctions", access: accessReader}, auth.ActionFunctionsRead},
		{endpoint{method: "PUT", pattern: "/app/userDefinedFunctions/{functionId}", access: accessAdministrator}, auth.ActionFunctionsWrite},
		{endpoint{method: "DELETE", pattern: "/app/userDefinedFunctions/{functionId}", access: accessAdministrator}, auth.ActionFunctionsDelete},
		{endpoint{method: "POST", pattern: "/app/userDefinedFunctions/{functionId}:execute", access: accessContributor}, auth.ActionFunctionsExecute},
		{endpoint{method: "GET", pattern: "/app/userDefinedEndpoints/runtimeOptions", access: accessAdministrator}, auth.ActionEndpointsRead},
		{endpoint{method: "PATCH", pattern: "/app/userDefinedEndpoints/runtimeOptions", access: accessAdministrator}, auth.ActionEndpointsWrite},
		{endpoint{method: "GET", pattern: "/app/other", access: accessReader}, auth.ActionRead},
		{endpoint{method: "POST", pattern: "/app/other", access: accessContributor}, auth.ActionAppend},
		{endpoint{method: "POST", pattern: "/app/other", access: accessAdministrator}, ""},
	} {
		if got := defaultAction(&tc.ep); got != tc.want {
			t.Errorf("%s: %q, want %q", tc.ep.name(), got, tc.want)
		}
	}
}
