package client

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	_ "crypto/sha512" // registers SHA-384 and SHA-512 for crypto.Hash.New
	"crypto/tls"
	"crypto/x509"
	"encoding/asn1"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math/big"
	"os"
	"slices"
	"time"
	"unicode/utf8"
)

// Governance message types: the values of CCF's ccf.gov.msg.type protected
// header, one per kind of signed governance request.
const (
	// MsgProposal signs POST /gov/members/proposals:create.
	MsgProposal = "proposal"
	// MsgBallot signs POST .../proposals/{id}/ballots/{memberId}:submit.
	MsgBallot = "ballot"
	// MsgWithdrawal signs POST .../proposals/{id}:withdraw.
	MsgWithdrawal = "withdrawal"
	// MsgAck signs POST /gov/members/state-digests/{memberId}:ack.
	MsgAck = "ack"
	// MsgStateDigest signs POST /gov/members/state-digests/{memberId}:update.
	MsgStateDigest = "state_digest"
	// MsgRecoveryShare signs POST /gov/recovery/members/{memberId}:recover.
	MsgRecoveryShare = "recovery_share"
)

// COSE header labels (RFC 9052 §3.1) and CCF's governance headers
// (src/endpoints/authentication/cose_auth.cpp).
const (
	coseLabelAlg         = 1
	coseLabelKID         = 4
	coseHeaderMsgType    = "ccf.gov.msg.type"
	coseHeaderCreatedAt  = "ccf.gov.msg.created_at"
	coseHeaderProposalID = "ccf.gov.msg.proposal_id"
	coseTagSign1         = 18
)

// MemberSigner signs governance requests as a consortium member: it builds
// CCF's COSE_Sign1 envelopes (RFC 9052 §4.2), with the protected headers
// alg (ES256, ES384 or ES512, by the key's curve), kid (the member id),
// ccf.gov.msg.type, ccf.gov.msg.created_at and, for ballots and
// withdrawals, ccf.gov.msg.proposal_id. It is safe for concurrent use.
type MemberSigner struct {
	key      crypto.Signer
	pub      *ecdsa.PublicKey
	alg      int64
	hash     crypto.Hash
	size     int // bytes of r and of s
	cert     *x509.Certificate
	memberID string
	// now is the clock of created_at; rnd the signing randomness.
	now func() time.Time
	rnd io.Reader
}

// NewMemberSigner returns the signer of the member whose certificate is
// cert, with key, its private key: an ECDSA key on P-256, P-384 or P-521
// (a crypto.Signer, so that a key in a hardware module will do).
func NewMemberSigner(cert *x509.Certificate, key crypto.Signer) (*MemberSigner, error) {
	if cert == nil || key == nil {
		return nil, errors.New("client: a member signer needs a certificate and its private key")
	}
	pub, ok := key.Public().(*ecdsa.PublicKey)
	if !ok {
		return nil, fmt.Errorf("client: governance requests are signed with ECDSA; the member key is %T", key.Public())
	}
	certPub, ok := cert.PublicKey.(*ecdsa.PublicKey)
	if !ok || !certPub.Equal(pub) {
		return nil, errors.New("client: the member key is not the key of the member certificate")
	}
	s := &MemberSigner{key: key, pub: pub, cert: cert, memberID: MemberID(cert.Raw), now: time.Now, rnd: rand.Reader}
	switch pub.Curve {
	case elliptic.P256():
		s.alg, s.hash, s.size = -7, crypto.SHA256, 32
	case elliptic.P384():
		s.alg, s.hash, s.size = -35, crypto.SHA384, 48
	case elliptic.P521():
		s.alg, s.hash, s.size = -36, crypto.SHA512, 66
	default:
		return nil, fmt.Errorf("client: the member key's curve %s is not P-256, P-384 or P-521", pub.Curve.Params().Name)
	}
	return s, nil
}

// LoadMemberSigner returns the signer of the member whose certificate and
// private key are in the PEM file path: ledgerd's DATA/member0.pem, or any
// file CertificateFile takes.
func LoadMemberSigner(path string) (*MemberSigner, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("client: couldn't read the member credentials: %w", err)
	}
	cert, err := tls.X509KeyPair(data, data)
	if err != nil {
		return nil, fmt.Errorf("client: couldn't load the member certificate and key from %s: %w", path, err)
	}
	return memberSignerOf(&cert)
}

// memberSignerOf returns the signer of a TLS certificate and key.
func memberSignerOf(cert *tls.Certificate) (*MemberSigner, error) {
	if cert == nil || len(cert.Certificate) == 0 {
		return nil, errors.New("client: no member certificate")
	}
	leaf := cert.Leaf
	if leaf == nil {
		var err error
		if leaf, err = x509.ParseCertificate(cert.Certificate[0]); err != nil {
			return nil, fmt.Errorf("client: couldn't parse the member certificate: %w", err)
		}
	}
	key, ok := cert.PrivateKey.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("client: the member key (%T) cannot sign", cert.PrivateKey)
	}
	return NewMemberSigner(leaf, key)
}

// MemberID returns CCF's member id of a DER certificate: the lowercase hex
// SHA-256 of its DER encoding.
func MemberID(certDER []byte) string {
	sum := sha256.Sum256(certDER)
	return hex.EncodeToString(sum[:])
}

// MemberID returns the signer's member id, the kid of its envelopes.
func (s *MemberSigner) MemberID() string { return s.memberID }

// Certificate returns the member certificate.
func (s *MemberSigner) Certificate() *x509.Certificate { return s.cert }

// CertificatePEM returns the member certificate, PEM-encoded (as
// set_member takes it).
func (s *MemberSigner) CertificatePEM() string {
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: s.cert.Raw}))
}

