package api

import (
	"net/http"
	"net/url"
	"slices"
	"strings"
)

// apiVersionParam is the query parameter every ACL request carries.
const apiVersionParam = "api-version"

// dialect is what an api-version changes on the paths ledgerd serves
// (acl-api.md §1, §7). Versions not listed in supportedVersions are
// rejected.
type dialect struct {
	// version is the api-version value, echoed in nextLink.
	version string
	// legacy is 0.1-preview: query parameter and field "subLedgerId"
	// instead of "collectionId", "@nextLink" instead of "nextLink", a
	// Loading range page without "entries", and CCF 1.x receipts.
	legacy bool
	// pageSeqnos is the width of a range page's seqno window.
	pageSeqnos uint64
	// listUsers enables GET /app/users (2024-01-26-preview and later).
	listUsers bool
	// multiRoleUsers makes /app/users speak "assignedRoles" (an array)
	// instead of "assignedRole" (2024-08-22-preview only).
	multiRoleUsers bool
	// roles enables /app/roles, the user-defined roles
	// (2024-08-22-preview and later).
	roles bool
	// ledgerUsers enables /app/ledgerUsers[/{userId}], the multi-role user
	// API (2024-12-09-preview and later).
	ledgerUsers bool
	// applicationClaims adds "applicationClaims" (the entry's LedgerEntryV1
	// claim) to receipts of ledger entries (2023-01-18-preview and later).
	applicationClaims bool
	// tags enables entry tags: ?tags= on POST /app/transactions, ?tag= (and
	// ?tags=) on GET /app/transactions, "tags" in entries, and GET
	// /app/collections/tags (2024-12-09-preview and later).
	tags bool
	// userEndpoints enables /app/userDefinedEndpoints[/runtimeOptions,
	// /modules] (2024-07-26-preview and later).
	userEndpoints bool
	// userFunctions enables /app/userDefinedFunctions[/{functionId}[:execute]]
	// and the preHooks/postHooks of POST /app/transactions
	// (2024-12-09-preview and later; handlers_udf.go).
	userFunctions bool
}

// Page widths of range queries, in seqnos (acl-api.md §4, recorded from the
// real service).
const (
	pageSeqnos       = 1001
	legacyPageSeqnos = 101
)

// defaultDialect answers requests that may omit api-version (the identity
// endpoint).
var defaultDialect = supportedVersions["2022-05-13"]

// supportedVersions lists every api-version ledgerd accepts, the one place
// that says what each changes. Versions from 2022-05-13 to 2022-11-23 have
// the same semantics on these paths; 2023-01-18-preview adds the receipt's
// applicationClaims. 2022-20-04-preview is not analysed and not accepted.
// 2024-07-26-preview adds user-defined endpoints (handlers_udendpoints.go).
// 2024-08-22-preview adds user-defined roles (/app/roles) and multi-role
// users. 2024-12-09-preview adds user-defined functions and hooks (handlers_udf.go).
var supportedVersions = map[string]dialect{
	"0.1-preview":        {version: "0.1-preview", legacy: true, pageSeqnos: legacyPageSeqnos},
	"2022-05-13":         {version: "2022-05-13", pageSeqnos: pageSeqnos},
	"2022-07-12":         {version: "2022-07-12", pageSeqnos: pageSeqnos},
	"2022-08-13":         {version: "2022-08-13", pageSeqnos: pageSeqnos},
	"2022-11-23":         {version: "2022-11-23", pageSeqnos: pageSeqnos},
	"2023-01-18-preview": {version: "2023-01-18-preview", pageSeqnos: pageSeqnos, applicationClaims: true},
	"2024-01-26-preview": {version: "2024-01-26-preview", pageSeqnos: pageSeqnos, applicationClaims: true, listUsers: true},
	"2024-07-26-preview": {version: "2024-07-26-preview", pageSeqnos: pageSeqnos, applicationClaims: true, listUsers: true, userEndpoints: true},
	"2024-08-22-preview": {version: "2024-08-22-preview", pageSeqnos: pageSeqnos, applicationClaims: true, listUsers: true, multiRoleUsers: true, userEndpoints: true, roles: true},
	"2024-12-09-preview": {version: "2024-12-09-preview", pageSeqnos: pageSeqnos, applicationClaims: true, tags: true, listUsers: true, ledgerUsers: true, userEndpoints: true, userFunctions: true, roles: true},
	"2026-02-23":         {version: "2026-02-23", pageSeqnos: pageSeqnos, applicationClaims: true, tags: true, listUsers: true, ledgerUsers: true, userEndpoints: true, userFunctions: true, roles: true},
}

// versionList is the supported versions, sorted, for error messages.
func versionList() string {
	vs := make([]string, 0, len(supportedVersions))
	for v := range supportedVersions {
		vs = append(vs, v)
	}
	slices.Sort(vs)
	return strings.Join(vs, ", ")
}

// negotiate returns the dialect of a request's api-version. The parameter
// may be repeated with identical values (the JS client appends it to every
// nextLink it follows); differing values are an error. If optional, any
// problem with api-version gives defaultDialect instead of an error.
func negotiate(q url.Values, optional bool) (dialect, error) {
	d, err := parseVersion(q[apiVersionParam])
	if err != nil && optional {
		return defaultDialect, nil
	}
	return d, err
}

func parseVersion(vs []string) (dialect, error) {
	if len(vs) == 0 {
		return dialect{}, newError(http.StatusBadRequest, codeMissingAPIVersion,
			"The api-version query parameter is required; supported versions: %s.", versionList())
	}
	for _, v := range vs[1:] {
		if v != vs[0] {
			return dialect{}, newError(http.StatusBadRequest, codeUnsupportedAPIVersion,
				"The api-version query parameter is given with different values (%q and %q).", clip(vs[0]), clip(v))
		}
	}
	d, ok := supportedVersions[vs[0]]
	if !ok {
		return dialect{}, newError(http.StatusBadRequest, codeUnsupportedAPIVersion,
			"The api-version %q is not supported; supported versions: %s.", clip(vs[0]), versionList())
	}
	return d, nil
}

// collectionParam is the name of the collection query parameter, and of
// the collection field in response bodies.
func (d dialect) collectionParam() string {
	if d.legacy {
		return "subLedgerId"
	}
	return "collectionId"
}

// otherCollectionParam is the collection parameter of the other dialect,
// rejected so that a misplaced one does not silently select the default
// collection.
func (d dialect) otherCollectionParam() string {
	if d.legacy {
		return "collectionId"
	}
	return "subLedgerId"
}
