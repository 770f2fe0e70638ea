package auth_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"maps"
	"strings"
	"testing"
	"time"

	"github.com/ledgerd/ledgerd/internal/auth"
	"github.com/ledgerd/ledgerd/internal/auth/authtest"
)

var allAlgs = []string{"RS256", "RS384", "RS512", "PS256", "ES256", "ES384"}

func TestVerifyValid(t *testing.T) {
	for _, alg := range allAlgs {
		t.Run(alg, func(t *testing.T) {
			is := testIssuer(t, alg)
			v := fileVerifier(t, is.JWKS())
			p, err := v.Verify(context.Background(), is.Sign(claims("6696d1bc-6012-47da-8556-ab4c747999c9")))
			if err != nil {
				t.Fatalf("Verify: %v", err)
			}
			want := auth.Principal{ID: "6696d1bc-6012-47da-8556-ab4c747999c9", Kind: auth.KindJWT}
			if p != want {
				t.Errorf("Verify = %+v, want %+v", p, want)
			}
		})
	}
}

// TestVerifyIssuerWithSeveralKeys checks that kid selects the key.
func TestVerifyIssuerWithSeveralKeys(t *testing.T) {
	rs, es, es384 := testIssuer(t, "RS256"), testIssuer(t, "ES256"), testIssuer(t, "ES384")
	v := fileVerifier(t, authtest.JWKS(rs, es, es384))
	for _, is := range []*authtest.Issuer{rs, es, es384} {
		if _, err := v.Verify(context.Background(), is.Sign(claims("u"))); err != nil {
			t.Errorf("%s: Verify: %v", is.Alg(), err)
		}
	}
}

func TestVerifyNoKID(t *testing.T) {
	rs, es := testIssuer(t, "RS256"), testIssuer(t, "ES256")
	noKID := map[string]any{"kid": nil}
	// One key: a token without kid uses it.
	if _, err := fileVerifier(t, es.JWKS()).Verify(context.Background(), es.SignWithHeader(noKID, claims("u"))); err != nil {
		t.Errorf("single key, no kid: %v", err)
	}
	// Several keys: ambiguous.
	_, err := fileVerifier(t, authtest.JWKS(rs, es)).Verify(context.Background(), es.SignWithHeader(noKID, claims("u")))
	if !errors.Is(err, auth.ErrInvalidToken) {
		t.Errorf("two keys, no kid: err = %v, want ErrInvalidToken", err)
	}
}

func TestVerifyRejectsTampering(t *testing.T) {
	for _, alg := range []string{"RS256", "ES256", "ES384"} {
		is := testIssuer(t, alg)
		v := fileVerifier(t, is.JWKS())
		token := is.Sign(claims("u"))
		for seg, name := range []string{"header", "payload", "signature"} {
			for _, i := range []int{0, 7, -1} {
				bad := flipByte(t, token, seg, i)
				if _, err := v.Verify(context.Background(), bad); !errors.Is(err, auth.ErrInvalidToken) {
					t.Errorf("%s, %s byte %d flipped: err = %v, want ErrInvalidToken", alg, name, i, err)
				}
			}
		}
		// The signature of one token on another's header and payload.
		other := strings.Split(is.Sign(claims("mallory")), ".")
		spliced := strings.Join(append(strings.Split(token, ".")[:2], other[2]), ".")
		if _, err := v.Verify(context.Background(), spliced); !errors.Is(err, auth.ErrInvalidToken) {
			t.Errorf("%s, spliced signature: err = %v, want ErrInvalidToken", alg, err)
		}
	}
}

func TestVerifyRejectsAlgNone(t *testing.T) {
	is := testIssuer(t, "RS256")
	v := fileVerifier(t, is.JWKS())
	real := strings.Split(is.Sign(claims("u")), ".")[2]
	for _, alg := range []string{"none", "None", "NONE", "nOnE", ""} {
		header := map[string]any{"alg": alg, "kid": is.KeyID(), "typ": "JWT"}
		for _, token := range []string{
			segment(header) + "." + segment(claims("u")) + ".",
			segment(header) + "." + segment(claims("u")) + "." + real,
		} {
			_, err := v.Verify(context.Background(), token)
			if !errors.Is(err, auth.ErrInvalidToken) {
				t.Errorf("alg %q: err = %v, want ErrInvalidToken", alg, err)
			}
		}
	}
}

