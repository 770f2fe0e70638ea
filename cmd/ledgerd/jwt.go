package main

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"os"

	"github.com/ledgerd/ledgerd/internal/auth"
	"github.com/ledgerd/ledgerd/internal/gov"
)

// JWT issuers are governed state (public:ccf.gov.jwt.issuers and the keys
// table): --aad-tenant and --jwt-issuer seed the genesis transaction, and
// later only proposals change them (set_jwt_issuer, remove_jwt_issuer,
// set_jwt_public_signing_keys). A JWKS file's keys are written in the
// ledger (governed keys); a JWKS URL is recorded as the issuer's jwks_uri,
// which every node fetches keys from (cached, refreshed hourly and on an
// unknown kid).

// flagIssuers returns the JWT issuers of --aad-tenant and --jwt-issuer, with
// the keys of JWKS files read now. Keys a JWKS file lists that can't be
// used for verifying are left out with a warning, as before.
func flagIssuers(cfg config, log *slog.Logger) ([]gov.JWTIssuer, error) {
	configs, err := cfg.jwtIssuers()
	if err != nil {
		return nil, err
	}
	var issuers []gov.JWTIssuer
	for _, c := range configs {
		j := gov.JWTIssuer{Issuer: c.Issuer, Audiences: append([]string{c.Audience}, c.Audiences...),
			Namespace: c.Namespace, JWKSURI: c.JWKSURL}
		if c.JWKSFile != "" {
			if j.JWKS, err = usableJWKS(c.JWKSFile, log); err != nil {
				return nil, fmt.Errorf("--jwt-issuer %s: %w", c.Issuer, err)
			}
		}
		issuers = append(issuers, j)
	}
	return issuers, nil
}

// usableJWKS reads a JWKS file and returns it with only the keys that can
// be governed keys (auth.JWKPublicKeyDER).
func usableJWKS(path string, log *slog.Logger) ([]byte, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("couldn't read JWKS file: %w", err)
	}
	var set struct {
		Keys []json.RawMessage `json:"keys"`
	}
	if err := json.Unmarshal(data, &set); err != nil {
		return nil, fmt.Errorf("couldn't parse JWKS file %s: %w", path, err)
	}
	var keep []json.RawMessage
	for i, k := range set.Keys {
		if _, _, err := auth.JWKPublicKeyDER(k); err != nil {
			log.Warn("ignoring JWKS key", "file", path, "key", i, "reason", err)
			continue
		}
		keep = append(keep, k)
	}
	if len(keep) == 0 {
		return nil, fmt.Errorf("JWKS file %s has no usable signing key (%d keys listed)", path, len(set.Keys))
	}
	set.Keys = keep
	return json.Marshal(set)
}

// warnFlagIssuers warns about every --aad-tenant or --jwt-issuer issuer that
// the governed state does not trust as the flag says: the flags seeded the
// genesis only, and the governed state decides.
func warnFlagIssuers(plan *genesisPlan, st gov.State, log *slog.Logger) {
	for _, j := range plan.issuers {
		if d := gov.JWTIssuerDiff(st, j); d != "" {
			log.Warn("a JWT issuer flag differs from the governed JWT issuers, which decide: flags seed only the genesis; "+
				"change issuers with a set_jwt_issuer, set_jwt_public_signing_keys or remove_jwt_issuer proposal",
				"issuer", j.Issuer, "difference", d)
		}
	}
}
