package api_test

import (
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/ledgerd/ledgerd/internal/auth"
	"github.com/ledgerd/ledgerd/internal/ledger"
	"github.com/ledgerd/ledgerd/internal/node"
	"github.com/ledgerd/ledgerd/internal/tables"
)

// roleBody is a PUT/PATCH /app/roles body of one role (the spec's shape).
func roleBody(name string, actions ...string) []map[string]any {
	return []map[string]any{{"roleName": name, "roleActions": actions}}
}

type wireRole struct {
	RoleName    string   `json:"roleName"`
	RoleActions []string `json:"roleActions"`
}

// TestCustomRoles: a user-defined role allows exactly its actions, a user
// holding several roles is allowed their union, and the role table's
// changes govern the next request.
func TestCustomRoles(t *testing.T) {
	e := newEnv(t, envOptions{})
	bobCred := newCredential(t, "bob")
	bob := e.client(&bobCred)
	users := func(id string) string { return q("/app/ledgerUsers/"+id, vNewer) }
	roles := q("/app/roles", vNewer)
	tx := e.write(e.contributor, v2022, "", "x")
	e.commit(tx)

	// An auditor may read entries and collections, nothing else.
	auditor := []string{auth.ActionRead, auth.ActionHistoricalQuery, auth.ActionCollectionsRead}
	var got []wireRole
	e.admin.do("PUT", roles, roleBody("auditor", auditor...)).expect(200, "").decode(&got)
	if len(got) != 1 || got[0].RoleName != "auditor" || !slices.Equal(got[0].RoleActions, auditor) {
		t.Fatalf("PUT answered %+v", got)
	}
	e.admin.get(q("/app/roles", vNewer, "roleName", "auditor")).expect(200, "").decode(&got)
	if len(got) != 1 || !slices.Equal(got[0].RoleActions, auditor) {
		t.Fatalf("GET auditor %+v", got)
	}
	// A PUT repeated is a no-op; with other actions it is refused.
	e.admin.do("PUT", roles, roleBody("auditor", auditor[2], auditor[0], auditor[1])).expect(200, "")
	e.admin.do("PUT", roles, roleBody("auditor", auth.ActionAppend)).expect(409, "RoleAlreadyExists")

	r := e.admin.do("PATCH", users(bob.id), map[string]any{"assignedRoles": []string{"auditor"}},
		"Content-Type", "application/merge-patch+json").expect(200, "")
	if want := `{"assignedRoles":["auditor"],"userId":"` + bob.id + `"}`; string(r.body) != want {
		t.Fatalf("PATCH user %s", r.body)
	}
	bob.post(q("/app/transactions", vNewer), map[string]string{"contents": "no"}).expect(403, "NotAllowed")
	bob.get(q("/app/transactions/"+tx.String(), vNewer)).expect(200, "")
	bob.get(q("/app/collections", vNewer)).expect(200, "")
	// Not among the auditor's actions: refused, though a Reader may.
	bob.get(q("/app/transactions/"+tx.String()+"/status", vNewer)).expect(403, "NotAllowed")
	bob.get(q("/app/transactions/"+tx.String()+"/receipt", vNewer)).expect(403, "NotAllowed")
	bob.get(roles).expect(403, "NotAllowed")
	// PATCH adds an action, which governs bob's next request.
	e.admin.do("PATCH", roles, roleBody("auditor", auth.ActionStatusRead)).expect(200, "").decode(&got)
	if want := append(slices.Clone(auditor), auth.ActionStatusRead); !slices.Equal(got[0].RoleActions, want) {
		t.Fatalf("PATCH answered %+v", got)
	}
	bob.get(q("/app/transactions/"+tx.String()+"/status", vNewer)).expect(200, "")

	// Two roles: the union of their actions.
	e.admin.do("PUT", roles, roleBody("appender", auth.ActionAppend)).expect(200, "")
	e.admin.do("PATCH", users(bob.id), map[string]any{"assignedRoles": []string{"appender"}}).expect(200, "")
	bob.post(q("/app/transactions", vNewer), map[string]string{"contents": "yes"}).expect(200, "")
	bob.get(q("/app/collections", vNewer)).expect(403, "NotAllowed")
	e.admin.do("PATCH", users(bob.id), map[string]any{"assignedRoles": []string{"auditor", "appender"}}).expect(200, "")
	bob.post(q("/app/transactions", vNewer), map[string]string{"contents": "yes"}).expect(200, "")
	bob.get(q("/app/collections", vNewer)).expect(200, "")
	bob.get(q("/app/users", vNewer)).expect(403, "NotAllowed")

	// The single-role form of older api-versions shows one of the roles:
	// the highest built-in one, else the first.
	if got := e.admin.get(userPath(v2022, bob.id)).expect(200, "").object()["assignedRole"]; got != "auditor" {
		t.Fatalf("single-role form %v", got)
	}
	e.admin.do("PATCH", users(bob.id), map[string]any{"assignedRoles": []string{"auditor", "reader", "Contributor"}}).expect(200, "")
	if got := e.admin.get(userPath(v2022, bob.id)).expect(200, "").object()["assignedRole"]; got != "Contributor" {
		t.Fatalf("single-role form %v", got)
	}
	if got := e.admin.get(users(bob.id)).expect(200, "").object()["assignedRoles"]; !slices.Equal(toStrings(got), []string{"auditor", "Reader", "Contributor"}) {
		t.Fatalf("multi-role form %v", got)
	}
	// A user-defined role in the single-role form of an older version.
	e.admin.do("PATCH", userPath(v2022, bob.id), map[string]any{"assignedRole": "appender"},
		"Content-Type", "application/merge-patch+json").expect(200, "")
	bob.get(q("/app/collections", vNewer)).expect(403, "NotAllowed")

	// Unknown roles, and the case-sensitivity of user-defined ones.
	e.admin.do("PATCH", users(bob.id), map[string]any{"assignedRoles": []string{"auditor", "nobody"}}).expect(400, "InvalidInput")
	e.admin.do("PATCH", users(bob.id), map[string]any{"assignedRoles": []string{"Auditor"}}).expect(400, "InvalidInput")
	e.admin.do("PATCH", userPath(v2022, bob.id), map[string]any{"assignedRole": "nobody"}).expect(400, "InvalidInput")
	e.admin.do("PATCH", roles, roleBody("nobody", auth.ActionRead)).expect(404, "ResourceNotFound")
	e.admin.get(q("/app/roles", vNewer, "roleName", "nobody")).expect(404, "ResourceNotFound")

	// Built-in roles are listed, and cannot be created, changed or deleted.
	e.admin.get(roles).expect(200, "").decode(&got)
	if len(got) != 5 || got[0].RoleName != "Administrator" || got[2].RoleName != "Reader" || got[3].RoleName != "appender" {
		t.Fatalf("roles %+v", got)
	}
	if !slices.Contains(got[2].RoleActions, auth.ActionRead) || slices.Contains(got[2].RoleActions, auth.ActionAppend) ||
		!slices.Contains(got[1].RoleActions, auth.ActionAppend) || slices.Contains(got[1].RoleActions, auth.ActionUsersWrite) ||
		!slices.Contains(got[0].RoleActions, auth.ActionRolesDelete) {
		t.Fatalf("built-in actions %+v", got[:3])
	}
	for _, name := range []string{"Reader", "reader", "ADMINISTRATOR"} {
		e.admin.do("DELETE", q("/app/roles", vNewer, "roleName", name), nil).expect(400, "InvalidInput")
		e.admin.do("PUT", roles, roleBody(name, auth.ActionRead)).expect(400, "InvalidInput")
		e.admin.do("PATCH", roles, roleBody(name, auth.ActionRead)).expect(400, "InvalidInput")
	}
	e.admin.get(q("/app/roles", vNewer, "roleName", "reader")).expect(200, "").decode(&got)
	if len(got) != 1 || got[0].RoleName != "Reader" || !slices.Contains(got[0].RoleActions, auth.ActionRead) {
		t.Fatalf("GET of a built-in role: %+v", got)
	}

	// A role users hold is not deleted; once they don't, it is.
	e.admin.do("DELETE", q("/app/roles", vNewer, "roleName", "appender"), nil).expect(409, "RoleInUse")
	e.admin.do("PATCH", users(bob.id), map[string]any{"assignedRoles": []string{"auditor"}}).expect(200, "")
	e.admin.do("DELETE", q("/app/roles", vNewer, "roleName", "appender"), nil).expect(200, "")
	e.admin.get(q("/app/roles", vNewer, "roleName", "appender")).expect(404, "ResourceNotFound")
	e.admin.do("DELETE", q("/app/roles", vNewer, "roleName", "appender"), nil).expect(404, "ResourceNotFound")
	e.admin.do("DELETE", roles, nil).expect(400, "InvalidQueryParameterValue")
	e.admin.do("DELETE", q("/app/roles", vNewer, "roleName", strings.Repeat("n", 65)), nil).expect(400, "InvalidQueryParameterValue")

	// Only Administrators manage roles; older versions have no roles.
	e.contributor.do("PUT", roles, roleBody("x", auth.ActionRead)).expect(403, "NotAllowed")
	e.reader.get(roles).expect(403, "NotAllowed")
	e.admin.get(q("/app/roles", v2022)).expect(400, "UnsupportedApiVersionValue")
	e.admin.get(q("/app/roles", "2024-08-22-preview")).expect(200, "")
	// Bad bodies.
	e.admin.do("PUT", roles, `{"roles":`).expect(400, "InvalidInput")
	e.admin.do("PUT", roles, `[{"roleName":"x","roleActions":"read"}]`).expect(400, "InvalidInput")
	e.admin.do("PUT", roles, `[{"roleName":"`+strings.Repeat("n", 65)+`","roleActions":[]}]`).expect(400, "InvalidInput")
	// ACL's programmability guide's body shape.
	e.admin.do("PUT", roles, `{"roles":[{"role_name":"manager","role_actions":["/banking/accounts/post"]}]}`).expect(200, "")
}

