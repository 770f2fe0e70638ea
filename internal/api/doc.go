// Package api serves the Azure Confidential Ledger (ACL) data-plane API of
// one node over HTTPS, so that existing ACL clients work against ledgerd
// unchanged. docs/acl-api.md is the wire protocol; this package follows it
// to the byte where clients could tell the difference.
//
// # Endpoints
//
//	GET    /ledgerIdentity/{ledgerId}                  public; api-version optional
//	POST   /app/transactions[?collectionId=][&tags=]   Contributor
//	GET    /app/transactions[?collectionId=&fromTransactionId=&toTransactionId=][&tag=|&tags=]
//	GET    /app/transactions/current[?collectionId=]
//	GET    /app/transactions/{transactionId}[?collectionId=]
//	GET    /app/transactions/{transactionId}/status
//	GET    /app/transactions/{transactionId}/receipt
//	GET    /app/collections
//	GET    /app/collections/tags[?collectionId=]       2024-12-09-preview and later
//	GET    /app/governance/members
//	GET    /app/governance/constitution
//	GET    /app/enclaveQuotes                          Reader, all of the above
//	GET    /app/users                                  Administrator, 2024-01-26-preview and later
//	GET|PATCH|DELETE /app/users/{userId}               Administrator
//	GET    /app/ledgerUsers[/{userId}], PATCH|DELETE /app/ledgerUsers/{userId}
//	                                                   Administrator, 2024-12-09-preview and later
//	GET    /metrics, /node/consensus                   any ledger user or Active member; no api-version
//	GET    /node/state, /node/network, /node/network/nodes[?host=&port=&status=],
//	       /node/network/nodes/{nodeId|self|primary}, /node/commit,
//	       /node/tx?transaction_id=, /node/version, /node/quotes[/self]
//	                                                   public; no api-version (CCF's node
//	                                                   endpoints; acl-api.md §10)
//	GET    /healthz                                    public; no api-version
//	GET    /gov/service/{info,constitution,members[/{memberId}],nodes[/{nodeId}],
//	       join-policy,jwk,javascript-app,transactions/commit,transactions/{transactionId}}
//	                                                   public; api-version=2024-07-01 (CCF's
//	                                                   governance API, read side; acl-api.md §9)
//
// # Versions
//
// The api-versions accepted, and what each changes, are listed in one
// place, supportedVersions (versions.go): 0.1-preview (subLedgerId,
// @nextLink, 101-seqno pages, CCF 1.x receipts), 2022-05-13 and every later
// version analysed in acl-api.md. A missing api-version is
// MissingApiVersionParameter, an unknown one or differing repeated values
// UnsupportedApiVersionValue; identical repeated values are accepted, as
// the JS client appends api-version to every nextLink it follows.
//
// # Authentication and roles
//
// A request with an Authorization header is authenticated by its bearer
// JWT alone, against the governed JWT issuers and keys of the latest
// executed state (public:ccf.gov.jwt.*, gov.JWTRegistry, read per request,
// so set_jwt_issuer and remove_jwt_issuer govern the next request;
// Config.JWT adds node-local issuers for embedders and tests); the user id
// is oid, else sub, prefixed with "NAMESPACE:" for an issuer that has a
// namespace;
// otherwise by its TLS client certificate (the user id is the certificate's
// SHA-256 fingerprint, a shape no token subject may have), refused outside
// its validity period. Roles are read from the committed users table on every
// request, so removing a user or lowering its role takes effect on its next
// request, even on a kept-alive connection. No credentials or a rejected
// token is 401 InvalidAuthenticationInfo; an unknown user or a role too low
// is 403 NotAllowed, "Not allowed to call POST /app/transactions". Consortium
// members are not ledger users, but may read /metrics and /node/consensus.
//
// # Errors
//
// Every error is {"error":{"code":"...","message":"..."}} with the status
// below; classify (errors.go) is the one place that maps errors to them.
//
//	400 MissingApiVersionParameter  no api-version
//	400 UnsupportedApiVersionValue  unknown or conflicting api-version; endpoint not in that version
//	400 InvalidTransactionId        a transaction id that is not <view>.<seqno> (positive decimals)
//	400 InvalidQueryParameterValue  a query url.ParseQuery can't parse (unescaped ';', bad escape), a
//	                                known parameter in another letter case, bad collection id (empty,
//	                                over 256 bytes, not UTF-8, control or bidi formatting characters),
//	                                the other dialect's collection parameter, conflicting repeated
//	                                parameters, fromTransactionId after toTransactionId
//	400 InvalidInput                bad body: not UTF-8, not one JSON object, unknown or duplicate
//	                                field, wrong type, contents over 8 KiB of UTF-8 or with an
//	                                unpaired surrogate escape, unknown role; bad user id
//	400 CollectionLimitExceeded     a write that would create collection 5,001
//	400 RoleLimitExceeded           a PUT /app/roles that would make 257 user-defined roles
//	400 InvalidHeaderValue          x-ms-client-request-id over 1 KiB, not printable ASCII, or repeated
//	401 InvalidAuthenticationInfo   no credentials, a client certificate outside its validity period,
//	                                or a rejected bearer token
//	403 NotAllowed                  not a ledger user, or no role of the user allows the
//	                                endpoint's action
//	404 FrontendNotOpen             any /app/* request while the service is not Open (CCF's
//	                                "Frontend is not open."; ledgerd --start-opening), before routing
//	                                and authentication, as in CCF
//	404 ResourceNotFound            unknown path, user, role, constitution; collection without
//	                                entries
//	404 TransactionNotFound         unknown transaction, not an entry, entry of another collection
//	404 TransactionInvalid          a transaction that was rolled back
//	404 InvalidTransactionId        status of a transaction that is Unknown or Invalid (the API's
//	                                states are Pending and Committed; pollers stop on this code)
//	405 UnsupportedHttpVerb         wrong method (with Allow)
//	406 UncommittedLedgerEntry      receipt of a Pending transaction
//	409 LastAdministrator           removing or demoting the last Administrator
//	409 RoleAlreadyExists           PUT /app/roles of an existing role with other actions
//	409 RoleInUse                   DELETE /app/roles of a role users hold
//	413 RequestBodyTooLarge         body over 1 MiB
//	415 UnsupportedContentType      POST not application/json; PATCH not JSON or merge-patch JSON;
//	                                a charset other than utf-8
//	500 InternalError               a bug or I/O failure (details in the log only)
//	503 ServerBusy                  too many pending transactions, or the node is out of file
//	                                descriptors (Retry-After: 1)
//	503 ServiceUnavailable          node stopping or stopped, token keys unavailable, request timed out
//	507 InsufficientStorage         a write while the disk is full (Retry-After: 1); reads are served
//
// A refused request writes nothing: it is checked completely (sizes first,
// before anything is allocated for it) before anything is submitted.
//
// # Decisions
//
//   - Unknown body fields are refused, not ignored: a client that sends
//     tags or hooks in the body would otherwise lose data silently. The
//     entry model's read-only fields are accepted so that an entry read back
//     can be posted again: transactionId is ignored, and collectionId (or
//     subLedgerId) must equal the collection the query selects.
//   - The last Administrator can be neither removed nor demoted (409): a
//     ledger without one could never manage users again. Make another user
//     Administrator first.
//   - User management answers once the change is committed, and runs one
//     change at a time, so that the last-administrator check is atomic and
//     the change governs the user's next request.
//   - GET /app/transactions/{id} reads the named collection, or the
//     default one without a collection parameter (the spec's "collection
//     from which to fetch the value", the SDKs' "the service default is
//     used"): an entry of another collection is 404.
//   - Ranged listing pages are fixed seqno windows (1001, or 101 in
//     0.1-preview) from fromTransactionId's seqno (default 1); the view of
//     transaction ids in range queries is ignored, as the real service's
//     nextLink (current view, older seqnos) implies. The page holding
//     min(toTransactionId, committed seqno) is the last. A range ends: a
//     window that starts past the end of the ledger (its last seqno,
//     committed or not) is Ready, empty, without nextLink, with or without
//     toTransactionId. Only a window that starts at a transaction that
//     exists but is not committed, in a range that reaches there, is
//     Loading, with the canonical link to itself as nextLink, until the
//     transaction commits or is rolled back.
//   - PATCH of a user is a JSON merge patch of what GET returns: the
//     read-only userId is accepted when it is the path's id (400 when it is
//     another), and a patch without a role ({}) changes nothing (400 for a
//     user that does not exist, which needs a role).
//   - A user holds a set of roles (assignedRoles, stored and reported as
//     given), built-in (case-insensitive) or user-defined (/app/roles,
//     case-sensitive), and may call an endpoint if one of them allows its
//     action (roletable.go). The single-role form (assignedRole) shows the
//     highest built-in role held, else the first role.
//   - x-ms-ccf-transaction-id is on every successful answer: the write's id
//     for writes, else the committed transaction id the answer was read at.
//   - Every answer, errors included, carries a fresh x-ms-request-id (a
//     random UUID, also logged as request_id) and echoes the request's
//     x-ms-client-request-id, as Azure services do.
package api
