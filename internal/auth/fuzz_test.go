package auth_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/ledgerd/ledgerd/internal/auth"
	"github.com/ledgerd/ledgerd/internal/auth/authtest"
)

// FuzzVerify checks that Verify never panics, that every rejection is
// classified by a sentinel, and that anything accepted yields a principal.
func FuzzVerify(f *testing.F) {
	rs, es := testIssuer(f, "RS256"), testIssuer(f, "ES256")
	v := fileVerifier(f, authtest.JWKS(rs, es))
	for _, is := range []*authtest.Issuer{rs, es} {
		good := is.Sign(claims("u"))
		f.Add(good)
		f.Add(is.SignWithHeader(map[string]any{"kid": nil}, claims("u")))
		f.Add(is.SignWithHeader(map[string]any{"alg": "none"}, claims("u")))
		parts := strings.Split(good, ".")
		f.Add(parts[0] + "." + parts[1] + ".")
		f.Add(parts[0] + "." + parts[1])
	}
	f.Add("")
	f.Add("..")
	f.Add("e30.e30.e30")
	f.Fuzz(func(t *testing.T, token string) {
		p, err := v.Verify(context.Background(), token)
		if err != nil {
			if !errors.Is(err, auth.ErrInvalidToken) && !errors.Is(err, auth.ErrNoCredentials) {
				t.Fatalf("unclassified error: %v", err)
			}
			return
		}
		if p.ID == "" || p.Kind != auth.KindJWT {
			t.Fatalf("accepted token gave principal %+v", p)
		}
	})
}
