package appjs

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"math/big"
	"strings"
	"testing"
	"time"
)

func unhex(t *testing.T, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// AES-KWP against RFC 5649 §6's vectors (a 192-bit KEK wrapping 20 and 7
// octets); one flipped byte, or another key, fails the integrity check.
func TestAESKWPVectors(t *testing.T) {
	kek := unhex(t, "5840df6e29b02af1ab493b705bf16ea1ae8338f4dcc176a8")
	for _, v := range []struct{ key, wrapped string }{
		{"c37b7e6492584340bed12207808941155068f738", "138bdeaa9b8fa7fc61f97742e72248ee5ae6ae5360d1ae6a5f54f373fa543b6a"},
		{"466f7250617369", "afbeb0f07dfbf5419200f2ccb50bb24f"},
	} {
		key, want := unhex(t, v.key), unhex(t, v.wrapped)
		got, err := AESKWPWrap(kek, key)
		if err != nil || !bytes.Equal(got, want) {
			t.Fatalf("wrap %s = %x (%v); want %x", v.key, got, err, want)
		}
		back, err := AESKWPUnwrap(kek, want)
		if err != nil || !bytes.Equal(back, key) {
			t.Fatalf("unwrap %s = %x (%v)", v.wrapped, back, err)
		}
		for i := range want {
			bad := bytes.Clone(want)
			bad[i] ^= 1
			if _, err := AESKWPUnwrap(kek, bad); err == nil {
				t.Fatalf("byte %d flipped: unwrapped", i)
			}
		}
		other := bytes.Clone(kek)
		other[0] ^= 1
		if _, err := AESKWPUnwrap(other, want); err == nil {
			t.Fatal("unwrapped with another key")
		}
	}
	if _, err := AESKWPWrap(kek[:5], []byte("k")); err == nil {
		t.Error("a 5-byte KEK accepted")
	}
	if _, err := AESKWPUnwrap(kek, make([]byte, 12)); err == nil {
		t.Error("a 12-byte wrapped key accepted")
	}
}

const cryptoModule = `
const b = (s) => ccf.strToBuf(s);
const hex = (buf) => Array.from(new Uint8Array(buf)).map((x) => x.toString(16).padStart(2, "0")).join("");
const unhex = (s) => new Uint8Array(s.match(/../g).map((h) => parseInt(h, 16))).buffer;
export function digest(s) { return hex(ccf.crypto.digest("SHA-256", b(s))); }
export function legacyDigest(s) { return hex(ccf.digest("SHA-256", b(s))); }
export function sign(alg, hash, key, data) { return hex(ccf.crypto.sign({ name: alg, hash: hash }, key, b(data))); }
export function verify(alg, hash, key, sigHex, data) { return ccf.crypto.verifySignature({ name: alg, hash: hash }, key, unhex(sigHex), b(data)); }
export function roundTrip(alg, hash, make, arg) {
  const kp = ccf.crypto[make](arg);
  const sig = ccf.crypto.sign({ name: alg, hash: hash }, kp.privateKey, b("hello"));
  const ok = ccf.crypto.verifySignature({ name: alg, hash: hash }, kp.publicKey, sig, b("hello"));
  const flipped = new Uint8Array(sig.slice(0));
  flipped[flipped.length >> 1] ^= 1;
  return { ok: ok, flippedSig: ccf.crypto.verifySignature({ name: alg, hash: hash }, kp.publicKey, flipped.buffer, b("hello")),
    otherData: ccf.crypto.verifySignature({ name: alg, hash: hash }, kp.publicKey, sig, b("hellO")),
    priv: kp.privateKey, pub: kp.publicKey };
}
export function aesKwp(kekHex, keyHex) { return hex(ccf.crypto.wrapKey(unhex(keyHex), unhex(kekHex), { name: "AES-KWP" })); }
export function aesKwpBack(kekHex, wrappedHex) { return hex(ccf.crypto.unwrapKey(unhex(wrappedHex), unhex(kekHex), { name: "AES-KWP" })); }
export function rsaWrap(alg, pub, priv, label) {
  const params = { name: alg, aesKeySize: 256 };
  if (label !== undefined) { params.label = b(label); }
  const key = ccf.crypto.generateAesKey(256);
  const wrapped = ccf.crypto.wrapKey(key, b(pub), params);
  const back = ccf.crypto.unwrapKey(wrapped, b(priv), params);
  return { same: hex(back) === hex(key), size: key.byteLength, wrapped: hex(wrapped) };
}
export function unwrapWith(alg, wrappedHex, priv, label) {
  return hex(ccf.crypto.unwrapKey(unhex(wrappedHex), b(priv), { name: alg, label: label === undefined ? undefined : b(label) }));
}
export function aesSizes() { return [128, 192, 256].map((n) => ccf.crypto.generateAesKey(n).byteLength); }
export function badAesSize() { return ccf.crypto.generateAesKey(100); }
export function jwk(fn, pem, kid) { return ccf.crypto[fn](pem, kid); }
export function chain(c, trusted) { return ccf.crypto.isValidX509CertChain(c, trusted); }
export function call(fn, a, b2) { return ccf.crypto[fn](a, b2); }`

func runJS(t *testing.T, p *Program, fn string, args ...any) json.RawMessage {
	t.Helper()
	res, err := run(t, p, Call{Function: fn, Args: args, Limits: Limits{Time: 30 * time.Second}})
	if err != nil {
		t.Fatalf("%s: %v", fn, err)
	}
	return res.Value
}

func jsString(t *testing.T, v json.RawMessage) string {
	t.Helper()
	var s string
	if err := json.Unmarshal(v, &s); err != nil {
		t.Fatalf("%s is not a string", v)
	}
	return s
}

func pkcs8PEM(t *testing.T, k any) string {
	t.Helper()
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}))
}

