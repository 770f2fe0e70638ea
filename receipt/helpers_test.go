package receipt_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"math/big"
	"os"
	"testing"
	"time"

	"github.com/ledgerd/ledgerd/receipt"
)

const vectorPath = "../testdata/acl-receipt-2022-05-13.json"

// vector is the real service's receipt test vector.
type vector struct {
	ServiceCertificate string
	Receipt            json.RawMessage
	Expected           struct{ Leaf, Root string }
}

func loadVector(t testing.TB) vector {
	t.Helper()
	data, err := os.ReadFile(vectorPath)
	if err != nil {
		t.Fatal(err)
	}
	var v vector
	if err := json.Unmarshal(data, &v); err != nil {
		t.Fatal(err)
	}
	return v
}

func (v vector) serviceCert(t testing.TB) *x509.Certificate {
	t.Helper()
	c, err := receipt.ParseCertificatePEM([]byte(v.ServiceCertificate))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// receipt returns a fresh parse of the vector's receipt.
func (v vector) receipt(t testing.TB) *receipt.Receipt {
	t.Helper()
	r, err := receipt.Parse(v.Receipt)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// snakeNames maps the camelCase keys to their snake_case spelling.
var snakeNames = map[string]string{
	"leafComponents":         "leaf_components",
	"claimsDigest":           "claims_digest",
	"commitEvidence":         "commit_evidence",
	"writeSetDigest":         "write_set_digest",
	"nodeId":                 "node_id",
	"serviceEndorsements":    "service_endorsements",
	"isSignatureTransaction": "is_signature_transaction",
}

// snakeCase re-spells a camelCase receipt object in snake_case.
func snakeCase(t testing.TB, camel []byte) []byte {
	t.Helper()
	var m any
	if err := json.Unmarshal(camel, &m); err != nil {
		t.Fatal(err)
	}
	out, err := json.Marshal(renameKeys(m))
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func renameKeys(v any) any {
	switch v := v.(type) {
	case map[string]any:
		out := make(map[string]any, len(v))
		for k, x := range v {
			if s, ok := snakeNames[k]; ok {
				k = s
			}
			out[k] = renameKeys(x)
		}
		return out
	case []any:
		for i := range v {
			v[i] = renameKeys(v[i])
		}
	}
	return v
}

// flipHex returns s with the hex digit at i changed to a different value.
func flipHex(s string, i int) string {
	const digits = "0123456789abcdef"
	var d byte
	switch c := s[i]; {
	case '0' <= c && c <= '9':
		d = c - '0'
	case 'a' <= c && c <= 'f':
		d = c - 'a' + 10
	case 'A' <= c && c <= 'F':
		d = c - 'A' + 10
	default:
		panic(fmt.Sprintf("%q is not hex", c))
	}
	return s[:i] + string(digits[(d+1)%16]) + s[i+1:]
}

// flipChar returns s with the character at i changed: hex digits to another
// value, anything else to the next byte.
func flipChar(s string, i int) string {
	if _, err := hex.DecodeString("0" + s[i:i+1]); err == nil {
		return flipHex(s, i)
	}
	return s[:i] + string(s[i]+1) + s[i+1:]
}

// pki builds certificates for synthetic receipts.
type pki struct {
	t testing.TB
}

// selfSigned returns a self-signed service certificate and its key.
func (p pki) selfSigned(cn string, curve elliptic.Curve) (*x509.Certificate, *ecdsa.PrivateKey) {
	key := p.key(curve)
	return p.issue(cn, key, nil, key, nil), key
}

// issued returns a certificate for a new key on curve, signed by parent.
func (p pki) issued(cn string, curve elliptic.Curve, parent *x509.Certificate, parentKey *ecdsa.PrivateKey, edit func(*x509.Certificate)) (*x509.Certificate, *ecdsa.PrivateKey) {
	key := p.key(curve)
	return p.issue(cn, key, parent, parentKey, edit), key
}

func (p pki) key(curve elliptic.Curve) *ecdsa.PrivateKey {
	key, err := ecdsa.GenerateKey(curve, rand.Reader)
	if err != nil {
		p.t.Fatal(err)
	}
	return key
}

func (p pki) issue(cn string, key *ecdsa.PrivateKey, parent *x509.Certificate, parentKey *ecdsa.PrivateKey, edit func(*x509.Certificate)) *x509.Certificate {
	p.t.Helper()
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()),
		Subject:      pkix.Name{CommonName: cn},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
	}
	if edit != nil {
		edit(tmpl)
	}
	if parent == nil {
		parent = tmpl
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, &key.PublicKey, parentKey)
	if err != nil {
		p.t.Fatal(err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		p.t.Fatal(err)
	}
	return c
}

func certPEM(c *x509.Certificate) string {
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw}))
}

