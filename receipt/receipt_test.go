package receipt_test

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"os"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/ledgerd/ledgerd/receipt"
)

func TestVectorVerifies(t *testing.T) {
	v := loadVector(t)
	r := v.receipt(t)
	leaf, err := r.ComputeLeaf()
	if err != nil {
		t.Fatal(err)
	}
	if got := hexOf(leaf); got != v.Expected.Leaf {
		t.Errorf("leaf = %s, want %s", got, v.Expected.Leaf)
	}
	root, err := r.ComputeRoot()
	if err != nil {
		t.Fatal(err)
	}
	if got := hexOf(root); got != v.Expected.Root {
		t.Errorf("root = %s, want %s", got, v.Expected.Root)
	}
	if err := r.Verify(v.serviceCert(t)); err != nil {
		t.Fatalf("Verify: %v", err)
	}
	view, seqno, err := r.TransactionID()
	if err != nil || view != 2 || seqno != 35 {
		t.Errorf("TransactionID() = %d, %d, %v; want 2, 35, nil", view, seqno, err)
	}
}

func TestVerifyPEM(t *testing.T) {
	v := loadVector(t)
	if err := receipt.VerifyPEM(v.Receipt, []byte(v.ServiceCertificate)); err != nil {
		t.Fatalf("VerifyPEM: %v", err)
	}
	if err := receipt.VerifyPEM(v.Receipt, []byte("not PEM")); err == nil {
		t.Fatal("VerifyPEM with a bad service certificate succeeded")
	}
	whole, err := os.ReadFile(vectorPath) // the test-vector file shape
	if err != nil {
		t.Fatal(err)
	}
	if err := receipt.VerifyPEM(whole, []byte(v.ServiceCertificate)); err != nil {
		t.Fatalf("VerifyPEM of the test-vector file: %v", err)
	}
}

func TestLeafDigest(t *testing.T) {
	v := loadVector(t)
	lc := v.receipt(t).LeafComponents
	ws, _ := hex.DecodeString(lc.WriteSetDigest)
	claims, _ := hex.DecodeString(lc.ClaimsDigest)
	got := receipt.LeafDigest([32]byte(ws), lc.CommitEvidence, [32]byte(claims))
	if hexOf(got) != v.Expected.Leaf {
		t.Errorf("LeafDigest = %x, want %s", got, v.Expected.Leaf)
	}
}

// TestTamperedVectorFails flips every hex digit of every digest and proof
// hash, every character of the commit evidence, and every byte of the
// signature: each must make Verify fail.
func TestTamperedVectorFails(t *testing.T) {
	v := loadVector(t)
	service := v.serviceCert(t)
	check := func(t *testing.T, what string, r *receipt.Receipt) {
		t.Helper()
		err := r.Verify(service)
		// Only the commit evidence has characters whose change breaks its
		// syntax ("ce:", ".", ":"); everything else must break the signature.
		if errors.Is(err, receipt.ErrMalformed) && strings.HasPrefix(what, "commitEvidence") {
			return
		}
		if !errors.Is(err, receipt.ErrBadSignature) {
			t.Errorf("%s: Verify = %v, want ErrBadSignature", what, err)
		}
	}
	fields := map[string]func(*receipt.Receipt) *string{
		"writeSetDigest": func(r *receipt.Receipt) *string { return &r.LeafComponents.WriteSetDigest },
		"claimsDigest":   func(r *receipt.Receipt) *string { return &r.LeafComponents.ClaimsDigest },
		"commitEvidence": func(r *receipt.Receipt) *string { return &r.LeafComponents.CommitEvidence },
	}
	for i := range v.receipt(t).Proof {
		fields[fmt.Sprintf("proof%d", i)] = func(r *receipt.Receipt) *string { return &r.Proof[i].Left }
	}
	for name, field := range fields {
		t.Run(name, func(t *testing.T) {
			for i := range *field(v.receipt(t)) {
				r := v.receipt(t)
				f := field(r)
				*f = flipChar(*f, i)
				check(t, fmt.Sprintf("%s at %d", name, i), r)
			}
		})
	}
	t.Run("signature", func(t *testing.T) {
		sig, err := base64.StdEncoding.DecodeString(v.receipt(t).Signature)
		if err != nil {
			t.Fatal(err)
		}
		for i := range sig {
			for _, mask := range []byte{0x01, 0x80, 0xff} {
				bad := bytes.Clone(sig)
				bad[i] ^= mask
				r := v.receipt(t)
				r.Signature = base64.StdEncoding.EncodeToString(bad)
				if err := r.Verify(service); !errors.Is(err, receipt.ErrBadSignature) {
					t.Errorf("signature byte %d ^ %#x: Verify = %v, want ErrBadSignature", i, mask, err)
				}
			}
		}
	})
	t.Run("proof shape", func(t *testing.T) {
		for i := range v.receipt(t).Proof {
			r := v.receipt(t)
			r.Proof[i] = receipt.ProofElement{Right: r.Proof[i].Left}
			check(t, "proof direction", r)
		}
		r := v.receipt(t)
		r.Proof = r.Proof[:len(r.Proof)-1]
		check(t, "proof truncated", r)
		r = v.receipt(t)
		r.Proof = append(r.Proof, r.Proof[0])
		check(t, "proof extended", r)
	})
}

