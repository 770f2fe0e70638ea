package cose

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/sha512"
	"errors"
	"fmt"
	"hash"
	"io"
	"math"
	"math/big"
)

// COSE algorithm identifiers (RFC 9053 §2.1) that ledgerd accepts: ECDSA
// with the curve's matching hash, as CCF's is_ecdsa_alg.
const (
	AlgES256 int64 = -7  // ECDSA P-256 with SHA-256
	AlgES384 int64 = -35 // ECDSA P-384 with SHA-384
	AlgES512 int64 = -36 // ECDSA P-521 with SHA-512
)

// Header labels. alg and kid are COSE's (RFC 9052 §3.1); the string labels
// are CCF's (src/endpoints/authentication/cose_auth.cpp).
const (
	labelAlg  = 1
	labelCrit = 2
	labelKID  = 4

	HeaderMsgType    = "ccf.gov.msg.type"
	HeaderCreatedAt  = "ccf.gov.msg.created_at"
	HeaderProposalID = "ccf.gov.msg.proposal_id"
)

// tagSign1 is the CBOR tag of a COSE_Sign1 message (RFC 9052 §2).
const tagSign1 = 18

// Errors, each wrapped with detail; callers match them with errors.Is and
// answer 400 (ErrMalformed, ErrMissingHeader, ErrUnsupportedAlg) or 401
// (ErrSignature, ErrKeyMismatch), as CCF's MemberCOSESign1AuthnPolicy.
var (
	// ErrMalformed: the bytes are not a COSE_Sign1 message ledgerd accepts.
	ErrMalformed = errors.New("cose: malformed COSE_Sign1")
	// ErrMissingHeader: a required protected header is absent.
	ErrMissingHeader = errors.New("cose: missing protected header")
	// ErrUnsupportedAlg: alg is not ES256, ES384 or ES512.
	ErrUnsupportedAlg = errors.New("cose: unsupported algorithm")
	// ErrKeyMismatch: the key is not an ECDSA key on alg's curve.
	ErrKeyMismatch = errors.New("cose: key does not match algorithm")
	// ErrSignature: the signature does not verify.
	ErrSignature = errors.New("cose: signature does not verify")
)

// Sign1 is a parsed COSE_Sign1 governance envelope (RFC 9052 §4.2):
//
//	COSE_Sign1 = [protected: bstr .cbor header_map, unprotected: header_map,
//	              payload: bstr / nil, signature: bstr]
//
// with CCF's governance protected headers decoded. Byte fields alias the
// parsed input.
type Sign1 struct {
	// Tagged reports whether the message carried tag 18. CCF's governance
	// endpoints require it (cose_auth.cpp: tag_at(18)); see CheckGovernance.
	Tagged bool
	// Protected is the protected header bucket as received: the exact bytes
	// the signature covers.
	Protected []byte
	// Payload is the signed content; nil if the message's payload was nil
	// (detached), which Verify refuses.
	Payload []byte
	// Signature is the COSE ECDSA signature, r || s, each the curve's size.
	Signature []byte

	// Alg is the protected alg header (label 1).
	Alg int64
	// KID is the protected kid header (label 4): for a member, its member id,
	// the hex SHA-256 of its DER certificate, as ASCII bytes.
	KID []byte
	// MsgType is ccf.gov.msg.type ("" if absent).
	MsgType string
	// HasMsgType reports whether ccf.gov.msg.type was present.
	HasMsgType bool
	// ProposalID is ccf.gov.msg.proposal_id ("" if absent).
	ProposalID string
	// HasProposalID reports whether ccf.gov.msg.proposal_id was present.
	HasProposalID bool
	// CreatedAt is ccf.gov.msg.created_at, seconds since the Unix epoch.
	// CCF requires it on every governance message.
	CreatedAt uint64

	// msg is the decoded COSE_Sign1 array, for Encode.
	msg item
}