// tree is a CCF Merkle tree over leaves: SHA-256(left || right) interior
// nodes, with the left subtree the largest power of two below the size.
type tree [][32]byte

func (tr tree) root() [32]byte {
	if len(tr) == 1 {
		return tr[0]
	}
	k := split(len(tr))
	return hashChildren(tr[:k].root(), tr[k:].root())
}

// proof returns the inclusion proof of leaf m, from the leaf upwards.
func (tr tree) proof(m int) []receipt.ProofElement {
	if len(tr) == 1 {
		return nil
	}
	k := split(len(tr))
	if m < k {
		return append(tr[:k].proof(m), receipt.ProofElement{Right: hexOf(tr[k:].root())})
	}
	return append(tr[k:].proof(m-k), receipt.ProofElement{Left: hexOf(tr[:k].root())})
}

func split(n int) int {
	k := 1
	for k*2 < n {
		k *= 2
	}
	return k
}

func hashChildren(l, r [32]byte) [32]byte {
	return sha256.Sum256(append(l[:], r[:]...))
}

func hexOf(h [32]byte) string { return hex.EncodeToString(h[:]) }

// txLeaf returns the leaf of a synthetic transaction at leaf index i
// (seqno i+1: seqnos start at 1).
func txLeaf(i int) (receipt.LeafComponents, [32]byte) {
	seqno := i + 1
	ws := sha256.Sum256(fmt.Appendf(nil, "write set %d", seqno))
	nonce := sha256.Sum256(fmt.Appendf(nil, "nonce %d", seqno))
	lc := receipt.LeafComponents{
		ClaimsDigest:   hexOf([32]byte{}),
		CommitEvidence: fmt.Sprintf("ce:2.%d:%s", seqno, hexOf(nonce)),
		WriteSetDigest: hexOf(ws),
	}
	return lc, receipt.LeafDigest(ws, lc.CommitEvidence, [32]byte{})
}

// signedReceipt builds a receipt for seqno m of a tree of n leaves, signed by
// the node key.
func signedReceipt(t testing.TB, n, m int, node *x509.Certificate, nodeKey *ecdsa.PrivateKey, endorsements ...*x509.Certificate) *receipt.Receipt {
	t.Helper()
	leaves := make(tree, n)
	var lc receipt.LeafComponents
	for i := range leaves {
		c, leaf := txLeaf(i)
		leaves[i] = leaf
		if i == m {
			lc = c
		}
	}
	r := &receipt.Receipt{
		Cert:           certPEM(node),
		LeafComponents: &lc,
		NodeID:         receipt.NodeIDFromCert(node),
		Proof:          leaves.proof(m),
	}
	for _, e := range endorsements {
		r.ServiceEndorsements = append(r.ServiceEndorsements, certPEM(e))
	}
	r.Signature = sign(t, nodeKey, leaves.root())
	return r
}

func sign(t testing.TB, key *ecdsa.PrivateKey, root [32]byte) string {
	t.Helper()
	sig, err := ecdsa.SignASN1(rand.Reader, key, root[:])
	if err != nil {
		t.Fatal(err)
	}
	return base64.StdEncoding.EncodeToString(sig)
}