func TestUppercaseDigestsVerify(t *testing.T) {
	v := loadVector(t)
	r := v.receipt(t)
	r.LeafComponents.WriteSetDigest = strings.ToUpper(r.LeafComponents.WriteSetDigest)
	r.Proof[0].Left = strings.ToUpper(r.Proof[0].Left)
	r.NodeID = strings.ToUpper(r.NodeID)
	if err := r.Verify(v.serviceCert(t)); err != nil {
		t.Fatalf("Verify: %v", err)
	}
}

func TestNodeIDMismatch(t *testing.T) {
	v := loadVector(t)
	r := v.receipt(t)
	r.NodeID = flipHex(r.NodeID, 0)
	if err := r.Verify(v.serviceCert(t)); !errors.Is(err, receipt.ErrNodeIDMismatch) {
		t.Fatalf("Verify = %v, want ErrNodeIDMismatch", err)
	}
	r.NodeID = "" // optional
	if err := r.Verify(v.serviceCert(t)); err != nil {
		t.Fatalf("Verify without node id: %v", err)
	}
}

func TestStatedRoot(t *testing.T) {
	v := loadVector(t)
	r := v.receipt(t)
	r.Root = v.Expected.Root
	if err := r.Verify(v.serviceCert(t)); err != nil {
		t.Fatalf("Verify with the right root: %v", err)
	}
	r.Root = flipHex(v.Expected.Root, 10)
	if err := r.Verify(v.serviceCert(t)); !errors.Is(err, receipt.ErrRootMismatch) {
		t.Fatalf("Verify = %v, want ErrRootMismatch", err)
	}
}

func TestSnakeCase(t *testing.T) {
	v := loadVector(t)
	snake := snakeCase(t, v.Receipt)
	if !bytes.Contains(snake, []byte(`"leaf_components"`)) {
		t.Fatalf("not snake_case: %s", snake)
	}
	r, err := receipt.Parse(snake)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(r, v.receipt(t)) {
		t.Errorf("snake_case parse = %+v, want %+v", r, v.receipt(t))
	}
	if err := r.Verify(v.serviceCert(t)); err != nil {
		t.Fatalf("Verify: %v", err)
	}
}