// TestVerifyRejectsHMACKeyConfusion is the classic attack on libraries that
// let the token choose the algorithm: HS256 with the RSA public key, which
// the attacker knows, as the HMAC secret.
func TestVerifyRejectsHMACKeyConfusion(t *testing.T) {
	is := testIssuer(t, "RS256")
	v := fileVerifier(t, is.JWKS())
	der, err := x509.MarshalPKIXPublicKey(is.PublicKey())
	if err != nil {
		t.Fatal(err)
	}
	pkcs1 := x509.MarshalPKCS1PublicKey(is.PublicKey().(*rsa.PublicKey))
	secrets := map[string][]byte{
		"PEM SPKI":  pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}),
		"DER SPKI":  der,
		"PEM PKCS1": pem.EncodeToMemory(&pem.Block{Type: "RSA PUBLIC KEY", Bytes: pkcs1}),
		"JWKS":      is.JWKS(),
		"modulus":   is.PublicKey().(*rsa.PublicKey).N.Bytes(),
	}
	for name, secret := range secrets {
		for _, alg := range []string{"HS256", "HS384", "HS512"} {
			input := segment(map[string]any{"alg": alg, "kid": is.KeyID()}) + "." + segment(claims("u"))
			mac := hmac.New(sha256.New, secret)
			mac.Write([]byte(input))
			_, err := v.Verify(context.Background(), input+"."+b64(mac.Sum(nil)))
			if !errors.Is(err, auth.ErrInvalidToken) || !strings.Contains(err.Error(), "unsupported alg") {
				t.Errorf("%s with %s: err = %v, want unsupported alg", alg, name, err)
			}
		}
	}
}

func TestVerifyRejectsOtherAlgs(t *testing.T) {
	is := testIssuer(t, "ES256")
	v := fileVerifier(t, is.JWKS())
	for _, alg := range []string{"ES512", "EdDSA", "PS384", "PS512", "RS1", "es256", "ES256 ", "RSA-OAEP"} {
		token := is.SignWithHeader(map[string]any{"alg": alg}, claims("u"))
		if _, err := v.Verify(context.Background(), token); !errors.Is(err, auth.ErrInvalidToken) {
			t.Errorf("alg %q: err = %v, want ErrInvalidToken", alg, err)
		}
	}
}

// TestVerifyRejectsAlgKeyMismatch checks that the token's alg must fit the
// key it selects.
func TestVerifyRejectsAlgKeyMismatch(t *testing.T) {
	rs, es, es384 := testIssuer(t, "RS256"), testIssuer(t, "ES256"), testIssuer(t, "ES384")
	v := fileVerifier(t, authtest.JWKS(rs, es, es384))
	tests := map[string]string{
		// header alg differs from the key's alg (and from how it was signed)
		"PS256 header, RS256 key": rs.SignWithHeader(map[string]any{"alg": "PS256"}, claims("u")),
		"RS384 header, RS256 key": rs.SignWithHeader(map[string]any{"alg": "RS384"}, claims("u")),
		"ES256 token, RSA kid":    es.SignWithHeader(map[string]any{"kid": rs.KeyID()}, claims("u")),
		"ES256 token, P-384 kid":  es.SignWithHeader(map[string]any{"kid": es384.KeyID()}, claims("u")),
		"RS256 token, EC kid":     rs.SignWithHeader(map[string]any{"kid": es.KeyID()}, claims("u")),
	}
	for name, token := range tests {
		if _, err := v.Verify(context.Background(), token); !errors.Is(err, auth.ErrInvalidToken) {
			t.Errorf("%s: err = %v, want ErrInvalidToken", name, err)
		}
	}
}

// TestVerifyRejectsDERSignature checks that an ASN.1 DER ECDSA signature, as
// produced by most crypto libraries, is not accepted in place of R||S.
func TestVerifyRejectsDERSignature(t *testing.T) {
	is := testIssuer(t, "ES256")
	v := fileVerifier(t, is.JWKS())
	input := segment(map[string]any{"alg": "ES256", "kid": is.KeyID()}) + "." + segment(claims("u"))
	digest := sha256.Sum256([]byte(input))
	der, err := ecdsa.SignASN1(rand.Reader, is.PrivateKey().(*ecdsa.PrivateKey), digest[:])
	if err != nil {
		t.Fatal(err)
	}
	if _, err := v.Verify(context.Background(), input+"."+b64(der)); !errors.Is(err, auth.ErrInvalidToken) {
		t.Errorf("DER signature: err = %v, want ErrInvalidToken", err)
	}
}

