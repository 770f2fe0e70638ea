package tables

import (
	"bytes"
	"encoding/json"
	"errors"
)

// JWT tables (CCF include/ccf/service/tables/jwt.h), written by the
// constitution's set_jwt_issuer, set_jwt_public_signing_keys and
// remove_jwt_issuer, and at genesis from ledgerd's --jwt-issuer and
// --aad-tenant.
const (
	// JWTIssuersMap holds the trusted JWT issuers: key = the issuer (the
	// tokens' iss claim, raw bytes), value = JWTIssuerMetadata.
	JWTIssuersMap = "public:ccf.gov.jwt.issuers"
	// JWTPublicSigningKeysMap holds the issuers' signing keys: key = kid
	// (raw bytes), value = a JSON array of OpenIDJWKMetadata, one per
	// issuer that publishes a key with that kid.
	JWTPublicSigningKeysMap = "public:ccf.gov.jwt.public_signing_keys_metadata_v2"
)

// JWTIssuerMetadata is the value of JWTIssuersMap: CCF's JwtIssuerMetadata
// (the set_jwt_issuer arguments but jwks), with ledgerd's optional fields.
// Fields it does not know are kept by whoever rewrites the record (the
// constitution writes the proposal's arguments as they are).
type JWTIssuerMetadata struct {
	// Issuer repeats the key (CCF's constitution writes it).
	Issuer string `json:"issuer,omitempty"`
	// AutoRefresh and CACertBundleName are CCF's: refresh the keys from
	// the issuer's OpenID metadata, authenticated with that CA bundle.
	// ledgerd records them but refreshes from JWKSURI only.
	AutoRefresh      bool   `json:"auto_refresh,omitempty"`
	CACertBundleName string `json:"ca_cert_bundle_name,omitempty"`

	// ledgerd: Audience is the audience the issuer's tokens must be for,
	// one string or a list of strings; empty means ACL's,
	// https://confidential-ledger.azure.com, with or without a trailing
	// slash.
	Audience Audiences `json:"audience,omitempty"`
	// ledgerd: Namespace prefixes the issuer's user ids
	// (NAMESPACE:oid); empty is the default namespace (the bare oid).
	Namespace string `json:"namespace,omitempty"`
	// ledgerd: JWKSURI is a JWK Set URL (https, or http on a loopback
	// host) that each node fetches the issuer's keys from, cached and
	// refreshed hourly and on an unknown kid. These keys are node-local,
	// not in the ledger; the governed keys are used first.
	JWKSURI string `json:"jwks_uri,omitempty"`
}

// Audiences is a JSON string or array of strings.
type Audiences []string

// UnmarshalJSON accepts a string or an array of strings.
func (a *Audiences) UnmarshalJSON(b []byte) error {
	if bytes.HasPrefix(bytes.TrimSpace(b), []byte(`"`)) {
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		*a = Audiences{s}
		return nil
	}
	var list []string
	if err := json.Unmarshal(b, &list); err != nil {
		return errors.New("audience must be a string or an array of strings")
	}
	*a = list
	return nil
}

// OpenIDJWKMetadata is an element of a JWTPublicSigningKeysMap value
// (CCF's OpenIDJWKMetadata): the key, as a DER SubjectPublicKeyInfo
// (base64 in JSON), the issuer it belongs to, and the issuer constraint
// the JWK named, if any.
type OpenIDJWKMetadata struct {
	PublicKey  []byte `json:"public_key"`
	Issuer     string `json:"issuer"`
	Constraint string `json:"constraint,omitempty"`
}