func TestParseResponseBody(t *testing.T) {
	v := loadVector(t)
	snake := string(snakeCase(t, v.Receipt))
	for _, tc := range []struct {
		name, body string
		want       error
	}{
		{"ready", `{"receipt":` + snake + `,"state":"Ready","transactionId":"2.35"}`, nil},
		{"camel", `{"receipt":` + string(v.Receipt) + `,"state":"Ready","transactionId":"2.35"}`, nil},
		{"no transactionId", `{"receipt":` + snake + `,"state":"Ready"}`, nil},
		{"other transaction", `{"receipt":` + snake + `,"state":"Ready","transactionId":"2.36"}`, receipt.ErrMalformed},
		{"bad transactionId", `{"receipt":` + snake + `,"state":"Ready","transactionId":"2"}`, receipt.ErrMalformed},
		{"loading", `{"receipt":null,"state":"Loading","transactionId":""}`, receipt.ErrNotReady},
		{"loading 0.1-preview", `{"receipt":{"leaf":"","node_id":"","proof":[],"root":"","signature":""},"state":"Loading","transactionId":""}`, receipt.ErrNotReady},
		{"ready without receipt", `{"receipt":null,"state":"Ready","transactionId":"2.35"}`, receipt.ErrMalformed},
		{"state not a string", `{"receipt":` + snake + `,"state":1}`, receipt.ErrMalformed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, err := receipt.Parse([]byte(tc.body))
			if tc.want != nil {
				if !errors.Is(err, tc.want) {
					t.Fatalf("Parse = %v, want %v", err, tc.want)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if err := r.Verify(v.serviceCert(t)); err != nil {
				t.Fatalf("Verify: %v", err)
			}
		})
	}
}

func TestWrongServiceCert(t *testing.T) {
	v := loadVector(t)
	other, _ := pki{t}.selfSigned("CCF Network", elliptic.P256())
	r := v.receipt(t)
	if err := r.Verify(other); !errors.Is(err, receipt.ErrNotEndorsed) {
		t.Fatalf("Verify with another service = %v, want ErrNotEndorsed", err)
	}
	node, err := receipt.ParseCertificatePEM([]byte(r.Cert))
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Verify(node); !errors.Is(err, receipt.ErrNotEndorsed) {
		t.Fatalf("Verify with the node cert as service = %v, want ErrNotEndorsed", err)
	}
	if err := r.Verify(nil); !errors.Is(err, receipt.ErrNotEndorsed) {
		t.Fatalf("Verify(nil) = %v, want ErrNotEndorsed", err)
	}
}

// notCA makes a certificate that a TLS verifier would reject as an issuer:
// no basic constraints, and expired.
func notCA(c *x509.Certificate) {
	c.NotBefore = time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC)
	c.NotAfter = time.Date(2021, 1, 1, 0, 0, 0, 0, time.UTC)
}

func TestServiceEndorsements(t *testing.T) {
	p := pki{t}
	service, serviceKey := p.selfSigned("CCF Network", elliptic.P384())
	older, olderKey := p.issued("CCF Network (previous)", elliptic.P256(), service, serviceKey, notCA)
	oldest, oldestKey := p.issued("CCF Network (first)", elliptic.P384(), older, olderKey, notCA)
	node, nodeKey := p.issued("CCF Node", elliptic.P256(), oldest, oldestKey, notCA)

	r := signedReceipt(t, 7, 4, node, nodeKey, oldest, older)
	if err := r.Verify(service); err != nil {
		t.Fatalf("Verify through [oldest, older]: %v", err)
	}
	for name, endorsements := range map[string][]*x509.Certificate{
		"none":         nil,
		"wrong order":  {older, oldest},
		"missing link": {oldest},
	} {
		bad := *r
		bad.ServiceEndorsements = nil
		for _, e := range endorsements {
			bad.ServiceEndorsements = append(bad.ServiceEndorsements, certPEM(e))
		}
		if err := bad.Verify(service); !errors.Is(err, receipt.ErrNotEndorsed) {
			t.Errorf("%s: Verify = %v, want ErrNotEndorsed", name, err)
		}
	}
	bad := *r
	bad.ServiceEndorsements = []string{"not PEM"}
	if err := bad.Verify(service); !errors.Is(err, receipt.ErrMalformed) {
		t.Errorf("bad endorsement PEM: Verify = %v, want ErrMalformed", err)
	}
}