func TestVerifyUnknownKID(t *testing.T) {
	is := testIssuer(t, "ES256")
	v := fileVerifier(t, is.JWKS())
	token := is.SignWithHeader(map[string]any{"kid": "not-" + is.KeyID()}, claims("u"))
	_, err := v.Verify(context.Background(), token)
	if !errors.Is(err, auth.ErrInvalidToken) || !strings.Contains(err.Error(), "no signing key") {
		t.Errorf("err = %v, want ErrInvalidToken about the kid", err)
	}
}

func TestVerifyClaims(t *testing.T) {
	is := testIssuer(t, "ES256")
	v := fileVerifier(t, is.JWKS())
	unix := func(d time.Duration) int64 { return testNow.Add(d).Unix() }
	tests := []struct {
		name    string
		edit    map[string]any // nil value deletes the claim
		wantID  string
		wantErr error
		notErr  error // must not match, to check precision
	}{
		{name: "valid", wantID: "u"},
		{name: "oid over sub", edit: map[string]any{"sub": "s"}, wantID: "u"},
		{name: "sub when no oid", edit: map[string]any{"oid": nil, "sub": "s"}, wantID: "s"},
		{name: "sub when oid empty", edit: map[string]any{"oid": "", "sub": "s"}, wantID: "s"},
		{name: "neither oid nor sub", edit: map[string]any{"oid": nil, "sub": nil}, wantErr: auth.ErrInvalidToken},
		{name: "oid not a string", edit: map[string]any{"oid": 42}, wantErr: auth.ErrInvalidToken},

		{name: "wrong iss", edit: map[string]any{"iss": "https://evil.example/"}, wantErr: auth.ErrUnknownIssuer},
		{name: "iss with trailing space", edit: map[string]any{"iss": authtest.IssuerURL + " "}, wantErr: auth.ErrUnknownIssuer},
		{name: "no iss", edit: map[string]any{"iss": nil}, wantErr: auth.ErrUnknownIssuer},
		{name: "iss not a string", edit: map[string]any{"iss": []string{authtest.IssuerURL}}, wantErr: auth.ErrInvalidToken},

		{name: "wrong aud", edit: map[string]any{"aud": "https://other.example"}, wantErr: auth.ErrInvalidToken},
		{name: "aud array containing ours", edit: map[string]any{"aud": []string{"x", authtest.Audience}}, wantID: "u"},
		{name: "aud array without ours", edit: map[string]any{"aud": []string{"x", "y"}}, wantErr: auth.ErrInvalidToken},
		{name: "aud empty array", edit: map[string]any{"aud": []string{}}, wantErr: auth.ErrInvalidToken},
		{name: "no aud", edit: map[string]any{"aud": nil}, wantErr: auth.ErrInvalidToken},
		{name: "aud not a string", edit: map[string]any{"aud": 1}, wantErr: auth.ErrInvalidToken},
		{name: "aud prefix", edit: map[string]any{"aud": authtest.Audience + "/x"}, wantErr: auth.ErrInvalidToken},

		{name: "expired", edit: map[string]any{"exp": unix(-61 * time.Second)}, wantErr: auth.ErrExpired},
		{name: "expired long ago", edit: map[string]any{"exp": 1}, wantErr: auth.ErrExpired},
		{name: "expired within leeway", edit: map[string]any{"exp": unix(-59 * time.Second)}, wantID: "u"},
		{name: "fractional exp", edit: map[string]any{"exp": float64(unix(time.Hour)) + 0.5}, wantID: "u"},
		{name: "no exp", edit: map[string]any{"exp": nil}, wantErr: auth.ErrInvalidToken, notErr: auth.ErrExpired},
		{name: "exp a string", edit: map[string]any{"exp": "9999999999"}, wantErr: auth.ErrInvalidToken},
		{name: "exp huge", edit: map[string]any{"exp": 1e300}, wantErr: auth.ErrInvalidToken, notErr: auth.ErrExpired},
		{name: "exp huge without iat", edit: map[string]any{"exp": 1e300, "iat": nil}, wantErr: auth.ErrInvalidToken, notErr: auth.ErrExpired},
		{name: "lifetime 24h", edit: map[string]any{"exp": unix(24 * time.Hour)}, wantID: "u"},
		{name: "lifetime over 24h", edit: map[string]any{"exp": unix(24*time.Hour + time.Second)}, wantErr: auth.ErrInvalidToken, notErr: auth.ErrExpired},
		{name: "old iat, long lifetime", edit: map[string]any{"iat": unix(-48 * time.Hour), "nbf": nil, "exp": unix(time.Hour)}, wantErr: auth.ErrInvalidToken},
		{name: "no iat, exp within 24h", edit: map[string]any{"iat": nil, "exp": unix(24 * time.Hour)}, wantID: "u"},
		{name: "no iat, exp beyond 24h", edit: map[string]any{"iat": nil, "exp": unix(25 * time.Hour)}, wantErr: auth.ErrInvalidToken, notErr: auth.ErrExpired},
		{name: "nbf in future", edit: map[string]any{"nbf": unix(2 * time.Minute)}, wantErr: auth.ErrInvalidToken, notErr: auth.ErrExpired},
		{name: "nbf within leeway", edit: map[string]any{"nbf": unix(59 * time.Second)}, wantID: "u"},
		{name: "iat in future", edit: map[string]any{"iat": unix(2 * time.Minute)}, wantErr: auth.ErrInvalidToken},
		{name: "iat within leeway", edit: map[string]any{"iat": unix(59 * time.Second)}, wantID: "u"},
		{name: "no nbf or iat", edit: map[string]any{"nbf": nil, "iat": nil}, wantID: "u"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := claims("u")
			for k, val := range tt.edit {
				if val == nil {
					delete(c, k)
				} else {
					c[k] = val
				}
			}
			p, err := v.Verify(context.Background(), is.Sign(c))
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) || (tt.notErr != nil && errors.Is(err, tt.notErr)) {
					t.Fatalf("err = %v, want %v (and not %v)", err, tt.wantErr, tt.notErr)
				}
				return
			}
			if err != nil || p.ID != tt.wantID {
				t.Fatalf("Verify = %+v, %v; want ID %q", p, err, tt.wantID)
			}
		})
	}
}