// Parse decodes a tagged (18) or untagged COSE_Sign1 message and its
// protected governance headers. It refuses anything else: trailing bytes,
// indefinite lengths, non-shortest encodings, duplicate map keys, a
// protected bucket that is not a map, an unsupported alg, a missing alg,
// kid or created_at, a known header of the wrong type, a label present in
// both buckets, and crit (ledgerd understands no critical extension). It
// does not verify the signature: see Verify.
func Parse(b []byte) (*Sign1, error) {
	d := decoder{b: b}
	m := &Sign1{}
	if len(b) > 0 && b[0]>>5 == 6 {
		_, _, tag, err := d.head()
		if err != nil {
			return nil, fmt.Errorf("%w: %w", ErrMalformed, err)
		}
		if tag != tagSign1 {
			return nil, fmt.Errorf("%w: tag %d, want %d (COSE_Sign1)", ErrMalformed, tag, tagSign1)
		}
		m.Tagged = true
	}
	msg, err := d.item(0)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	if d.off != len(b) {
		return nil, fmt.Errorf("%w: %d trailing bytes", ErrMalformed, len(b)-d.off)
	}
	if msg.kind != kArray || len(msg.elems) != 4 {
		return nil, fmt.Errorf("%w: not an array of 4 items", ErrMalformed)
	}
	prot, unprot, payload, sig := msg.elems[0], msg.elems[1], msg.elems[2], msg.elems[3]
	if prot.kind != kBytes {
		return nil, fmt.Errorf("%w: protected header is not a byte string", ErrMalformed)
	}
	if unprot.kind != kMap {
		return nil, fmt.Errorf("%w: unprotected header is not a map", ErrMalformed)
	}
	switch payload.kind {
	case kBytes:
		m.Payload = payload.s
		if m.Payload == nil {
			m.Payload = []byte{}
		}
	case kNull:
	default:
		return nil, fmt.Errorf("%w: payload is neither a byte string nor nil", ErrMalformed)
	}
	if sig.kind != kBytes {
		return nil, fmt.Errorf("%w: signature is not a byte string", ErrMalformed)
	}
	m.msg, m.Protected, m.Signature = msg, prot.s, sig.s
	if err := m.decodeProtected(unprot); err != nil {
		return nil, err
	}
	return m, nil
}

// decodeProtected decodes the protected bucket into m's header fields.
func (m *Sign1) decodeProtected(unprot item) error {
	ph, err := decodeOne(m.Protected)
	if err != nil {
		return fmt.Errorf("%w: protected header: %w", ErrMalformed, err)
	}
	if ph.kind != kMap {
		return fmt.Errorf("%w: protected header is not a map", ErrMalformed)
	}
	headers := make(map[string]item, len(ph.elems)/2)
	for i := 0; i < len(ph.elems); i += 2 {
		headers[ph.elems[i].labelKey()] = ph.elems[i+1]
	}
	for i := 0; i < len(unprot.elems); i += 2 {
		if _, both := headers[unprot.elems[i].labelKey()]; both {
			return fmt.Errorf("%w: a label is in both the protected and the unprotected header", ErrMalformed)
		}
	}
	if _, ok := headers[intLabel(labelCrit)]; ok {
		return fmt.Errorf("%w: crit header not supported", ErrMalformed)
	}

	alg, ok := headers[intLabel(labelAlg)]
	if !ok {
		return fmt.Errorf("%w: alg (1)", ErrMissingHeader)
	}
	if m.Alg, ok = alg.intValue(); !ok {
		return fmt.Errorf("%w: alg (1) is not an integer", ErrMalformed)
	}
	if _, _, err := algParams(m.Alg); err != nil {
		return err
	}
	kid, ok := headers[intLabel(labelKID)]
	if !ok {
		return fmt.Errorf("%w: kid (4)", ErrMissingHeader)
	}
	if kid.kind != kBytes {
		return fmt.Errorf("%w: kid (4) is not a byte string", ErrMalformed)
	}
	m.KID = kid.s
	created, ok := headers[textLabel(HeaderCreatedAt)]
	if !ok {
		return fmt.Errorf("%w: %s", ErrMissingHeader, HeaderCreatedAt)
	}
	// CCF reads created_at as a signed 64-bit integer and requires it to be
	// non-negative.
	if created.kind != kUint || created.u > math.MaxInt64 {
		return fmt.Errorf("%w: %s is not a non-negative 64-bit integer", ErrMalformed, HeaderCreatedAt)
	}
	m.CreatedAt = created.u
	if m.MsgType, m.HasMsgType, err = optionalText(headers, HeaderMsgType); err != nil {
		return err
	}
	if m.ProposalID, m.HasProposalID, err = optionalText(headers, HeaderProposalID); err != nil {
		return err
	}
	return nil
}

