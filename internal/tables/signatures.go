package tables

import (
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"sync"

	"github.com/ledgerd/ledgerd/internal/ledger"
)

// Map names of CCF's internal and governance tables that ledgerd writes.
const (
	// SignaturesMap holds the signature transaction's PrimarySignature
	// (CCF src/service/tables/signatures.h).
	SignaturesMap = "public:ccf.internal.signatures"
	// ServiceInfoMap holds {cert, status} of the service.
	ServiceInfoMap = "public:ccf.gov.service.info"
	// NodesInfoMap holds each node's info, keyed by node id.
	NodesInfoMap = "public:ccf.gov.nodes.info"
	// NodeCertsMap holds each node's service-endorsed certificate, keyed by node id.
	NodeCertsMap = "public:ccf.gov.nodes.endorsed_certificates"
	// EntriesMap is the private map of user ledger entries: key = collection
	// id, value = contents. Private maps are encrypted with the ledger secret.
	EntriesMap = "ledgerd.entries"
	// EntryClaimsMap is the private map of the entries' application claim
	// keys: key = collection id, value = the entry's 32-byte secret key,
	// written in the same transaction as the entry (EntriesMap). The
	// transaction's claims digest is the LedgerEntryV1 claims digest of the
	// collection, the contents and this key (receipt.LedgerEntryClaimsDigest),
	// so its receipt carries the entry's application claim.
	EntryClaimsMap = "ledgerd.entries.claims"
	// EntryTagsMap is the private map of the entries' tags (API
	// 2024-12-09-preview): key = collection id, value = the entry's tags
	// joined with ',' (a tag holds no comma), written in the same
	// transaction as the entry when it has tags.
	EntryTagsMap = "ledgerd.entries.tags"
	// TagIndexMap is not written to the ledger: it is the node's index of
	// the tags each collection's entries carry, kept in its state (and so in
	// its checkpoints and snapshots) and derived from EntryTagsMap alone:
	// key = collection id, NUL, tag; value = empty.
	TagIndexMap = "ledgerd.index.tags"
	// ConfChangeMap is the public map in which a Raft configuration change
	// is recorded in the ledger (ledgerd's, not CCF's): key = SingletonKey,
	// value = one byte of raftpb.EntryType followed by the Raft entry data
	// (written and read by package consensus).
	ConfChangeMap = "public:ledgerd.internal.raft.conf_change"
)

// SingletonKey is the key CCF uses for single-value tables (ServiceValue):
// eight zero bytes.
var SingletonKey = make([]byte, 8)

// PrimarySignature is the JSON value of a signature transaction
// (ccf-format §3): the node's ECDSA signature over the Merkle root of all
// transactions before it, used directly as the digest.
type PrimarySignature struct {
	Sig         string `json:"sig"`
	Node        string `json:"node"`
	HashedNonce string `json:"hashed_nonce"`
	Seqno       uint64 `json:"seqno"`
	View        uint64 `json:"view"`
	CommitSeqno uint64 `json:"commit_seqno"`
	CommitView  uint64 `json:"commit_view"`
	Root        string `json:"root"`
	Cert        string `json:"cert"`
}

var zeroNonce = hex.EncodeToString(make([]byte, 32))

// SignRoot builds the signature transaction's write set for the signature
// at seqno, view over root (the Merkle root of leaves [0..seqno-1]).
func SignRoot(key *ecdsa.PrivateKey, nodeID string, certPEM []byte, view, seqno uint64, root [32]byte) ([]ledger.MapWrites, error) {
	sig, err := ecdsa.SignASN1(rand.Reader, key, root[:])
	if err != nil {
		return nil, fmt.Errorf("couldn't sign root: %w", err)
	}
	ps := PrimarySignature{
		Sig:         base64.StdEncoding.EncodeToString(sig),
		Node:        nodeID,
		HashedNonce: zeroNonce,
		Seqno:       seqno,
		View:        view,
		Root:        hex.EncodeToString(root[:]),
		Cert:        string(certPEM),
	}
	v, err := marshalSignature(&ps)
	if err != nil {
		return nil, err
	}
	return []ledger.MapWrites{{Name: SignaturesMap, Writes: []ledger.KV{{Key: SingletonKey, Value: v}}}}, nil
}

// ParseSignature extracts the PrimarySignature of a signature transaction's
// public domain, or returns ok=false if the entry is not a signature.
func ParseSignature(d *ledger.Domain) (ps *PrimarySignature, ok bool, err error) {
	for _, m := range d.Maps {
		if m.Name != SignaturesMap {
			continue
		}
		if len(m.Writes) != 1 {
			return nil, true, errors.New("signature table must hold exactly one write")
		}
		if ps, err = unmarshalSignature(m.Writes[0].Value); err != nil {
			return nil, true, fmt.Errorf("couldn't parse signature: %w", err)
		}
		return ps, true, nil
	}
	return nil, false, nil
}