func toStrings(v any) []string {
	var out []string
	for _, x := range v.([]any) {
		s, _ := x.(string)
		out = append(out, s)
	}
	return out
}

// TestRoleInUseIsDecidedAtomically: deleting a role and giving it to a user
// are decided under the executor's lock, so that no user is left holding
// a role that was deleted.
func TestRoleInUseIsDecidedAtomically(t *testing.T) {
	e := newEnv(t, envOptions{})
	bob := newCredential(t, "bob").userID()
	e.admin.do("PUT", q("/app/roles", vNewer), roleBody("temp", auth.ActionRead)).expect(200, "")
	done := make(chan int)
	go func() {
		r := e.admin.do("DELETE", q("/app/roles", vNewer, "roleName", "temp"), nil)
		done <- r.status
	}()
	assign := e.admin.do("PATCH", q("/app/ledgerUsers/"+bob, vNewer), map[string]any{"assignedRoles": []string{"temp"}})
	del := <-done
	// Either the assignment came first (and the delete is refused), or the
	// delete did (and the assignment names an unknown role).
	if !(assign.status == 200 && del == 409) && !(assign.status == 400 && del == 200) {
		t.Fatalf("assignment %d, deletion %d", assign.status, del)
	}
}

// TestStartOnSingleRoleDirectory starts a server on a data directory whose
// user records are in the single-role form every ledgerd before multi-role
// users wrote ({"assignedRole":"..."}, also what the constitution's
// set_user writes), written raw, and checks that the users keep their
// roles and can be given several.
func TestStartOnSingleRoleDirectory(t *testing.T) {
	dir := t.TempDir()
	carol, bob := newCredential(t, "carol"), newCredential(t, "bob")
	t.Run("old", func(t *testing.T) {
		e := newEnv(t, envOptions{dir: dir})
		_, err := e.node.Exec(context.Background(), node.UntilCommitted, func(*node.State) ([]ledger.MapWrites, error) {
			return []ledger.MapWrites{{Name: tables.UsersMap, Writes: []ledger.KV{
				{Key: []byte(carol.userID()), Value: []byte(`{"assignedRole":"Administrator"}`)},
				{Key: []byte(bob.userID()), Value: []byte(`{"assignedRole":"Reader"}`)},
			}}}, nil
		})
		if err != nil {
			t.Fatal(err)
		}
	})
	e := newEnv(t, envOptions{dir: dir})
	admin, b := e.client(&carol), e.client(&bob)
	b.get(q("/app/collections", v2022)).expect(200, "")
	b.post(q("/app/transactions", v2022), map[string]string{"contents": "x"}).expect(403, "NotAllowed")
	if got := admin.get(q("/app/ledgerUsers/"+bob.userID(), vNewer)).expect(200, "").object()["assignedRoles"]; !slices.Equal(toStrings(got), []string{"Reader"}) {
		t.Fatalf("old user's roles %v", got)
	}
	if got := admin.get(userPath(v2022, bob.userID())).expect(200, "").object()["assignedRole"]; got != "Reader" {
		t.Fatalf("old user's role %v", got)
	}
	admin.do("PATCH", q("/app/ledgerUsers/"+bob.userID(), vNewer), map[string]any{"assignedRoles": []string{"Reader", "Contributor"}}).expect(200, "")
	b.post(q("/app/transactions", v2022), map[string]string{"contents": "x"}).expect(200, "")
}