// Sign returns a tagged COSE_Sign1 envelope of payload for a governance
// request of msgType (MsgProposal, MsgBallot, ...), created now.
// proposalID is required for MsgBallot and MsgWithdrawal and ignored
// otherwise. The protected header map is encoded deterministically (RFC
// 8949 §4.2.1: shortest forms, keys sorted by their encoding).
func (s *MemberSigner) Sign(msgType, proposalID string, payload []byte) ([]byte, error) {
	return s.signAt(msgType, proposalID, payload, s.now())
}

func (s *MemberSigner) signAt(msgType, proposalID string, payload []byte, at time.Time) ([]byte, error) {
	if msgType == "" {
		return nil, errors.New("client: no governance message type")
	}
	withID := msgType == MsgBallot || msgType == MsgWithdrawal
	if withID && proposalID == "" {
		return nil, fmt.Errorf("client: a %s needs the proposal id", msgType)
	}
	if !utf8.ValidString(msgType) || withID && !utf8.ValidString(proposalID) {
		return nil, errors.New("client: the message type and proposal id must be UTF-8 text")
	}
	if at.Unix() < 0 {
		return nil, errors.New("client: the clock is before 1970")
	}
	headers := []cborPair{
		{cborInt(coseLabelAlg), cborInt(s.alg)},
		{cborInt(coseLabelKID), cborBytes([]byte(s.memberID))},
		{cborText(coseHeaderMsgType), cborText(msgType)},
		{cborText(coseHeaderCreatedAt), cborUint(uint64(at.Unix()))},
	}
	if withID {
		headers = append(headers, cborPair{cborText(coseHeaderProposalID), cborText(proposalID)})
	}
	protected := cborMap(headers)
	if payload == nil {
		payload = []byte{}
	}
	// Sig_structure (RFC 9052 §4.4): ["Signature1", protected, external_aad, payload].
	tbs := cborArray(cborText("Signature1"), cborBytes(protected), cborBytes(nil), cborBytes(payload))
	h := s.hash.New()
	h.Write(tbs)
	der, err := s.key.Sign(s.rnd, h.Sum(nil), s.hash)
	if err != nil {
		return nil, fmt.Errorf("client: couldn't sign the %s: %w", msgType, err)
	}
	sig, err := rawECDSASignature(der, s.size)
	if err != nil {
		return nil, fmt.Errorf("client: couldn't sign the %s: %w", msgType, err)
	}
	msg := cborArray(cborBytes(protected), cborMap(nil), cborBytes(payload), cborBytes(sig))
	return append(cborHead(6, coseTagSign1), msg...), nil
}

// rawECDSASignature converts an ASN.1 ECDSA signature (crypto.Signer's) to
// COSE's r || s, each size bytes (RFC 9053 §2.1).
func rawECDSASignature(der []byte, size int) ([]byte, error) {
	var rs struct{ R, S *big.Int }
	rest, err := asn1.Unmarshal(der, &rs)
	if err != nil || len(rest) != 0 || rs.R == nil || rs.S == nil || rs.R.Sign() <= 0 || rs.S.Sign() <= 0 {
		return nil, errors.New("the key returned a malformed ECDSA signature")
	}
	if rs.R.BitLen() > 8*size || rs.S.BitLen() > 8*size {
		return nil, errors.New("the key returned an ECDSA signature too large for its curve")
	}
	sig := make([]byte, 2*size)
	rs.R.FillBytes(sig[:size])
	rs.S.FillBytes(sig[size:])
	return sig, nil
}

// A small deterministic CBOR encoder (RFC 8949): definite lengths, the
// shortest head for every argument, map keys sorted by their encoded bytes
// (§4.2.1). Each function returns an encoded data item. It is the client's
// own, independent of the node's parser, so that each checks the other.

type cborPair struct{ key, value []byte }

// cborHead encodes a major type and its argument in the shortest form.
func cborHead(major byte, arg uint64) []byte {
	m := major << 5
	switch {
	case arg < 24:
		return []byte{m | byte(arg)}
	case arg <= 0xff:
		return []byte{m | 24, byte(arg)}
	case arg <= 0xffff:
		return []byte{m | 25, byte(arg >> 8), byte(arg)}
	case arg <= 0xffffffff:
		return []byte{m | 26, byte(arg >> 24), byte(arg >> 16), byte(arg >> 8), byte(arg)}
	}
	b := []byte{m | 27, 0, 0, 0, 0, 0, 0, 0, 0}
	for i := range 8 {
		b[8-i] = byte(arg >> (8 * i))
	}
	return b
}

func cborUint(v uint64) []byte { return cborHead(0, v) }

func cborInt(v int64) []byte {
	if v >= 0 {
		return cborHead(0, uint64(v))
	}
	return cborHead(1, uint64(-(v + 1)))
}

func cborBytes(b []byte) []byte { return append(cborHead(2, uint64(len(b))), b...) }

func cborText(s string) []byte { return append(cborHead(3, uint64(len(s))), s...) }

func cborArray(items ...[]byte) []byte {
	b := cborHead(4, uint64(len(items)))
	for _, it := range items {
		b = append(b, it...)
	}
	return b
}

// cborMap encodes a map with its keys in deterministic order. The keys must
// be distinct.
func cborMap(pairs []cborPair) []byte {
	sorted := slices.Clone(pairs)
	slices.SortFunc(sorted, func(a, b cborPair) int { return bytes.Compare(a.key, b.key) })
	b := cborHead(5, uint64(len(sorted)))
	for i, p := range sorted {
		if i > 0 && bytes.Equal(sorted[i-1].key, p.key) {
			panic("client: duplicate CBOR map key")
		}
		b = append(b, p.key...)
		b = append(b, p.value...)
	}
	return b
}
