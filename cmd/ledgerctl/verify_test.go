package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// vectorFiles writes the real service's receipt vector as a service
// certificate file and a receipt file with mutate applied to the receipt.
func vectorFiles(t *testing.T, mutate func(r map[string]any)) (cert, rcpt string) {
	t.Helper()
	raw, err := os.ReadFile("../../testdata/acl-receipt-2022-05-13.json")
	if err != nil {
		t.Fatal(err)
	}
	var v struct {
		ServiceCertificate string         `json:"serviceCertificate"`
		Receipt            map[string]any `json:"receipt"`
	}
	if err := json.Unmarshal(raw, &v); err != nil {
		t.Fatal(err)
	}
	if mutate != nil {
		mutate(v.Receipt)
	}
	dir := t.TempDir()
	cert, rcpt = filepath.Join(dir, "service.pem"), filepath.Join(dir, "receipt.json")
	body, _ := json.Marshal(map[string]any{"receipt": v.Receipt, "state": "Ready", "transactionId": "2.35"})
	os.WriteFile(cert, []byte(v.ServiceCertificate), 0o600)
	os.WriteFile(rcpt, body, 0o600)
	return cert, rcpt
}

func flipHex(s string, i int) string {
	b := []byte(s)
	if b[i] == '0' {
		b[i] = '1'
	} else {
		b[i] = '0'
	}
	return string(b)
}

func TestVerifyAcceptsTheRealServiceReceipt(t *testing.T) {
	cert, rcpt := vectorFiles(t, nil)
	var out, errb bytes.Buffer
	if code := run([]string{"verify", "--service-cert", cert, rcpt}, &out, &errb); code != 0 {
		t.Fatalf("exit %d: %s%s", code, out.String(), errb.String())
	}
	if !strings.Contains(out.String(), "OK: receipt of transaction 2.35 verifies") {
		t.Fatalf("output %q", out.String())
	}
}

func TestVerifyRejectsMutations(t *testing.T) {
	leaf := func(k string) func(r map[string]any) {
		return func(r map[string]any) {
			lc := r["leafComponents"].(map[string]any)
			lc[k] = flipHex(lc[k].(string), 40)
		}
	}
	cases := map[string]func(r map[string]any){
		"writeSetDigest": leaf("writeSetDigest"),
		"claimsDigest":   leaf("claimsDigest"),
		"commitEvidence": leaf("commitEvidence"),
		"proof": func(r map[string]any) {
			p := r["proof"].([]any)[1].(map[string]any)
			p["left"] = flipHex(p["left"].(string), 7)
		},
		"signature": func(r map[string]any) {
			s := []byte(r["signature"].(string))
			s[20] ^= 1
			r["signature"] = string(s)
		},
	}
	for name, mutate := range cases {
		t.Run(name, func(t *testing.T) {
			cert, rcpt := vectorFiles(t, mutate)
			var out, errb bytes.Buffer
			code := run([]string{"verify", "--service-cert", cert, rcpt}, &out, &errb)
			if code != 1 || !strings.Contains(errb.String(), "INVALID") || strings.Contains(out.String(), "OK") {
				t.Fatalf("exit %d, stdout %q, stderr %q; want exit 1 and INVALID", code, out.String(), errb.String())
			}
		})
	}
}

func TestVerifyUsage(t *testing.T) {
	var out, errb bytes.Buffer
	if code := run([]string{"verify"}, &out, &errb); code != 2 {
		t.Fatalf("verify without arguments: exit %d, want 2", code)
	}
}

// TestVerifyChecksApplicationClaims: a response with applicationClaims (the
// real service's, 2023-01-18-preview) verifies with its claims; a flipped
// byte in the claims' contents is refused.
func TestVerifyChecksApplicationClaims(t *testing.T) {
	raw, err := os.ReadFile("../../testdata/acl-receipt-claims-2023-01-18-preview.json")
	if err != nil {
		t.Fatal(err)
	}
	var v struct {
		ServiceCertificate string          `json:"serviceCertificate"`
		Response           json.RawMessage `json:"response"`
	}
	if err := json.Unmarshal(raw, &v); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	cert, good, bad := filepath.Join(dir, "service.pem"), filepath.Join(dir, "good.json"), filepath.Join(dir, "bad.json")
	os.WriteFile(cert, []byte(v.ServiceCertificate), 0o600)
	os.WriteFile(good, v.Response, 0o600)
	os.WriteFile(bad, bytes.Replace(v.Response, []byte(`"Hello world"`), []byte(`"Hello worle"`), 1), 0o600)
	var out, errb bytes.Buffer
	if code := run([]string{"verify", "--service-cert", cert, good}, &out, &errb); code != 0 {
		t.Fatalf("exit %d: %s%s", code, out.String(), errb.String())
	}
	if !strings.Contains(out.String(), "OK: its 1 application claim(s) match") {
		t.Fatalf("output %q", out.String())
	}
	out.Reset()
	errb.Reset()
	if code := run([]string{"verify", "--service-cert", cert, bad}, &out, &errb); code != 1 || !strings.Contains(errb.String(), "application claims do not match") {
		t.Fatalf("tampered claims: exit %d: %s%s", code, out.String(), errb.String())
	}
}
