package attest_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/ledgerd/ledgerd/internal/attest"
)

func TestVirtualQuote(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "ledgerd")
	if err := os.WriteFile(bin, []byte("a binary"), 0o755); err != nil {
		t.Fatal(err)
	}
	v, err := attest.NewVirtual(bin)
	if err != nil {
		t.Fatal(err)
	}
	want := sha256.Sum256([]byte("a binary"))
	if v.Measurement() != hex.EncodeToString(want[:]) || v.Format() != attest.FormatVirtual {
		t.Fatalf("measurement %s format %s", v.Measurement(), v.Format())
	}
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	rd, err := attest.ReportData(&key.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := v.Quote(rd)
	if err != nil {
		t.Fatal(err)
	}
	q, err := attest.VerifyVirtual(raw, rd, v.Measurement())
	if err != nil {
		t.Fatal(err)
	}
	if q.Format != attest.FormatVirtual {
		t.Fatalf("format %q", q.Format)
	}
	other, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	ord, _ := attest.ReportData(&other.PublicKey)
	if _, err := attest.VerifyVirtual(raw, ord, ""); !errors.Is(err, attest.ErrBadQuote) {
		t.Fatalf("quote for another key: %v", err)
	}
	if _, err := attest.VerifyVirtual(raw, rd, "00"); !errors.Is(err, attest.ErrBadQuote) {
		t.Fatalf("quote with another measurement: %v", err)
	}
	if _, err := attest.VerifyVirtual([]byte("{"), rd, ""); !errors.Is(err, attest.ErrBadQuote) {
		t.Fatalf("malformed quote: %v", err)
	}
}

func TestVirtualMeasuresRunningBinary(t *testing.T) {
	v, err := attest.NewVirtual("")
	if err != nil {
		t.Fatal(err)
	}
	exe, _ := os.Executable()
	data, err := os.ReadFile(exe)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(data)
	if v.Measurement() != hex.EncodeToString(sum[:]) {
		t.Fatal("measurement is not the SHA-256 of the running binary")
	}
}

func TestNewVirtualMissingFile(t *testing.T) {
	if _, err := attest.NewVirtual(filepath.Join(t.TempDir(), "nope")); err == nil {
		t.Fatal("no error for a missing binary")
	}
}