func spkiPEM(t *testing.T, k any) string {
	t.Helper()
	der, err := x509.MarshalPKIXPublicKey(k)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))
}

// TestCCFCrypto: ccf.crypto's digest, sign, verifySignature, key
// generation, wrapKey/unwrapKey, isValidX509CertChain and PEM to JWK, with
// known answers where they exist (SHA-256 of "abc", RFC 8032's Ed25519
// vector, RFC 5649's AES-KWP vector, deterministic RSA PKCS#1 v1.5
// signatures as the standard library makes them) and cross-checks with
// the standard library otherwise (ECDSA's P1363 encoding); a flipped byte
// fails verification.
func TestCCFCrypto(t *testing.T) {
	p := compile(t, cryptoModule)
	const abc = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
	if got := jsString(t, runJS(t, p, "digest", "abc")); got != abc {
		t.Errorf("SHA-256(abc) = %s", got)
	}
	if got := jsString(t, runJS(t, p, "legacyDigest", "abc")); got != abc {
		t.Errorf("ccf.digest(abc) = %s", got)
	}

	// RFC 8032 §7.1 test 1: Ed25519, empty message.
	seed := unhex(t, "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60")
	edKey := ed25519.NewKeyFromSeed(seed)
	const edSig = "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b"
	if got := jsString(t, runJS(t, p, "sign", "EdDSA", nil, pkcs8PEM(t, edKey), "")); got != edSig {
		t.Errorf("Ed25519 signature %s; want RFC 8032's %s", got, edSig)
	}
	edPub := spkiPEM(t, edKey.Public())
	if string(runJS(t, p, "verify", "EdDSA", nil, edPub, edSig, "")) != "true" {
		t.Error("RFC 8032's signature does not verify")
	}
	flipped := []byte(edSig)
	flipped[10] ^= 1 // a hex digit: one bit of one byte
	if string(runJS(t, p, "verify", "EdDSA", nil, edPub, string(flipped), "")) != "false" {
		t.Error("a flipped byte verifies")
	}
	var jwk map[string]string
	jwk = nil
	json.Unmarshal(runJS(t, p, "jwk", "pubEddsaPemToJwk", edPub, "k1"), &jwk)
	if jwk["kty"] != "OKP" || jwk["crv"] != "Ed25519" || jwk["x"] != "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo" || jwk["kid"] != "k1" {
		t.Errorf("Ed25519 JWK %v", jwk)
	}

	// RSASSA-PKCS1-v1_5 is deterministic: the standard library's signature.
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	d := sha256.Sum256([]byte("data"))
	want, _ := rsa.SignPKCS1v15(nil, rsaKey, crypto.SHA256, d[:])
	if got := jsString(t, runJS(t, p, "sign", "RSASSA-PKCS1-v1_5", "SHA-256", pkcs8PEM(t, rsaKey), "data")); got != hex.EncodeToString(want) {
		t.Errorf("RSA signature differs from the standard library's")
	}
	// ECDSA: a JavaScript signature verifies in Go as r‖s, and Go's in
	// JavaScript.
	ecKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	sigHex := jsString(t, runJS(t, p, "sign", "ECDSA", "SHA-256", pkcs8PEM(t, ecKey), "data"))
	sig := unhex(t, sigHex)
	if len(sig) != 64 || !ecdsa.Verify(&ecKey.PublicKey, d[:], new(big.Int).SetBytes(sig[:32]), new(big.Int).SetBytes(sig[32:])) {
		t.Errorf("the ECDSA signature %s does not verify as r‖s", sigHex)
	}
	r, s, _ := ecdsa.Sign(rand.Reader, ecKey, d[:])
	goSig := append(r.FillBytes(make([]byte, 32)), s.FillBytes(make([]byte, 32))...)
	if string(runJS(t, p, "verify", "ECDSA", "SHA-256", spkiPEM(t, &ecKey.PublicKey), hex.EncodeToString(goSig), "data")) != "true" {
		t.Error("Go's ECDSA signature does not verify")
	}
	jwk = nil
	json.Unmarshal(runJS(t, p, "jwk", "pubPemToJwk", spkiPEM(t, &ecKey.PublicKey), nil), &jwk)
	if jwk["kty"] != "EC" || jwk["crv"] != "P-256" || len(jwk["x"]) != 43 || len(jwk["y"]) != 43 || jwk["kid"] != "" {
		t.Errorf("EC JWK %v", jwk)
	}
	jwk = nil
	json.Unmarshal(runJS(t, p, "jwk", "pemToJwk", pkcs8PEM(t, ecKey), nil), &jwk)
	dBytes, _ := ecKey.Bytes()
	if want := base64.RawURLEncoding.EncodeToString(dBytes); jwk["d"] != want || len(dBytes) != 32 || len(jwk["x"]) != 43 {
		t.Errorf("EC private JWK %v; want d %s", jwk, want)
	}
	jwk = nil
	json.Unmarshal(runJS(t, p, "jwk", "rsaPemToJwk", pkcs8PEM(t, rsaKey), nil), &jwk)
	if jwk["kty"] != "RSA" || jwk["e"] != "AQAB" || jwk["d"] == "" || jwk["qi"] == "" {
		t.Errorf("RSA private JWK %v", jwk)
	}

	// Generated pairs sign and verify; a flipped byte or other data do not.
	for _, c := range []struct {
		alg, hash, make string
		arg             any
	}{
		{"ECDSA", "SHA-256", "generateEcdsaKeyPair", "secp256r1"},
		{"ECDSA", "SHA-384", "generateEcdsaKeyPair", "secp384r1"},
		{"EdDSA", "", "generateEddsaKeyPair", "curve25519"},
		{"RSASSA-PKCS1-v1_5", "SHA-256", "generateRsaKeyPair", 2048},
	} {
		var got struct {
			OK, FlippedSig, OtherData bool
			Priv, Pub                 string
		}
		json.Unmarshal(runJS(t, p, "roundTrip", c.alg, c.hash, c.make, c.arg), &got)
		if !got.OK || got.FlippedSig || got.OtherData {
			t.Errorf("%s %v: verify %v, flipped signature %v, other data %v", c.make, c.arg, got.OK, got.FlippedSig, got.OtherData)
		}
		if !strings.HasPrefix(got.Priv, "-----BEGIN PRIVATE KEY-----") || !strings.HasPrefix(got.Pub, "-----BEGIN PUBLIC KEY-----") {
			t.Errorf("%s: PEM %q / %q", c.make, got.Priv, got.Pub)
		}
	}

	// Wrapping: AES-KWP's known answer; RSA-OAEP and RSA-OAEP-AES-KWP round
	// trips, an OAEP wrap from the standard library unwraps, a wrong label
	// does not.
	const kek, key = "5840df6e29b02af1ab493b705bf16ea1ae8338f4dcc176a8", "c37b7e6492584340bed12207808941155068f738"
	const kwp = "138bdeaa9b8fa7fc61f97742e72248ee5ae6ae5360d1ae6a5f54f373fa543b6a"
	if got := jsString(t, runJS(t, p, "aesKwp", kek, key)); got != kwp {
		t.Errorf("AES-KWP %s", got)
	}
	if got := jsString(t, runJS(t, p, "aesKwpBack", kek, kwp)); got != key {
		t.Errorf("AES-KWP unwrap %s", got)
	}
	if _, err := run(t, p, Call{Function: "aesKwpBack", Args: []any{kek, "0" + kwp[1:]}}); err == nil {
		t.Error("an altered AES-KWP wrap unwrapped")
	}
	pub, priv := spkiPEM(t, &rsaKey.PublicKey), pkcs8PEM(t, rsaKey)
	for _, alg := range []string{"RSA-OAEP", "RSA-OAEP-AES-KWP"} {
		var got struct {
			Same bool
			Size int
		}
		json.Unmarshal(runJS(t, p, "rsaWrap", alg, pub, priv, "a label"), &got)
		if !got.Same || got.Size != 32 {
			t.Errorf("%s round trip: %+v", alg, got)
		}
	}
	goWrapped, _ := rsa.EncryptOAEP(sha256.New(), rand.Reader, &rsaKey.PublicKey, []byte("secret key"), []byte("L"))
	if got := jsString(t, runJS(t, p, "unwrapWith", "RSA-OAEP", hex.EncodeToString(goWrapped), priv, "L")); got != hex.EncodeToString([]byte("secret key")) {
		t.Errorf("RSA-OAEP unwrap of the standard library's wrap: %s", got)
	}
	if _, err := run(t, p, Call{Function: "unwrapWith", Args: []any{"RSA-OAEP", hex.EncodeToString(goWrapped), priv, "M"}}); err == nil {
		t.Error("RSA-OAEP unwrapped with another label")
	}

	if got := string(runJS(t, p, "aesSizes")); got != "[16,24,32]" {
		t.Errorf("AES key sizes %s", got)
	}
	// Refusals throw, naming the function.
	for _, c := range []struct {
		fn   string
		args []any
		want string
	}{
		{"badAesSize", nil, "generateAesKey"},
		{"call", []any{"generateRsaKeyPair", 1024}, "2048"},
		{"call", []any{"generateRsaKeyPair", 8192}, "4096"},
		{"call", []any{"generateRsaKeyPair", 2048, 3}, "exponent"},
		{"call", []any{"generateEcdsaKeyPair", "secp256k1"}, "unsupported curve"},
		{"sign", []any{"ECDSA", "SHA-256", pkcs8PEM(t, rsaKey), "x"}, "EC private key"},
		{"sign", []any{"HMAC", "SHA-256", pkcs8PEM(t, rsaKey), "x"}, "unsupported signing algorithm"},
		{"sign", []any{"ECDSA", nil, pkcs8PEM(t, ecKey), "x"}, "needs a hash"},
		{"verify", []any{"ECDSA", "SHA-256", "not pem", "00", "x"}, "not PEM"},
	} {
		_, err := run(t, p, Call{Function: c.fn, Args: c.args})
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s %v: %v; want an exception naming %q", c.fn, c.args, err, c.want)
		}
	}

	// Certificate chains: a leaf verifies up to its root, not another.
	root, rootKey := makeCA(t, "root")
	other, _ := makeCA(t, "other")
	leaf := makeLeaf(t, root, rootKey)
	if string(runJS(t, p, "chain", leaf, certToPEM(root))) != "true" {
		t.Error("the leaf does not verify up to its root")
	}
	if string(runJS(t, p, "chain", leaf, certToPEM(other))) != "false" {
		t.Error("the leaf verifies up to another root")
	}
	if string(runJS(t, p, "chain", "junk", certToPEM(root))) != "false" {
		t.Error("junk verifies")
	}
	// A certificate's key verifies signatures.
	leafSig := jsString(t, runJS(t, p, "sign", "ECDSA", "SHA-256", pkcs8PEM(t, rootKey), "x"))
	if string(runJS(t, p, "verify", "ECDSA", "SHA-256", certToPEM(root), leafSig, "x")) != "true" {
		t.Error("a certificate's key does not verify")
	}
}

func certToPEM(c *x509.Certificate) string {
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw}))
}

func makeCA(t *testing.T, cn string) (*x509.Certificate, *ecdsa.PrivateKey) {
	t.Helper()
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: cn}, NotBefore: time.Now().Add(-time.Hour),
		NotAfter: time.Now().Add(time.Hour), IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	if err != nil {
		t.Fatal(err)
	}
	c, _ := x509.ParseCertificate(der)
	return c, k
}

func makeLeaf(t *testing.T, ca *x509.Certificate, caKey *ecdsa.PrivateKey) string {
	t.Helper()
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "leaf"}, NotBefore: time.Now().Add(-time.Hour),
		NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &k.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
}