func TestVerifyErrorsMatchInvalidToken(t *testing.T) {
	for _, err := range []error{auth.ErrExpired, auth.ErrUnknownIssuer} {
		if !errors.Is(err, auth.ErrInvalidToken) {
			t.Errorf("errors.Is(%v, ErrInvalidToken) = false", err)
		}
	}
	if errors.Is(auth.ErrInvalidToken, auth.ErrExpired) || errors.Is(auth.ErrUnknownIssuer, auth.ErrExpired) {
		t.Error("ErrInvalidToken or ErrUnknownIssuer matches ErrExpired")
	}
}

func TestVerifyMalformed(t *testing.T) {
	is := testIssuer(t, "ES256")
	v := fileVerifier(t, is.JWKS())
	good := is.Sign(claims("u"))
	parts := strings.Split(good, ".")
	header := map[string]any{"alg": "ES256", "kid": is.KeyID()}
	signed := func(h, payload string) string { // validly signed, odd contents
		return h + "." + payload + "." + b64(is.SignBytes([]byte(h+"."+payload)))
	}
	tests := map[string]string{
		"one segment":        parts[0],
		"two segments":       parts[0] + "." + parts[1],
		"four segments":      good + "." + parts[2],
		"dots only":          "..",
		"empty header":       "." + parts[1] + "." + parts[2],
		"empty payload":      parts[0] + ".." + parts[2],
		"empty signature":    parts[0] + "." + parts[1] + ".",
		"padding":            good + "==",
		"padded payload":     parts[0] + "." + parts[1] + "=." + parts[2],
		"standard base64":    strings.NewReplacer("-", "+", "_", "/").Replace(good) + "+/",
		"newline":            parts[0] + "." + parts[1][:5] + "\n" + parts[1][5:] + "." + parts[2],
		"CRLF":               parts[0] + "\r\n." + parts[1] + "." + parts[2],
		"space":              " " + good,
		"non-canonical bits": parts[0] + "." + parts[1] + "." + nonCanonical(t, parts[2]),
		"header not JSON":    signed(b64([]byte("not json")), parts[1]),
		"header array":       signed(b64([]byte(`["ES256"]`)), parts[1]),
		"header null":        signed(b64([]byte(`null`)), parts[1]),
		"crit header":        is.SignWithHeader(map[string]any{"crit": []string{"exp"}, "exp": 1}, claims("u")),
		"payload not JSON":   signed(segment(header), b64([]byte("{"))),
		"payload array":      signed(segment(header), b64([]byte(`[1]`))),
		"payload string":     signed(segment(header), segment("eyJ")),
		"non-ASCII":          good + "é",
	}
	for name, token := range tests {
		t.Run(name, func(t *testing.T) {
			_, err := v.Verify(context.Background(), token)
			if !errors.Is(err, auth.ErrInvalidToken) {
				t.Errorf("err = %v, want ErrInvalidToken", err)
			}
		})
	}
	if _, err := v.Verify(context.Background(), ""); !errors.Is(err, auth.ErrNoCredentials) {
		t.Errorf("empty token: err = %v, want ErrNoCredentials", err)
	}
}

