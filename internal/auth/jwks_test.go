package auth

import (
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"math/big"
	"strings"
	"testing"

	"github.com/ledgerd/ledgerd/internal/auth/authtest"
)

// jwksOf marshals keys as a JWK Set.
func jwksOf(t testing.TB, keys ...map[string]any) []byte {
	t.Helper()
	b, err := json.Marshal(map[string]any{"keys": keys})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func b64u(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

func TestParseJWKSSkipsBadKeys(t *testing.T) {
	rs, es := authtest.NewIssuer(t, "RS256"), authtest.NewIssuer(t, "ES384")
	edit := func(k map[string]any, kv ...any) map[string]any {
		for i := 0; i < len(kv); i += 2 {
			if kv[i+1] == nil {
				delete(k, kv[i].(string))
			} else {
				k[kv[i].(string)] = kv[i+1]
			}
		}
		return k
	}
	ecY := func(mutate func([]byte) []byte) string {
		y, _ := base64.RawURLEncoding.DecodeString(es.JWK()["y"].(string))
		return b64u(mutate(y))
	}
	small := must(rsa.GenerateKey(rand.Reader, 1024))
	tests := map[string]struct {
		key  map[string]any
		want string // substring of the skip reason
	}{
		"EC point off the curve":  {edit(es.JWK(), "y", ecY(func(y []byte) []byte { y[len(y)-1] ^= 1; return y })), "not a valid P-384"},
		"EC coordinate too short": {edit(es.JWK(), "y", ecY(func(y []byte) []byte { return y[1:] })), "must be 48 bytes"},
		"EC coordinate too long":  {edit(es.JWK(), "y", ecY(func(y []byte) []byte { return append([]byte{0}, y...) })), "must be 48 bytes"},
		"EC point at infinity":    {edit(es.JWK(), "x", b64u(make([]byte, 48)), "y", b64u(make([]byte, 48))), "not a valid"},
		"EC wrong curve for alg":  {edit(es.JWK(), "alg", "ES256"), "does not fit"},
		"EC unsupported curve":    {edit(es.JWK(), "crv", "P-521", "alg", nil), "unsupported crv"},
		"EC secp256k1":            {edit(es.JWK(), "crv", "secp256k1", "alg", nil), "unsupported crv"},
		"EC missing y":            {edit(es.JWK(), "y", nil), "parameter y is missing"},
		"RSA 1024 bits":           {edit(rs.JWK(), "n", b64u(small.N.Bytes())), "1024 bits"},
		"RSA even modulus":        {edit(rs.JWK(), "n", b64u(new(big.Int).Lsh(big.NewInt(1), 2048).Bytes())), "even"},
		"RSA exponent 1":          {edit(rs.JWK(), "e", "AQ"), "exponent"},
		"RSA even exponent":       {edit(rs.JWK(), "e", "AQAA"), "exponent"},
		"RSA huge exponent":       {edit(rs.JWK(), "e", "AQAAAAAB"), "exponent"},
		"RSA bad base64":          {edit(rs.JWK(), "n", "!!!"), "not base64url"},
		"RSA with EC alg":         {edit(rs.JWK(), "alg", "ES256"), "does not fit"},
		"RSA with HS256 alg":      {edit(rs.JWK(), "alg", "HS256"), "does not fit"},
		"encryption key":          {edit(rs.JWK(), "use", "enc"), "not sig"},
		"key_ops without verify":  {edit(rs.JWK(), "key_ops", []string{"encrypt"}), "key_ops"},
		"symmetric key":           {map[string]any{"kty": "oct", "k": "c2VjcmV0", "kid": "h"}, "unsupported kty"},
		"OKP key":                 {map[string]any{"kty": "OKP", "crv": "Ed25519", "x": "AAAA"}, "unsupported kty"},
		"n is a number":           {edit(rs.JWK(), "n", 12345), "couldn't parse key"},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			// A good key alongside, so that parsing succeeds.
			good := authtest.NewIssuer(t, "ES256").JWK()
			set, skipped, err := parseJWKS(jwksOf(t, tt.key, good))
			if err != nil {
				t.Fatalf("parseJWKS: %v", err)
			}
			if len(set.keys) != 1 || set.keys[0].kid != good["kid"] {
				t.Errorf("kept %d keys, want only the good one", len(set.keys))
			}
			if len(skipped) != 1 || !strings.Contains(skipped[0].Error(), tt.want) {
				t.Errorf("skipped = %v, want one reason containing %q", skipped, tt.want)
			}
		})
	}
}

