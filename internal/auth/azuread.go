package auth

import (
	"fmt"
	"strings"
)

// Azure AD (Microsoft Entra ID) as Azure Confidential Ledger accepts it.
const (
	// AzureADAudience is the audience of the tokens ACL clients request
	// (scope "https://confidential-ledger.azure.com/.default").
	AzureADAudience = "https://confidential-ledger.azure.com"

	azureV1Prefix = "https://sts.windows.net/"
	azureV2Prefix = "https://login.microsoftonline.com/"
	azureV2Suffix = "/v2.0"
)

// AzureADKeysURL returns Microsoft's JWK Set URL for tenant, which serves
// the signing keys of both of the tenant's issuers (Microsoft's common keys,
// plus any the tenant's applications add).
func AzureADKeysURL(tenant string) string {
	return "https://login.microsoftonline.com/" + tenant + "/discovery/v2.0/keys"
}

// AzureADIssuers returns the configuration that accepts the access tokens
// of Azure AD tenant for the ledger, as ACL does: from both of Microsoft's
// issuers for the tenant, v1 ("https://sts.windows.net/TENANT/") and v2
// ("https://login.microsoftonline.com/TENANT/v2.0"), for AzureADAudience
// with or without a trailing slash, with keys fetched from keysURL (empty:
// AzureADKeysURL(tenant)), cached and refreshed (JWTOptions). Tokens must
// carry oid, and a user's id is its oid as is, whichever issuer signed its
// token: the default namespace.
//
// tenant is the directory (tenant) id, a GUID: tokens name the tenant by
// it, never by a domain name such as contoso.onmicrosoft.com.
func AzureADIssuers(tenant, keysURL string) ([]IssuerConfig, error) {
	if !isGUID(tenant) {
		return nil, fmt.Errorf("auth: Azure AD tenant %q is not a directory (tenant) id: give the GUID "+
			"that `az account show --query tenantId` prints, not a domain name", clip(tenant))
	}
	tenant = strings.ToLower(tenant)
	if keysURL == "" {
		keysURL = AzureADKeysURL(tenant)
	}
	more := []string{AzureADAudience + "/"}
	return []IssuerConfig{
		{Issuer: azureV1Prefix + tenant + "/", Audience: AzureADAudience, Audiences: more, JWKSURL: keysURL},
		{Issuer: azureV2Prefix + tenant + azureV2Suffix, Audience: AzureADAudience, Audiences: more, JWKSURL: keysURL},
	}, nil
}

// azureADTenant returns the tenant of an Azure AD issuer, v1 or v2, and
// whether iss is one.
func azureADTenant(iss string) (string, bool) {
	var t string
	switch {
	case strings.HasPrefix(iss, azureV1Prefix) && strings.HasSuffix(iss, "/"):
		t = strings.TrimSuffix(strings.TrimPrefix(iss, azureV1Prefix), "/")
	case strings.HasPrefix(iss, azureV2Prefix) && strings.HasSuffix(iss, azureV2Suffix):
		t = strings.TrimSuffix(strings.TrimPrefix(iss, azureV2Prefix), azureV2Suffix)
	default:
		return "", false
	}
	if t == "" || strings.Contains(t, "/") {
		return "", false
	}
	return t, true
}

// isGUID reports whether s is a GUID in its usual form,
// xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx with hex digits.
func isGUID(s string) bool {
	if len(s) != 36 {
		return false
	}
	for i := 0; i < len(s); i++ {
		switch i {
		case 8, 13, 18, 23:
			if s[i] != '-' {
				return false
			}
		default:
			if !isHexDigit(s[i]) {
				return false
			}
		}
	}
	return true
}
