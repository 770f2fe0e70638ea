package client

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
)

// Role is a ledger user's role (acl-api.md §5). Each role may do what the
// ones before it may.
type Role string

// The roles, lowest first.
const (
	// RoleReader may read entries, receipts and service information.
	RoleReader Role = "Reader"
	// RoleContributor may also append entries.
	RoleContributor Role = "Contributor"
	// RoleAdministrator may also manage users.
	RoleAdministrator Role = "Administrator"
)

// User is a ledger user.
type User struct {
	// UserID is a certificate fingerprint (see CertificateUserID) or a
	// Microsoft Entra object id.
	UserID string
	// Role is the user's role: of a user holding several roles (api-version
	// 2024-08-22-preview and later), the highest built-in one, else the first
	// (a user-defined role, /app/roles).
	Role Role
}

// userJSON is a user on the wire: one assignedRole, or (api-version
// 2024-08-22-preview) a list assignedRoles.
type userJSON struct {
	AssignedRole  Role   `json:"assignedRole"`
	AssignedRoles []Role `json:"assignedRoles"`
	UserID        string `json:"userId"`
}

// multiRoleVersion is the api-version whose /app/users speaks
// assignedRoles.
const multiRoleVersion = "2024-08-22-preview"

func (u userJSON) user() User {
	role := u.AssignedRole
	if role == "" {
		for _, r := range []Role{RoleAdministrator, RoleContributor, RoleReader} {
			if slices.Contains(u.AssignedRoles, r) {
				role = r
				break
			}
		}
		if role == "" && len(u.AssignedRoles) > 0 {
			role = u.AssignedRoles[0]
		}
	}
	return User{UserID: u.UserID, Role: role}
}

// userPath returns the path of a user. The id is escaped as a path segment,
// which keeps the colons of a fingerprint as they are (as the Python SDK
// sends them).
func userPath(userID string) (string, error) {
	if userID == "" {
		return "", errors.New("empty user id")
	}
	return "/app/users/" + url.PathEscape(userID), nil
}

// CreateOrUpdateUser gives a user a role, adding the user if it is new:
// PATCH /app/users/{userId}. It returns once the change is committed on a
// ledgerd node, so that it governs the user's next request. Needs the
// Administrator role; demoting the last Administrator is ErrConflict.
func (c *Client) CreateOrUpdateUser(ctx context.Context, userID string, role Role) (User, error) {
	path, err := userPath(userID)
	if err != nil {
		return User{}, err
	}
	if role == "" {
		return User{}, errors.New("empty role: use RoleReader, RoleContributor or RoleAdministrator")
	}
	var body any = map[string]Role{"assignedRole": role}
	if c.apiVersion == multiRoleVersion {
		body = map[string][]Role{"assignedRoles": {role}}
	}
	ct := mediaMergePatch
	if c.legacy {
		ct = mediaJSON
	}
	resp, err := c.do(ctx, &request{method: http.MethodPatch, path: path, body: jsonBody(body), contentType: ct})
	if err != nil {
		return User{}, err
	}
	return decodeUser(resp)
}

// GetUser returns a user: GET /app/users/{userId}. An unknown user is
// ErrNotFound. Needs the Administrator role.
func (c *Client) GetUser(ctx context.Context, userID string) (User, error) {
	path, err := userPath(userID)
	if err != nil {
		return User{}, err
	}
	resp, err := c.do(ctx, &request{method: http.MethodGet, path: path})
	if err != nil {
		return User{}, err
	}
	return decodeUser(resp)
}

// DeleteUser removes a user: DELETE /app/users/{userId}. An unknown user is
// ErrNotFound; the last Administrator is ErrConflict. Needs the
// Administrator role.
func (c *Client) DeleteUser(ctx context.Context, userID string) error {
	path, err := userPath(userID)
	if err != nil {
		return err
	}
	_, err = c.do(ctx, &request{method: http.MethodDelete, path: path})
	return err
}

func decodeUser(resp *response) (User, error) {
	var u userJSON
	if err := resp.decode(&u); err != nil {
		return User{}, err
	}
	if u.UserID == "" {
		return User{}, fmt.Errorf("the ledger's user answer has no userId")
	}
	return u.user(), nil
}
