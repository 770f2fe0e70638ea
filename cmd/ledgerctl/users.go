package main

import (
	"context"
	"encoding/pem"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/ledgerd/ledgerd/client"
)

const usersUsage = `
usage: ledgerctl users add [flags] USER_ID ROLE
       ledgerctl users get [flags] USER_ID
       ledgerctl users rm  [flags] USER_ID

Manages ledger users (PATCH, GET and DELETE /app/users/{id}); needs the Administrator role.
USER_ID is a certificate user's SHA-256 fingerprint (AB:CD:…), a Microsoft Entra object id, or
NAMESPACE:ID for a user of a JWT issuer configured with a namespace (ledgerd --jwt-issuer);
with --user-cert FILE, the fingerprint of the PEM certificate in FILE instead. ROLE is Reader,
Contributor or Administrator. add gives an existing user the new role. Removing or demoting the
last Administrator is refused (409).`

func runUsers(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("users", stderr)
	conn := addConnFlags(fs, cliDefaultTimeout)
	userCert := fs.String("user-cert", "", "take the user id from this PEM certificate: its SHA-256 fingerprint")
	commandUsage(fs, stderr, usersUsage)
	pos, err := parseArgs(fs, args)
	if err != nil {
		return err
	}
	if len(pos) == 0 {
		fs.Usage()
		return usagef("users needs a subcommand: add, get or rm")
	}
	sub, pos := pos[0], pos[1:]
	want := map[string]int{"add": 2, "get": 1, "rm": 1}[sub]
	if want == 0 {
		fs.Usage()
		return usagef("unknown users subcommand %q: want add, get or rm", sub)
	}
	if *userCert != "" {
		id, err := certFileUserID(*userCert)
		if err != nil {
			return err
		}
		pos = append([]string{id}, pos...)
	}
	if len(pos) != want {
		fs.Usage()
		return usagef("users %s needs %s", sub, map[string]string{"add": "a user id and a role", "get": "a user id", "rm": "a user id"}[sub])
	}
	userID := pos[0]
	var role client.Role
	if sub == "add" {
		if role, err = parseRole(pos[1]); err != nil {
			return err
		}
	}
	return withClient(conn, true, func(ctx context.Context, c *client.Client) error {
		var u client.User
		var err error
		switch sub {
		case "add":
			u, err = c.CreateOrUpdateUser(ctx, userID, role)
		case "get":
			u, err = c.GetUser(ctx, userID)
		case "rm":
			if err := c.DeleteUser(ctx, userID); err != nil {
				return err
			}
			if conn.json {
				return writeJSON(stdout, struct {
					UserID  string `json:"userId"`
					Deleted bool   `json:"deleted"`
				}{userID, true})
			}
			_, err := fmt.Fprintf(stdout, "removed user %s\n", userID)
			return err
		}
		if err != nil {
			return err
		}
		if conn.json {
			return writeJSON(stdout, userOut{UserID: u.UserID, AssignedRole: string(u.Role)})
		}
		_, err = fmt.Fprintf(stdout, "%s %s\n", u.UserID, u.Role)
		return err
	})
}

// parseRole accepts a role in any letter case.
func parseRole(s string) (client.Role, error) {
	for _, r := range []client.Role{client.RoleReader, client.RoleContributor, client.RoleAdministrator} {
		if strings.EqualFold(s, string(r)) {
			return r, nil
		}
	}
	return "", usagef("unknown role %q: want Reader, Contributor or Administrator", s)
}

// certFileUserID returns the user id of the first certificate in a PEM
// file (which may also hold a key).
func certFileUserID(path string) (string, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return "", err
	}
	for {
		var block *pem.Block
		block, data = pem.Decode(data)
		if block == nil {
			return "", fmt.Errorf("%s: no PEM certificate in it", path)
		}
		if block.Type == "CERTIFICATE" {
			return client.CertificateUserID(block.Bytes), nil
		}
	}
}