// VerifySignature checks ps against root and the service certificate: the
// embedded node certificate must be endorsed by service, its public key hash
// must be ps.Node, and the signature must verify over root.
func VerifySignature(ps *PrimarySignature, root [32]byte, service *x509.Certificate) error {
	return NewVerifier(service).Verify(ps, root)
}

// CheckRoot checks that ps signs root (lowercase hex, as SignRoot writes
// it), the first check of Verify; it does not check the signature itself.
func CheckRoot(ps *PrimarySignature, root [32]byte) error {
	var rootHex [64]byte
	hex.Encode(rootHex[:], root[:])
	if string(rootHex[:]) != ps.Root {
		return fmt.Errorf("signed root %s differs from the recomputed root %x", ps.Root, root)
	}
	return nil
}

// Verifier verifies signature transactions against one service
// certificate, remembering node certificates it has already found endorsed
// (checking an endorsement by a P-384 service key costs about a millisecond;
// a node signs every few milliseconds) with their node ids. It is safe for
// concurrent use.
type Verifier struct {
	service *x509.Certificate
	mu      sync.Mutex
	nodes   map[string]endorsedNode // endorsed certificate PEM -> its key and id
}

// endorsedNode is a node certificate found endorsed: its key and node id.
type endorsedNode struct {
	pub *ecdsa.PublicKey
	id  string // nodeIDOfKey(pub)
}

// NewVerifier returns a Verifier for the given service certificate.
func NewVerifier(service *x509.Certificate) *Verifier {
	return &Verifier{service: service, nodes: map[string]endorsedNode{}}
}

// Verify checks ps against root, as VerifySignature does.
func (v *Verifier) Verify(ps *PrimarySignature, root [32]byte) error {
	if err := CheckRoot(ps, root); err != nil {
		return err
	}
	pub, err := v.nodeKey(ps)
	if err != nil {
		return err
	}
	sig, err := base64.StdEncoding.DecodeString(ps.Sig)
	if err != nil {
		return fmt.Errorf("signature is not base64: %w", err)
	}
	if !ecdsa.VerifyASN1(pub, root[:], sig) {
		return errors.New("ECDSA signature over the root does not verify")
	}
	return nil
}

// nodeKey returns the key of ps's node certificate once it is known to be
// endorsed by the service and to match ps.Node.
func (v *Verifier) nodeKey(ps *PrimarySignature) (*ecdsa.PublicKey, error) {
	v.mu.Lock()
	node, ok := v.nodes[ps.Cert]
	v.mu.Unlock()
	if !ok {
		pub, err := endorsedKey(ps.Cert, v.service)
		if err != nil {
			return nil, err
		}
		node = endorsedNode{pub: pub, id: nodeIDOfKey(pub)}
		v.mu.Lock()
		if len(v.nodes) > 1024 {
			clear(v.nodes)
		}
		v.nodes[ps.Cert] = node
		v.mu.Unlock()
	}
	if node.id != ps.Node {
		return nil, fmt.Errorf("node id %s does not match the certificate's key (%s)", ps.Node, node.id)
	}
	return node.pub, nil
}

func endorsedKey(certPEM string, service *x509.Certificate) (*ecdsa.PublicKey, error) {
	block, _ := pem.Decode([]byte(certPEM))
	if block == nil {
		return nil, errors.New("signature's node certificate is not PEM")
	}
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("couldn't parse the node certificate: %w", err)
	}
	if err := service.CheckSignature(cert.SignatureAlgorithm, cert.RawTBSCertificate, cert.Signature); err != nil {
		return nil, fmt.Errorf("node certificate is not endorsed by the service certificate: %w", err)
	}
	pub, ok := cert.PublicKey.(*ecdsa.PublicKey)
	if !ok {
		return nil, errors.New("node certificate key is not ECDSA")
	}
	return pub, nil
}

func nodeIDOfKey(pub *ecdsa.PublicKey) string {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return ""
	}
	sum := sha256.Sum256(der)
	return hex.EncodeToString(sum[:])
}

// NodeIDOf is CCF's node id of a node certificate: the lowercase hex SHA-256
// of its DER SubjectPublicKeyInfo.
func NodeIDOf(cert *x509.Certificate) string {
	sum := sha256.Sum256(cert.RawSubjectPublicKeyInfo)
	return hex.EncodeToString(sum[:])
}