func TestParseJWKS(t *testing.T) {
	rs, es := authtest.NewIssuer(t, "RS256"), authtest.NewIssuer(t, "ES256")
	noKID := es.JWK()
	delete(noKID, "kid")
	delete(noKID, "alg")
	delete(noKID, "use")
	set, skipped, err := parseJWKS(jwksOf(t, rs.JWK(), noKID, rs.JWK()))
	if err != nil {
		t.Fatal(err)
	}
	if len(set.keys) != 2 || len(skipped) != 1 || !strings.Contains(skipped[0].Error(), "duplicate kid") {
		t.Errorf("got %d keys, skipped %v; want 2 keys and the duplicate skipped", len(set.keys), skipped)
	}
	if k, err := set.lookup(rs.KeyID()); err != nil || !k.pub.(*rsa.PublicKey).Equal(rs.PublicKey()) {
		t.Errorf("lookup(rs) = %v, %v", k, err)
	}
	if _, err := set.lookup(""); !errors.Is(err, errUnknownKID) {
		t.Errorf("lookup without kid among two keys: err = %v", err)
	}

	for name, doc := range map[string]string{
		"not JSON":     "{",
		"array":        "[]",
		"no keys":      `{}`,
		"empty keys":   `{"keys":[]}`,
		"keys object":  `{"keys":{}}`,
		"null":         `null`,
		"only unknown": `{"keys":[{"kty":"oct"}]}`,
	} {
		if _, _, err := parseJWKS([]byte(doc)); err == nil {
			t.Errorf("%s: parseJWKS succeeded", name)
		}
	}
}

// TestParseJWKSPadding accepts padded parameters, which some issuers emit.
func TestParseJWKSPadding(t *testing.T) {
	k := authtest.NewIssuer(t, "ES256").JWK()
	k["x"] = k["x"].(string) + "="
	if _, _, err := parseJWKS(jwksOf(t, k)); err != nil {
		t.Error(err)
	}
}

func FuzzParseJWKS(f *testing.F) {
	for _, alg := range []string{"RS256", "ES256", "ES384"} {
		f.Add(authtest.NewIssuer(f, alg).JWKS())
	}
	f.Add([]byte(`{"keys":[{"kty":"EC","crv":"P-256","x":"AA","y":"AA"}]}`))
	f.Add([]byte(`{"keys":[{"kty":"RSA","n":"AQAB","e":"AQAB","use":"sig"}]}`))
	f.Add([]byte(`{"keys":[null, 1, "x", {}]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		set, _, err := parseJWKS(data)
		if err != nil {
			return
		}
		if len(set.keys) == 0 {
			t.Fatal("no error but no keys")
		}
		for _, k := range set.keys {
			checkKey(t, k)
		}
	})
}

// checkKey re-checks a parsed key independently of the parser.
func checkKey(t *testing.T, k *jwk) {
	t.Helper()
	switch pub := k.pub.(type) {
	case *rsa.PublicKey:
		if n := pub.N.BitLen(); k.kty != "RSA" || n < minRSABits || n > maxRSABits || pub.E < 3 || pub.E%2 == 0 {
			t.Fatalf("bad RSA key accepted: kty %q, %d bits, e=%d", k.kty, n, pub.E)
		}
	case *ecdsa.PublicKey:
		point, err := pub.Bytes()
		if err != nil {
			t.Fatal(err)
		}
		curve := map[string]ecdh.Curve{"P-256": ecdh.P256(), "P-384": ecdh.P384()}[k.crv]
		if k.kty != "EC" || curve == nil {
			t.Fatalf("bad EC key accepted: kty %q crv %q", k.kty, k.crv)
		}
		if _, err := curve.NewPublicKey(point); err != nil || len(point) != 1+2*k.size {
			t.Fatalf("invalid EC point accepted: %v", err)
		}
	default:
		t.Fatalf("unexpected key type %T", pub)
	}
	if k.alg != "" {
		if alg, ok := algorithms[k.alg]; !ok || k.usableWith(alg) != nil {
			t.Fatalf("key with alg %q that it can't be used with", k.alg)
		}
	}
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}