// bankingModule checks roles as ACL's banking sample does: the caller's
// roles from public:confidentialledger.roles.user_roles_mapping, then each
// role's actions as the keys of
// public:confidentialledger.roles.user_roles_definitions.ROLE.
const bankingModule = `
const prefix = "public:confidentialledger.roles.";
function allowed(request, action) {
  const id = ccf.pemToId(request.caller.cert).toUpperCase().match(/.{2}/g).join(":");
  const raw = ccf.kv[prefix + "user_roles_mapping"].get(ccf.strToBuf("\"" + id + "\""));
  if (raw === undefined) return false;
  let ok = false;
  for (const role of JSON.parse(ccf.bufToStr(raw))) {
    ccf.kv[prefix + "user_roles_definitions." + role].forEach((_, key) => {
      if (ccf.bufToStr(key) === "\"" + action + "\"") ok = true;
    });
  }
  return ok;
}
export function balance(request) {
  if (!allowed(request, "/banking/accounts/get")) {
    return { statusCode: 403, body: { error: { code: "Forbidden", message: "not allowed" } } };
  }
  return { body: { balance: 0 } };
}
`

// TestRolesInBundles: a user-defined endpoint that checks roles as ACL's
// banking sample does sees the users' roles and the roles' actions of the
// role table (/app/roles).
func TestRolesInBundles(t *testing.T) {
	e := newEnv(t, envOptions{})
	bundle := map[string]any{
		"metadata": map[string]any{"endpoints": map[string]any{"/banking/{account}": map[string]any{"get": map[string]any{
			"js_module": "banking.js", "js_function": "balance", "mode": "readonly", "forwarding_required": "sometimes",
			"authn_policies": []string{"user_cert"}}}}},
		"modules": []map[string]string{{"name": "banking.js", "module": bankingModule}},
	}
	e.admin.do("PUT", q("/app/userDefinedEndpoints", vNewer), bundle).expect(201, "")
	e.admin.do("PUT", q("/app/roles", vNewer), `{"roles":[{"role_name":"teller","role_actions":["/banking/accounts/get"]}]}`).expect(200, "")
	tellerCred := newCredential(t, "teller")
	teller := e.client(&tellerCred)
	// The body of ACL's programmability guide, user_id included.
	e.admin.do("PATCH", q("/app/ledgerUsers/"+teller.id, vNewer), map[string]any{"user_id": teller.id, "assignedRoles": []string{"Reader", "teller"}},
		"Content-Type", "application/merge-patch+json").expect(200, "")
	if got := teller.get("/app/banking/a").expect(200, "").object()["balance"]; got != float64(0) {
		t.Fatalf("teller: %v", got)
	}
	e.reader.get("/app/banking/a").expect(403, "Forbidden")
	e.admin.do("PATCH", q("/app/ledgerUsers/"+teller.id, vNewer), map[string]any{"assignedRoles": []string{"Reader"}}).expect(200, "")
	teller.get("/app/banking/a").expect(403, "Forbidden")
}
