package api_test

import (
	"testing"
)

// A user id in a path is percent-decoded once, by the HTTP server:
// "a%2541" names the user "a%41", never "aA" (issue 9, item 14).
func TestUserIDDecodedOnce(t *testing.T) {
	e := newEnv(t, envOptions{})
	r := e.admin.do("PATCH", userPath(v2022, "a%2541"), map[string]string{"assignedRole": "Reader"}).expect(200, "")
	if got := r.object()["userId"]; got != "a%41" {
		t.Fatalf("PATCH /app/users/a%%2541 created user %q, want %q", got, "a%41")
	}
	e.admin.get(userPath(v2022, "aA")).expect(404, "ResourceNotFound")
	got := e.admin.get(userPath(v2022, "a%2541")).expect(200, "").object()
	if got["userId"] != "a%41" {
		t.Fatalf("GET /app/users/a%%2541 = %v, want user a%%41", got)
	}
}