func TestP384Node(t *testing.T) {
	p := pki{t}
	service, serviceKey := p.selfSigned("CCF Network", elliptic.P384())
	node, nodeKey := p.issued("CCF Node", elliptic.P384(), service, serviceKey, nil)
	for _, size := range []struct{ n, m int }{{1, 0}, {2, 1}, {7, 0}, {7, 6}, {33, 17}} {
		r := signedReceipt(t, size.n, size.m, node, nodeKey)
		if err := r.Verify(service); err != nil {
			t.Fatalf("tree of %d, leaf %d: Verify: %v", size.n, size.m, err)
		}
	}
	r := signedReceipt(t, 7, 3, node, nodeKey)
	other, _ := p.issued("CCF Node", elliptic.P384(), service, serviceKey, nil)
	r.Cert = certPEM(other) // endorsed, but not the signer
	r.NodeID = ""
	if err := r.Verify(service); !errors.Is(err, receipt.ErrBadSignature) {
		t.Fatalf("Verify with another node's cert = %v, want ErrBadSignature", err)
	}
}

func TestUnsupportedNodeKey(t *testing.T) {
	p := pki{t}
	service, serviceKey := p.selfSigned("CCF Network", elliptic.P256())
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "CCF Node"}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, service, &rsaKey.PublicKey, serviceKey)
	if err != nil {
		t.Fatal(err)
	}
	node, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	r := signedReceipt(t, 3, 1, service, serviceKey)
	r.Cert = certPEM(node)
	r.NodeID = ""
	if err := r.Verify(service); !errors.Is(err, receipt.ErrMalformed) {
		t.Fatalf("Verify with an RSA node key = %v, want ErrMalformed", err)
	}
	p521, p521Key := p.issued("CCF Node", elliptic.P521(), service, serviceKey, nil)
	r = signedReceipt(t, 3, 1, p521, p521Key)
	if err := r.Verify(service); !errors.Is(err, receipt.ErrMalformed) {
		t.Fatalf("Verify with a P-521 node key = %v, want ErrMalformed", err)
	}
}

func TestSignatureTransaction(t *testing.T) {
	p := pki{t}
	service, serviceKey := p.selfSigned("CCF Network", elliptic.P384())
	node, nodeKey := p.issued("CCF Node", elliptic.P256(), service, serviceKey, nil)
	_, root := txLeaf(9) // any root
	body := `{"receipt":{"cert":` + quote(certPEM(node)) + `,"is_signature_transaction":true,` +
		`"leaf":"` + hexOf(root) + `","node_id":"` + receipt.NodeIDFromCert(node) + `","proof":[],` +
		`"service_endorsements":[],"signature":"` + sign(t, nodeKey, root) + `"},"state":"Ready","transactionId":"2.10"}`
	r, err := receipt.Parse([]byte(body))
	if err != nil {
		t.Fatal(err)
	}
	if !r.IsSignatureTransaction || r.Leaf != hexOf(root) {
		t.Fatalf("parsed %+v", r)
	}
	if err := r.Verify(service); err != nil {
		t.Fatalf("Verify: %v", err)
	}
	if _, _, err := r.TransactionID(); !errors.Is(err, receipt.ErrMalformed) {
		t.Errorf("TransactionID of a signature transaction = %v, want ErrMalformed", err)
	}
	r.Leaf = flipHex(r.Leaf, 5)
	if err := r.Verify(service); !errors.Is(err, receipt.ErrBadSignature) {
		t.Errorf("Verify with a flipped leaf = %v, want ErrBadSignature", err)
	}
}

