// Package auth answers two questions for every ledger request: who is
// calling, and may they do what they ask?
//
// Callers are identified as in Azure Confidential Ledger (acl-api.md §3):
//
//   - by TLS client certificate: the user id is the SHA-256 fingerprint of
//     the DER certificate, upper-case hex, colon-separated
//     ([CertificateUserID]);
//   - by a bearer JWT from a trusted OpenID issuer (fixed, [JWTVerifier],
//     or governed, read per request from an [IssuerRegistry],
//     [GovernedVerifier]): the user id is the
//     token's oid claim, or its sub claim when it has no oid (Azure AD's
//     tokens must have oid), prefixed with "NAMESPACE:" if the issuer has
//     a namespace ([JWTVerifier], [IssuerConfig]; [AzureADIssuers] for
//     Azure AD as ACL accepts it).
//
// These ids never collide: a token whose subject has the shape of a
// certificate fingerprint is refused, at most one issuer (or one Azure AD
// tenant's two) names its users without a namespace, and a subject of that
// default namespace may not start with another issuer's "NAMESPACE:".
//
// Authorisation is an action check (acl-api.md §5): each operation needs
// one ACL action name (ActionAppend, ...), and a caller may do it if one of
// its roles allows the action, as a [Directory] that the server backs with
// its replicated user and role tables answers ([Authorize]).
//
// The JWT code follows RFC 7515 (JWS compact serialisation), RFC 7517
// (JWK), RFC 7518 (algorithms) and RFC 7519 (claims), using only the
// standard library. It accepts the asymmetric algorithms RS256, RS384,
// RS512, PS256, ES256 and ES384 and nothing else, so "none" and the HMAC
// key-confusion attacks are impossible by construction.
package auth
