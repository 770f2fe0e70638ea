package authtest

import (
	"crypto"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"math/big"
	"strings"
	"testing"
)

// TestThumbprintRFC7638 checks the key id against the example of RFC 7638
// §3.1.
func TestThumbprintRFC7638(t *testing.T) {
	const n = "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw"
	nb, err := base64.RawURLEncoding.DecodeString(n)
	if err != nil {
		t.Fatal(err)
	}
	jwk, err := publicJWK(&rsa.PublicKey{N: new(big.Int).SetBytes(nb), E: 65537}, algs["RS256"])
	if err != nil {
		t.Fatal(err)
	}
	if got, want := thumbprint(jwk), "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"; got != want {
		t.Errorf("thumbprint = %s, want %s", got, want)
	}
}

func TestIssuerErrors(t *testing.T) {
	if _, err := New("HS256"); err == nil {
		t.Error("New(HS256) succeeded")
	}
	es := NewIssuer(t, "ES256")
	if _, err := FromKey(es.PrivateKey(), "RS256"); err == nil {
		t.Error("FromKey(EC key, RS256) succeeded")
	}
	if _, err := FromKey(es.PrivateKey(), "ES384"); err == nil {
		t.Error("FromKey(P-256 key, ES384) succeeded")
	}
}

// TestIssuerPersisted checks that an issuer rebuilt from a stored key has
// the same key id, as a tool that keeps its key between runs needs.
func TestIssuerPersisted(t *testing.T) {
	for _, alg := range []string{"ES256", "RS256"} {
		is := NewIssuer(t, alg)
		der, err := x509.MarshalPKCS8PrivateKey(is.PrivateKey())
		if err != nil {
			t.Fatal(err)
		}
		key, err := x509.ParsePKCS8PrivateKey(der)
		if err != nil {
			t.Fatal(err)
		}
		again, err := FromKey(key.(crypto.Signer), alg)
		if err != nil || again.KeyID() != is.KeyID() {
			t.Errorf("%s: FromKey = %v, %v; want kid %s", alg, again, err, is.KeyID())
		}
	}
}

func TestSignWithHeader(t *testing.T) {
	is := NewIssuer(t, "ES256")
	token := is.SignWithHeader(map[string]any{"kid": nil, "x": 1}, map[string]any{"sub": "s"})
	var header map[string]any
	b, _ := base64.RawURLEncoding.DecodeString(strings.Split(token, ".")[0])
	if err := json.Unmarshal(b, &header); err != nil {
		t.Fatal(err)
	}
	if _, ok := header["kid"]; ok || header["alg"] != "ES256" || header["x"] != float64(1) {
		t.Errorf("header = %v", header)
	}
	var jwks struct{ Keys []map[string]string }
	if err := json.Unmarshal(is.JWKS(), &jwks); err != nil || len(jwks.Keys) != 1 || jwks.Keys[0]["kid"] != is.KeyID() {
		t.Errorf("JWKS = %s, %v", is.JWKS(), err)
	}
}