func optionalText(headers map[string]item, label string) (string, bool, error) {
	v, ok := headers[textLabel(label)]
	if !ok {
		return "", false, nil
	}
	if v.kind != kText {
		return "", false, fmt.Errorf("%w: %s is not a text string", ErrMalformed, label)
	}
	return string(v.s), true, nil
}

// Encode returns the message's bytes, re-encoded from its decoded items. For
// a message Parse accepted it equals the parsed input (the decoder accepts
// only preferred serialization).
func (m *Sign1) Encode() []byte {
	var b []byte
	if m.Tagged {
		b = appendHead(b, 6, tagSign1)
	}
	return appendItem(b, m.msg)
}

// algParams returns the curve and hash of a supported alg.
func algParams(alg int64) (elliptic.Curve, crypto.Hash, error) {
	switch alg {
	case AlgES256:
		return elliptic.P256(), crypto.SHA256, nil
	case AlgES384:
		return elliptic.P384(), crypto.SHA384, nil
	case AlgES512:
		return elliptic.P521(), crypto.SHA512, nil
	}
	return nil, 0, fmt.Errorf("%w: %d (want ES256 -7, ES384 -35 or ES512 -36)", ErrUnsupportedAlg, alg)
}

// AlgForKey returns the COSE alg for an ECDSA key's curve, as CCF's
// default_algorithm_for_key (python/src/ccf/cose.py).
func AlgForKey(pub *ecdsa.PublicKey) (int64, error) {
	if pub == nil {
		return 0, fmt.Errorf("%w: no key", ErrKeyMismatch)
	}
	switch pub.Curve {
	case elliptic.P256():
		return AlgES256, nil
	case elliptic.P384():
		return AlgES384, nil
	case elliptic.P521():
		return AlgES512, nil
	}
	return 0, fmt.Errorf("%w: unsupported curve", ErrKeyMismatch)
}

// sigStructure returns the encoded Sig_structure for a COSE_Sign1 (RFC 9052
// §4.4): ["Signature1", body_protected, external_aad (empty), payload].
func sigStructure(protected, payload []byte) []byte {
	b := make([]byte, 0, 32+len(protected)+len(payload))
	b = appendHead(b, 4, 4)
	b = appendText(b, "Signature1")
	b = appendBytes(b, protected)
	b = appendBytes(b, nil)
	return appendBytes(b, payload)
}

func digest(h crypto.Hash, msg []byte) []byte {
	var hh hash.Hash
	switch h {
	case crypto.SHA256:
		hh = sha256.New()
	case crypto.SHA384:
		hh = sha512.New384()
	default:
		hh = sha512.New()
	}
	hh.Write(msg)
	return hh.Sum(nil)
}