func TestRoundTrip(t *testing.T) {
	v := loadVector(t)
	p := pki{t}
	service, serviceKey := p.selfSigned("CCF Network", elliptic.P384())
	node, nodeKey := p.issued("CCF Node", elliptic.P256(), service, serviceKey, nil)
	synthetic := signedReceipt(t, 5, 2, node, nodeKey, node)
	synthetic.Root = hexOf([32]byte{1})
	for name, r := range map[string]*receipt.Receipt{"vector": v.receipt(t), "synthetic": synthetic} {
		data, err := json.Marshal(r)
		if err != nil {
			t.Fatal(err)
		}
		got, err := receipt.Parse(data)
		if err != nil {
			t.Fatalf("%s: Parse(Marshal) = %v\n%s", name, err, data)
		}
		if !reflect.DeepEqual(got, r) {
			t.Errorf("%s: round trip = %+v, want %+v", name, got, r)
		}
	}
	data, err := json.Marshal(v.receipt(t))
	if err != nil {
		t.Fatal(err)
	}
	for _, key := range []string{`"cert":`, `"leafComponents":{"claimsDigest":`, `"commitEvidence":`, `"writeSetDigest":`, `"nodeId":`, `"proof":[{"left":`, `"serviceEndorsements":[]`, `"signature":`} {
		if !bytes.Contains(data, []byte(key)) {
			t.Errorf("Marshal output lacks %s:\n%s", key, data)
		}
	}
	for _, key := range []string{`"root"`, `"leaf"`, `"isSignatureTransaction"`, `"right"`, `_`} {
		if bytes.Contains(data, []byte(key)) {
			t.Errorf("Marshal output has %s:\n%s", key, data)
		}
	}
}

