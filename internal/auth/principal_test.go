package auth_test

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/ledgerd/ledgerd/internal/auth"
)

// userCertFingerprint was computed with
// `openssl x509 -in testdata/user-cert.pem -noout -fingerprint -sha256`.
const userCertFingerprint = "25:E3:FF:A7:62:29:A7:2B:97:86:7B:9F:71:7E:2C:E4:97:29:2B:53:FA:BC:15:53:4A:D2:9C:1D:C3:13:2C:7B"

func userCert(t *testing.T) *x509.Certificate {
	t.Helper()
	data, err := os.ReadFile("testdata/user-cert.pem")
	if err != nil {
		t.Fatal(err)
	}
	block, _ := pem.Decode(data)
	if block == nil {
		t.Fatal("no PEM block in testdata/user-cert.pem")
	}
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return cert
}

func TestCertificateUserID(t *testing.T) {
	if got := auth.CertificateUserID(userCert(t).Raw); got != userCertFingerprint {
		t.Errorf("CertificateUserID = %s, want %s", got, userCertFingerprint)
	}
	if got := auth.CertificateUserID(nil); len(got) != 95 || got[:8] != "E3:B0:C4" {
		t.Errorf("CertificateUserID(nil) = %s, want SHA-256 of empty input", got)
	}
}

func TestPrincipalFromTLS(t *testing.T) {
	cert := userCert(t)
	cs := &tls.ConnectionState{PeerCertificates: []*x509.Certificate{cert}}
	want := auth.Principal{ID: userCertFingerprint, Kind: auth.KindCertificate}
	for _, now := range []time.Time{cert.NotBefore, cert.NotBefore.Add(time.Hour), cert.NotAfter} {
		if p, err := auth.PrincipalFromTLS(cs, now); err != nil || p != want {
			t.Errorf("PrincipalFromTLS at %v = %+v, %v; want %+v", now, p, err, want)
		}
	}
	// As CCF's is_cert_valid_now: refused outside the validity period.
	for _, now := range []time.Time{cert.NotBefore.Add(-time.Second), cert.NotAfter.Add(time.Second)} {
		if p, err := auth.PrincipalFromTLS(cs, now); !errors.Is(err, auth.ErrCertificateNotValid) {
			t.Errorf("PrincipalFromTLS at %v = %+v, %v; want ErrCertificateNotValid", now, p, err)
		}
	}
	for _, cs := range []*tls.ConnectionState{nil, {}} {
		if _, err := auth.PrincipalFromTLS(cs, time.Now()); !errors.Is(err, auth.ErrNoCredentials) {
			t.Errorf("PrincipalFromTLS(%v): err = %v, want ErrNoCredentials", cs, err)
		}
	}
}

func TestNormalizeUserID(t *testing.T) {
	lower := strings.ToLower(userCertFingerprint)
	tests := map[string]string{
		userCertFingerprint:                    userCertFingerprint,
		lower:                                  userCertFingerprint,
		strings.ReplaceAll(lower, ":", "%3a"):  strings.ReplaceAll(lower, ":", "%3a"), // decoded by the HTTP server, not here
		"6696d1bc-6012-47da-8556-ab4c747999c9": "6696d1bc-6012-47da-8556-ab4c747999c9",
		"6696D1BC-6012-47DA-8556-AB4C747999C9": "6696D1BC-6012-47DA-8556-AB4C747999C9",
		"user%20name":                          "user%20name",
		"a%2541":                               "a%2541",
		"a+b":                                  "a+b",
		lower[:94]:                             lower[:94], // too short for a fingerprint
		strings.ReplaceAll(lower, ":", "-"):    strings.ReplaceAll(lower, ":", "-"),
		"":                                     "",
	}
	for in, want := range tests {
		if got := auth.NormalizeUserID(in); got != want {
			t.Errorf("NormalizeUserID(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestKindString(t *testing.T) {
	if auth.KindCertificate.String() != "certificate" || auth.KindJWT.String() != "jwt" || auth.Kind(0).String() != "Kind(0)" {
		t.Error("Kind.String")
	}
}

func TestBearerToken(t *testing.T) {
	tests := []struct {
		header  []string
		want    string
		wantErr error
	}{
		{header: []string{"Bearer abc.def.ghi"}, want: "abc.def.ghi"},
		{header: []string{"bearer abc.def.ghi "}, want: "abc.def.ghi"},
		{header: nil, wantErr: auth.ErrNoCredentials},
		{header: []string{"Basic dXNlcjpwYXNz"}, wantErr: auth.ErrInvalidToken},
		{header: []string{"Bearer"}, wantErr: auth.ErrInvalidToken},
		{header: []string{"Bearer   "}, wantErr: auth.ErrInvalidToken},
		{header: []string{"Bearer a", "Bearer b"}, wantErr: auth.ErrInvalidToken},
	}
	for _, tt := range tests {
		h := http.Header{}
		for _, v := range tt.header {
			h.Add("Authorization", v)
		}
		got, err := auth.BearerToken(h)
		if got != tt.want || !errors.Is(err, tt.wantErr) || (tt.wantErr == nil) != (err == nil) {
			t.Errorf("BearerToken(%q) = %q, %v; want %q, %v", tt.header, got, err, tt.want, tt.wantErr)
		}
		if err != nil && strings.Contains(err.Error(), "dXNlcjpwYXNz") {
			t.Errorf("error leaks credentials: %v", err)
		}
	}
}

func TestAuthorize(t *testing.T) {
	dir := auth.MapDirectory{
		"reader":            {auth.ActionRead},
		"writer":            {auth.ActionRead, auth.ActionAppend},
		"none":              {},
		userCertFingerprint: {auth.ActionAppend},
	}
	tests := []struct {
		id   string
		need string
		ok   bool
	}{
		{"reader", auth.ActionRead, true},
		{"reader", auth.ActionAppend, false},
		{"writer", auth.ActionAppend, true},
		{"writer", auth.ActionUsersWrite, false},
		{"none", auth.ActionRead, false},
		{"stranger", auth.ActionRead, false},
		{"", auth.ActionRead, false},
		{"writer", "", false}, // fail closed on a missing requirement
		{userCertFingerprint, auth.ActionAppend, true},
	}
	for _, tt := range tests {
		err := auth.Authorize(dir, auth.Principal{ID: tt.id, Kind: auth.KindJWT}, tt.need)
		if tt.ok && err != nil || !tt.ok && !errors.Is(err, auth.ErrNotAllowed) {
			t.Errorf("Authorize(%q, %v) = %v, want ok=%v", tt.id, tt.need, err, tt.ok)
		}
	}
}