// Verify checks the signature with pub, which must be an *ecdsa.PublicKey on
// the curve of the message's alg (RFC 9053 §2.1: the signature is r || s,
// each the curve's byte size, not DER). A detached (nil) payload is refused.
func (m *Sign1) Verify(pub crypto.PublicKey) error {
	key, ok := pub.(*ecdsa.PublicKey)
	if !ok || key == nil || key.Curve == nil {
		return fmt.Errorf("%w: %T is not an ECDSA public key", ErrKeyMismatch, pub)
	}
	curve, h, err := algParams(m.Alg)
	if err != nil {
		return err
	}
	if key.Curve != curve {
		return fmt.Errorf("%w: alg %d needs %s, the key is on %s", ErrKeyMismatch, m.Alg, curve.Params().Name, key.Curve.Params().Name)
	}
	if m.Payload == nil {
		return fmt.Errorf("%w: detached payload", ErrMalformed)
	}
	size := (curve.Params().BitSize + 7) / 8
	if len(m.Signature) != 2*size {
		return fmt.Errorf("%w: signature is %d bytes, want %d", ErrSignature, len(m.Signature), 2*size)
	}
	r := new(big.Int).SetBytes(m.Signature[:size])
	s := new(big.Int).SetBytes(m.Signature[size:])
	if !ecdsa.Verify(key, digest(h, sigStructure(m.Protected, m.Payload)), r, s) {
		return ErrSignature
	}
	return nil
}

// Headers are the protected governance headers Sign writes.
type Headers struct {
	// KID is the signer's member id (hex SHA-256 of its DER certificate);
	// see MemberID.
	KID string
	// MsgType is ccf.gov.msg.type, one of the MsgType constants.
	MsgType string
	// ProposalID is ccf.gov.msg.proposal_id, written if not empty; required
	// for the types RequiresProposalID names.
	ProposalID string
	// CreatedAt is ccf.gov.msg.created_at, seconds since the Unix epoch.
	CreatedAt uint64
}

// Sign builds a tagged COSE_Sign1 governance envelope of payload, signed
// with key. The protected header map holds, in this order, alg (from the
// key's curve), kid, ccf.gov.msg.type, ccf.gov.msg.proposal_id (if set) and
// ccf.gov.msg.created_at, as CCF's ccf_cose_sign1 writes them; the
// unprotected header is an empty map. rnd is the signing randomness (nil:
// crypto/rand).
func Sign(key *ecdsa.PrivateKey, h Headers, payload []byte, rnd io.Reader) ([]byte, error) {
	if key == nil {
		return nil, fmt.Errorf("%w: no key", ErrKeyMismatch)
	}
	alg, err := AlgForKey(&key.PublicKey)
	if err != nil {
		return nil, err
	}
	if h.KID == "" || h.MsgType == "" {
		return nil, fmt.Errorf("%w: kid and msg type are required", ErrMissingHeader)
	}
	if RequiresProposalID(h.MsgType) && h.ProposalID == "" {
		return nil, fmt.Errorf("%w: %s requires %s", ErrMissingHeader, h.MsgType, HeaderProposalID)
	}
	if h.CreatedAt > math.MaxInt64 {
		return nil, fmt.Errorf("%w: created_at out of range", ErrMalformed)
	}
	if rnd == nil {
		rnd = rand.Reader
	}
	n := uint64(4)
	if h.ProposalID != "" {
		n++
	}
	p := appendHead(nil, 5, n)
	p = appendInt(p, labelAlg)
	p = appendInt(p, alg)
	p = appendInt(p, labelKID)
	p = appendBytes(p, []byte(h.KID))
	p = appendText(p, HeaderMsgType)
	p = appendText(p, h.MsgType)
	if h.ProposalID != "" {
		p = appendText(p, HeaderProposalID)
		p = appendText(p, h.ProposalID)
	}
	p = appendText(p, HeaderCreatedAt)
	p = appendHead(p, 0, h.CreatedAt)

	curve, hash, _ := algParams(alg)
	r, s, err := ecdsa.Sign(rnd, key, digest(hash, sigStructure(p, payload)))
	if err != nil {
		return nil, fmt.Errorf("cose: couldn't sign: %w", err)
	}
	size := (curve.Params().BitSize + 7) / 8
	sig := make([]byte, 2*size)
	r.FillBytes(sig[:size])
	s.FillBytes(sig[size:])

	b := appendHead(nil, 6, tagSign1)
	b = appendHead(b, 4, 4)
	b = appendBytes(b, p)
	b = appendHead(b, 5, 0)
	b = appendBytes(b, payload)
	return appendBytes(b, sig), nil
}