func TestParseMalformed(t *testing.T) {
	v := loadVector(t)
	camel := func(edit func(m map[string]any)) string {
		var m map[string]any
		if err := json.Unmarshal(v.Receipt, &m); err != nil {
			t.Fatal(err)
		}
		edit(m)
		b, err := json.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	lc := func(key string, val any) string {
		return camel(func(m map[string]any) { m["leafComponents"].(map[string]any)[key] = val })
	}
	set := func(key string, val any) string { return camel(func(m map[string]any) { m[key] = val }) }
	del := func(key string) string { return camel(func(m map[string]any) { delete(m, key) }) }
	ws := v.receipt(t).LeafComponents.WriteSetDigest
	ce := v.receipt(t).LeafComponents.CommitEvidence
	nonce := ce[len(ce)-64:]
	proof := func(n int) []any {
		out := make([]any, n)
		for i := range out {
			out[i] = map[string]any{"left": ws}
		}
		return out
	}
	cases := map[string]string{
		"empty":                   ``,
		"not JSON":                `{"cert":`,
		"array":                   `[]`,
		"null":                    `null`,
		"string":                  `"receipt"`,
		"trailing data":           string(v.Receipt) + `{}`,
		"too big":                 `{"cert":"` + strings.Repeat("A", receipt.MaxSize) + `"}`,
		"digest 63":               lc("writeSetDigest", ws[:63]),
		"digest 65":               lc("writeSetDigest", ws+"0"),
		"digest not hex":          lc("claimsDigest", "g"+ws[1:]),
		"digest empty":            lc("claimsDigest", ""),
		"digest number":           lc("claimsDigest", 0),
		"ce no prefix":            lc("commitEvidence", "2.35:"+nonce),
		"ce no seqno":             lc("commitEvidence", "ce:2:"+nonce),
		"ce negative view":        lc("commitEvidence", "ce:-2.35:"+nonce),
		"ce view overflow":        lc("commitEvidence", "ce:18446744073709551616.35:"+nonce),
		"ce short nonce":          lc("commitEvidence", "ce:2.35:"+nonce[1:]),
		"ce no nonce":             lc("commitEvidence", "ce:2.35"),
		"ce extra part":           lc("commitEvidence", "ce:2.35:"+nonce+":00"),
		"leaf components null":    set("leafComponents", nil),
		"leaf and components":     set("leaf", ws),
		"sigtx with components":   set("isSignatureTransaction", true),
		"sigtx not bool":          set("isSignatureTransaction", "true"),
		"proof both":              set("proof", []any{map[string]any{"left": ws, "right": ws}}),
		"proof neither":           set("proof", []any{map[string]any{}}),
		"proof empty left":        set("proof", []any{map[string]any{"left": ""}}),
		"proof short":             set("proof", []any{map[string]any{"right": ws[:10]}}),
		"proof not a list":        set("proof", map[string]any{"left": ws}),
		"proof element not obj":   set("proof", []any{ws}),
		"proof too long":          set("proof", proof(receipt.MaxProofLength+1)),
		"signature missing":       del("signature"),
		"signature empty":         set("signature", ""),
		"signature not base64":    set("signature", "MEYC!!"),
		"node id not hex":         set("nodeId", "xyz"),
		"root short":              set("root", "00"),
		"cert not string":         set("cert", 1),
		"endorsements not list":   set("serviceEndorsements", "x"),
		"camel and snake":         set("node_id", v.receipt(t).NodeID),
		"leaf components and lc_": set("leaf_components", map[string]any{}),
	}
	for name, input := range cases {
		t.Run(name, func(t *testing.T) {
			r, err := receipt.Parse([]byte(input))
			if !errors.Is(err, receipt.ErrMalformed) {
				t.Fatalf("Parse = %+v, %v; want ErrMalformed", r, err)
			}
			var direct receipt.Receipt
			if input != "null" && json.Unmarshal([]byte(input), &direct) == nil {
				t.Errorf("json.Unmarshal accepted %s", name)
			}
		})
	}
	if _, err := receipt.Parse([]byte(proofOf(receipt.MaxProofLength, v, t))); err != nil {
		t.Errorf("Parse with %d proof elements: %v", receipt.MaxProofLength, err)
	}
}

// proofOf returns the vector receipt with n proof elements.
func proofOf(n int, v vector, t *testing.T) string {
	r := v.receipt(t)
	r.Proof = make([]receipt.ProofElement, n)
	for i := range r.Proof {
		r.Proof[i] = receipt.ProofElement{Right: r.LeafComponents.WriteSetDigest}
	}
	b, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestVerifyChecksHandBuiltReceipts(t *testing.T) {
	v := loadVector(t)
	service := v.serviceCert(t)
	for name, edit := range map[string]func(r *receipt.Receipt){
		"no cert":           func(r *receipt.Receipt) { r.Cert = "" },
		"bad cert":          func(r *receipt.Receipt) { r.Cert = "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n" },
		"no leaf":           func(r *receipt.Receipt) { r.LeafComponents = nil },
		"proof both":        func(r *receipt.Receipt) { r.Proof[0].Right = r.Proof[0].Left },
		"proof neither":     func(r *receipt.Receipt) { r.Proof[0].Left = "" },
		"bad root":          func(r *receipt.Receipt) { r.Root = "zz" },
		"bad signature b64": func(r *receipt.Receipt) { r.Signature = "%%%" },
	} {
		r := v.receipt(t)
		edit(r)
		if err := r.Verify(service); !errors.Is(err, receipt.ErrMalformed) {
			t.Errorf("%s: Verify = %v, want ErrMalformed", name, err)
		}
	}
}

func TestParseCertificatePEM(t *testing.T) {
	v := loadVector(t)
	withJunk := "subject=CN = CCF Network\n" + v.ServiceCertificate + "\x00"
	keyFirst := "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n" + v.ServiceCertificate
	for _, in := range []string{v.ServiceCertificate, withJunk, keyFirst} {
		c, err := receipt.ParseCertificatePEM([]byte(in))
		if err != nil {
			t.Fatalf("ParseCertificatePEM(%q): %v", in[:20], err)
		}
		if c.Subject.CommonName != "CCF Network" {
			t.Errorf("subject = %v", c.Subject)
		}
	}
	for _, in := range []string{"", "junk", "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"} {
		if _, err := receipt.ParseCertificatePEM([]byte(in)); err == nil {
			t.Errorf("ParseCertificatePEM(%q) succeeded", in)
		}
	}
}

func TestNodeIDFromCert(t *testing.T) {
	v := loadVector(t)
	r := v.receipt(t)
	node, err := receipt.ParseCertificatePEM([]byte(r.Cert))
	if err != nil {
		t.Fatal(err)
	}
	if got := receipt.NodeIDFromCert(node); got != r.NodeID {
		t.Errorf("NodeIDFromCert = %s, want %s", got, r.NodeID)
	}
	key := node.PublicKey.(*ecdsa.PublicKey)
	if key.Curve != elliptic.P256() {
		t.Errorf("vector node key on %s", key.Curve.Params().Name)
	}
}

func quote(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}