// nonCanonical changes the unused low bits of the last base64url character,
// which a lax decoder ignores.
func nonCanonical(t *testing.T, seg string) string {
	t.Helper()
	if len(seg)%4 == 0 {
		t.Fatalf("segment of length %d has no unused bits", len(seg))
	}
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
	last := strings.IndexByte(alphabet, seg[len(seg)-1])
	mutated := seg[:len(seg)-1] + string(alphabet[last|1])
	if b1, _ := base64.RawURLEncoding.DecodeString(seg); string(b1) != string(must(base64.RawURLEncoding.DecodeString(mutated))) {
		t.Fatal("mutation changed the decoded bytes")
	}
	return mutated
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

func TestVerifyTokenLength(t *testing.T) {
	is := testIssuer(t, "ES256")
	v := fileVerifier(t, is.JWKS())
	// Find padding that brings the token to exactly the limit.
	const limit = 16 << 10
	c := claims("u")
	c["pad"] = ""
	base := len(is.Sign(c))
	c["pad"] = strings.Repeat("x", (limit-base)*3/4)
	for len(is.Sign(c)) < limit {
		c["pad"] = c["pad"].(string) + "x"
	}
	for len(is.Sign(c)) > limit {
		c["pad"] = c["pad"].(string)[1:]
	}
	atLimit := is.Sign(c)
	if _, err := v.Verify(context.Background(), atLimit); err != nil {
		t.Errorf("token of %d bytes: %v", len(atLimit), err)
	}
	c["pad"] = c["pad"].(string) + "xxxx"
	over := is.Sign(c)
	if _, err := v.Verify(context.Background(), over); !errors.Is(err, auth.ErrInvalidToken) {
		t.Errorf("token of %d bytes: err = %v, want ErrInvalidToken", len(over), err)
	}
	if _, err := v.Verify(context.Background(), strings.Repeat("A", 1<<20)); !errors.Is(err, auth.ErrInvalidToken) {
		t.Errorf("1 MiB token: err = %v, want ErrInvalidToken", err)
	}
}

// TestVerifyOffCurveKey checks that a JWKS key whose point is not on its
// curve is never used.
func TestVerifyOffCurveKey(t *testing.T) {
	es, rs := testIssuer(t, "ES256"), testIssuer(t, "RS256")
	bad := es.JWK()
	y := must(base64.RawURLEncoding.DecodeString(bad["y"].(string)))
	y[len(y)-1] ^= 1
	bad["y"] = b64(y)
	only := []byte(`{"keys":[` + string(must(jsonMarshal(bad))) + `]}`)
	_, err := auth.NewJWTVerifier([]auth.IssuerConfig{{
		Issuer: authtest.IssuerURL, Audience: authtest.Audience, JWKSFile: writeFile(t, "jwks.json", only),
	}}, auth.JWTOptions{})
	if err == nil || !strings.Contains(err.Error(), "no usable signing key") {
		t.Errorf("JWKS with only an off-curve key: err = %v, want no usable key", err)
	}
	withGood := []byte(`{"keys":[` + string(must(jsonMarshal(bad))) + `,` + string(must(jsonMarshal(rs.JWK()))) + `]}`)
	v := fileVerifier(t, withGood)
	if _, err := v.Verify(context.Background(), es.Sign(claims("u"))); !errors.Is(err, auth.ErrInvalidToken) {
		t.Errorf("token for off-curve key: err = %v, want ErrInvalidToken", err)
	}
	if _, err := v.Verify(context.Background(), rs.Sign(claims("u"))); err != nil {
		t.Errorf("token for the good key: %v", err)
	}
}

func TestVerifySeveralIssuers(t *testing.T) {
	a, b := testIssuer(t, "RS256"), testIssuer(t, "ES256")
	v, err := auth.NewJWTVerifier([]auth.IssuerConfig{
		{Issuer: "https://a.example/", Audience: "aud-a", JWKSFile: writeFile(t, "a.json", a.JWKS())},
		{Issuer: "https://b.example/", Audience: "aud-b", JWKSFile: writeFile(t, "b.json", b.JWKS()), Namespace: "b"},
	}, auth.JWTOptions{Now: func() time.Time { return testNow }})
	if err != nil {
		t.Fatal(err)
	}
	tok := func(is *authtest.Issuer, iss, aud string) string {
		return is.Sign(authtest.Claims(iss, aud, "u", testNow))
	}
	for name, tc := range map[string]struct {
		token string
		id    string // "": refused
	}{
		"a":                   {tok(a, "https://a.example/", "aud-a"), "u"},
		"b":                   {tok(b, "https://b.example/", "aud-b"), "b:u"},
		"a's key, b's iss":    {tok(a, "https://b.example/", "aud-b"), ""},
		"b's key, a's iss":    {tok(b, "https://a.example/", "aud-a"), ""},
		"a's iss, b's aud":    {tok(a, "https://a.example/", "aud-b"), ""},
		"b's kid, a's header": {a.SignWithHeader(map[string]any{"kid": b.KeyID()}, authtest.Claims("https://b.example/", "aud-b", "u", testNow)), ""},
	} {
		p, err := v.Verify(context.Background(), tc.token)
		if (err == nil) != (tc.id != "") || p.ID != tc.id {
			t.Errorf("%s: Verify = %+v, %v; want id %q", name, p, err, tc.id)
		}
	}
}

func TestNewJWTVerifierConfig(t *testing.T) {
	jwks := writeFile(t, "jwks.json", testIssuer(t, "ES256").JWKS())
	good := auth.IssuerConfig{Issuer: authtest.IssuerURL, Audience: authtest.Audience, JWKSFile: jwks}
	with := func(edit func(*auth.IssuerConfig)) []auth.IssuerConfig {
		c := good
		edit(&c)
		return []auth.IssuerConfig{c}
	}
	tests := []struct {
		name    string
		issuers []auth.IssuerConfig
		opts    auth.JWTOptions
		wantErr string // empty: valid
	}{
		{name: "file", issuers: []auth.IssuerConfig{good}},
		{name: "https URL", issuers: with(func(c *auth.IssuerConfig) { c.JWKSFile, c.JWKSURL = "", "https://login.example/keys" })},
		{name: "http localhost", issuers: with(func(c *auth.IssuerConfig) { c.JWKSFile, c.JWKSURL = "", "http://localhost:8080/keys" })},
		{name: "http ::1", issuers: with(func(c *auth.IssuerConfig) { c.JWKSFile, c.JWKSURL = "", "http://[::1]:8080/keys" })},
		{name: "no issuers", wantErr: "no JWT issuers"},
		{name: "no issuer", issuers: with(func(c *auth.IssuerConfig) { c.Issuer = "" }), wantErr: "no Issuer"},
		{name: "no audience", issuers: with(func(c *auth.IssuerConfig) { c.Audience = "" }), wantErr: "no Audience"},
		{name: "no keys", issuers: with(func(c *auth.IssuerConfig) { c.JWKSFile = "" }), wantErr: "exactly one of JWKSFile and JWKSURL"},
		{name: "both keys", issuers: with(func(c *auth.IssuerConfig) { c.JWKSURL = "https://x/keys" }), wantErr: "exactly one of JWKSFile and JWKSURL"},
		{name: "http URL", issuers: with(func(c *auth.IssuerConfig) { c.JWKSFile, c.JWKSURL = "", "http://login.example/keys" }), wantErr: "https"},
		{name: "relative URL", issuers: with(func(c *auth.IssuerConfig) { c.JWKSFile, c.JWKSURL = "", "/keys" }), wantErr: "https"},
		{name: "missing file", issuers: with(func(c *auth.IssuerConfig) { c.JWKSFile += ".missing" }), wantErr: "couldn't read JWKS file"},
		{name: "bad file", issuers: with(func(c *auth.IssuerConfig) { c.JWKSFile = writeFile(t, "bad.json", []byte("{")) }), wantErr: "couldn't parse JWKS"},
		{name: "duplicate issuer", issuers: []auth.IssuerConfig{good, good}, wantErr: "configured twice"},
		{name: "negative leeway", issuers: []auth.IssuerConfig{good}, opts: auth.JWTOptions{Leeway: -time.Second}, wantErr: "Leeway"},
		{name: "negative refresh", issuers: []auth.IssuerConfig{good}, opts: auth.JWTOptions{RefreshInterval: -time.Second}, wantErr: "RefreshInterval"},
		{name: "negative lifetime", issuers: []auth.IssuerConfig{good}, opts: auth.JWTOptions{MaxLifetime: -time.Second}, wantErr: "MaxLifetime"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := auth.NewJWTVerifier(tt.issuers, tt.opts)
			switch {
			case tt.wantErr == "" && err != nil:
				t.Errorf("err = %v, want nil", err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Errorf("err = %v, want one containing %q", err, tt.wantErr)
			}
		})
	}
}

// TestVerifyLeewayOption checks a non-default leeway.
func TestVerifyLeewayOption(t *testing.T) {
	is := testIssuer(t, "ES256")
	v, err := auth.NewJWTVerifier([]auth.IssuerConfig{{
		Issuer: authtest.IssuerURL, Audience: authtest.Audience, JWKSFile: writeFile(t, "jwks.json", is.JWKS()),
	}}, auth.JWTOptions{Now: func() time.Time { return testNow }, Leeway: time.Nanosecond})
	if err != nil {
		t.Fatal(err)
	}
	c := claims("u")
	c["exp"] = testNow.Unix()
	if _, err := v.Verify(context.Background(), is.Sign(c)); !errors.Is(err, auth.ErrExpired) {
		t.Errorf("exp == now: err = %v, want ErrExpired", err)
	}
	c = maps.Clone(claims("u"))
	c["nbf"] = testNow.Add(time.Second).Unix()
	if _, err := v.Verify(context.Background(), is.Sign(c)); !errors.Is(err, auth.ErrInvalidToken) {
		t.Errorf("nbf a second ahead: err = %v, want ErrInvalidToken", err)
	}
}

// TestVerifyMaxLifetimeOption checks a non-default lifetime bound.
func TestVerifyMaxLifetimeOption(t *testing.T) {
	is := testIssuer(t, "ES256")
	v, err := auth.NewJWTVerifier([]auth.IssuerConfig{{
		Issuer: authtest.IssuerURL, Audience: authtest.Audience, JWKSFile: writeFile(t, "jwks.json", is.JWKS()),
	}}, auth.JWTOptions{Now: func() time.Time { return testNow }, MaxLifetime: 30 * time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	c := claims("u") // valid for an hour
	if _, err := v.Verify(context.Background(), is.Sign(c)); !errors.Is(err, auth.ErrInvalidToken) {
		t.Errorf("1h token, 30m bound: err = %v, want ErrInvalidToken", err)
	}
	c["exp"] = testNow.Add(30 * time.Minute).Unix()
	if _, err := v.Verify(context.Background(), is.Sign(c)); err != nil {
		t.Errorf("30m token, 30m bound: err = %v", err)
	}
}

// TestErrorsDoNotLeakToken checks that no error message quotes the token or
// its signature.
func TestErrorsDoNotLeakToken(t *testing.T) {
	is := testIssuer(t, "RS256")
	v := fileVerifier(t, is.JWKS())
	c := claims("u")
	c["exp"] = 1
	for _, token := range []string{is.Sign(c), flipByte(t, is.Sign(claims("u")), 2, 0), is.Sign(claims("u")) + "x"} {
		_, err := v.Verify(context.Background(), token)
		sig := strings.Split(token, ".")[2]
		if err == nil || strings.Contains(err.Error(), sig[:20]) || strings.Contains(err.Error(), token[:20]) {
			t.Errorf("err = %v", err)
		}
	}
}
