package ledger

import (
	"crypto/cipher"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"slices"
	"sync"

	"github.com/ledgerd/ledgerd/receipt"
)

// Entry format constants (ccf-format.md §1.3–1.4).
const (
	// EntryFormatV1 is the only entry header version (entry_format_v1).
	EntryFormatV1 = 1
	// FlagForceChunkAfter (FORCE_LEDGER_CHUNK_AFTER) ends the chunk after
	// this entry; the node sets it on the signature transaction that ends a
	// chunk (§1.6).
	FlagForceChunkAfter = 0x01
	// FlagForceChunkBefore (FORCE_LEDGER_CHUNK_BEFORE) ends the current chunk
	// before this entry.
	FlagForceChunkBefore = 0x02
	// EntryHeaderSize is the size of the entry header: version, flags and a
	// 48-bit size of everything after the header.
	EntryHeaderSize = 8
	// GCMTagSize is the size of the AES-GCM tag that starts the GCM header.
	GCMTagSize = 16
	// GCMIVSize is the size of the AES-GCM IV: seqno (uint64) || view (uint32).
	GCMIVSize = 12
	// GCMHeaderSize is the size of the GCM header: tag || IV.
	GCMHeaderSize = GCMTagSize + GCMIVSize
	// MaxEntrySize is the largest entry, header included, that this package
	// writes or reads from a chunk file. CCF allows 2^48-1 bytes of body;
	// ledgerd bounds it to keep a forged size from exhausting memory.
	MaxEntrySize = 64 << 20
	// MaxView is the largest view that fits in the IV (the top bit of the
	// view word is the snapshot flag, §1.4).
	MaxView = 0x7FFFFFFF

	knownFlags   = FlagForceChunkAfter | FlagForceChunkBefore
	tagOffset    = EntryHeaderSize        // tag[16]
	ivOffset     = tagOffset + GCMTagSize // iv[12]
	pubLenOffset = ivOffset + GCMIVSize   // uint64 public domain size
	pubOffset    = pubLenOffset + 8       // public domain
	minEntrySize = pubOffset              // header, GCM header, public size
	snapshotBit  = 0x80                   // top bit of IV byte 11
	ivViewOffset = ivOffset + 8           // uint32 view in the IV
	viewMask     = MaxView                // view = uint32 & 0x7FFFFFFF
	minPubDomain = pubMCVOffset + 8       // type 4 header fields
	seqnoLimit   = math.MaxInt64          // version is an int64 in the public domain
	noVersion    = 1 << 63                // NoVersion (INT64_MIN) as a uint64: read_version when reads are not recorded
	poolMaxBytes = 1 << 20                // largest buffer kept in authPool
)

// The header of a type 4 (WriteSetWithCommitEvidenceAndClaims) public
// domain, at fixed offsets in the domain (ccf-format.md §1.5): written by
// appendPublicHeader, read by parsePublicDomain (every type) and, without
// parsing the maps, by Entry.HeaderDigests.
const (
	pubTypeOffset    = 0                             // uint8 entry type
	pubVersionOffset = pubTypeOffset + 1             // int64 version (the seqno)
	pubClaimsOffset  = pubVersionOffset + 8          // claims digest
	pubCEOffset      = pubClaimsOffset + sha256.Size // commit evidence digest
	pubMCVOffset     = pubCEOffset + sha256.Size     // uint64 max_conflict_version
)

// Entry is one serialised CCF ledger entry, parsed without copying: every
// slice aliases Raw (ccf-format.md §1.3–1.4).
type Entry struct {
	Raw        []byte           // the whole entry, header included
	Version    uint8            // entry header version (EntryFormatV1)
	Flags      uint8            // FlagForceChunkAfter, FlagForceChunkBefore
	Tag        [GCMTagSize]byte // AES-GCM tag over Public (AAD) and Ciphertext
	IV         [GCMIVSize]byte  // seqno (uint64 LE) || view (uint32 LE)
	Seqno      uint64           // from the IV
	View       uint64           // from the IV, snapshot bit masked off
	Public     []byte           // the serialised public domain (plaintext)
	Ciphertext []byte           // the encrypted private domain (may be empty)
}

// entryInfo is what the ledger needs from an entry; inspectEntry fills it
// without allocating.
type entryInfo struct {
	flags    uint8
	seqno    uint64
	view     uint64
	snapshot bool
	pubLen   int
}

// inspectEntry validates the framing of raw (§1.3–1.4): version 1, the size
// field equal to len(raw)-8, room for the GCM header and public size, and a
// public domain within the entry.
func inspectEntry(raw []byte) (entryInfo, error) {
	if len(raw) < minEntrySize {
		return entryInfo{}, malformed("%d bytes, shorter than the %d-byte minimum", len(raw), minEntrySize)
	}
	if raw[0] != EntryFormatV1 {
		return entryInfo{}, malformed("entry format version %d, want %d", raw[0], EntryFormatV1)
	}
	if size := headerSize(raw); size != uint64(len(raw)-EntryHeaderSize) {
		return entryInfo{}, malformed("header size %d, but %d bytes follow the header", size, len(raw)-EntryHeaderSize)
	}
	pubLen := binary.LittleEndian.Uint64(raw[pubLenOffset:])
	if pubLen > uint64(len(raw)-pubOffset) {
		return entryInfo{}, malformed("public domain size %d exceeds the %d bytes left", pubLen, len(raw)-pubOffset)
	}
	word := binary.LittleEndian.Uint32(raw[ivViewOffset:])
	return entryInfo{
		flags:    raw[1],
		seqno:    binary.LittleEndian.Uint64(raw[ivOffset:]),
		view:     uint64(word & viewMask),
		snapshot: raw[ivOffset+GCMIVSize-1]&snapshotBit != 0,
		pubLen:   int(pubLen),
	}, nil
}

// headerSize returns the 48-bit size field of an entry header (§1.3). b must
// hold at least EntryHeaderSize bytes.
func headerSize(b []byte) uint64 {
	return binary.LittleEndian.Uint64(b[:8]) >> 16
}

// putHeader writes an entry header (version 1, flags, 48-bit size) into b.
func putHeader(b []byte, flags uint8, size uint64) {
	binary.LittleEndian.PutUint64(b[:8], size<<16|uint64(flags)<<8|EntryFormatV1)
}

// AppendEntry serialises tx as one CCF ledger entry and appends it to dst
// (ccf-format.md §1.3–1.5): the 8-byte entry header (version 1, tx.Flags, the
// size of the rest), the GCM header (tag || IV), the uint64 size of the public
// domain, the public domain, and the private domain encrypted in place.
//
// The entry type is always WriteSetWithCommitEvidenceAndClaims (4);
// max_conflict_version is 0; each map has read_version = NoVersion (INT64_MIN)
// and no reads. Public maps (IsPublicMap) go to the public domain, the others
// to the private one, each domain ordered by map name; maps without writes or
// removes are left out, as CCF serialises only maps that changed. Keys,
// values and removes are written in the order given.
//
// aead is AES-256-GCM keyed with the ledger secret for tx.Seqno. The IV is
// seqno (uint64 LE) || view (uint32 LE), the AAD is the public domain, and the
// tag is computed even when there is no private data, so it authenticates the
// public domain too. The output is deterministic: the same tx and key give the
// same bytes on every node.
func AppendEntry(dst []byte, tx *Tx, aead cipher.AEAD) ([]byte, error) {
	if err := checkAEAD(aead); err != nil {
		return dst, err
	}
	if err := tx.check(); err != nil {
		return dst, err
	}
	var orderBuf [8]int
	order, nPublic, err := mapOrder(tx.Maps, orderBuf[:0])
	if err != nil {
		return dst, err
	}
	pubLen, privLen := minPubDomain, 0
	for k, i := range order {
		if k < nPublic {
			pubLen += mapSize(&tx.Maps[i])
		} else {
			privLen += mapSize(&tx.Maps[i])
		}
	}
	total := minEntrySize + pubLen + privLen
	if total > MaxEntrySize || total < 0 {
		return dst, fmt.Errorf("ledger: couldn't serialise seqno %d: entry of %d bytes exceeds MaxEntrySize", tx.Seqno, total)
	}

	base := len(dst)
	dst = slices.Grow(dst, total+GCMTagSize)[:base+pubOffset]
	e := dst[base:]
	putHeader(e, tx.Flags, uint64(total-EntryHeaderSize))
	iv := e[ivOffset : ivOffset+GCMIVSize]
	binary.LittleEndian.PutUint64(iv, tx.Seqno)
	binary.LittleEndian.PutUint32(iv[8:], uint32(tx.View))
	binary.LittleEndian.PutUint64(e[pubLenOffset:], uint64(pubLen))

	dst = appendPublicHeader(dst, tx)
	for _, i := range order[:nPublic] {
		dst = appendMap(dst, &tx.Maps[i])
	}
	privStart := len(dst)
	for _, i := range order[nPublic:] {
		dst = appendMap(dst, &tx.Maps[i])
	}

	if len(dst)-base != total {
		return dst[:base], fmt.Errorf("ledger: couldn't serialise seqno %d: wrote %d bytes, sized %d", tx.Seqno, len(dst)-base, total)
	}
	// Encrypt the private domain in place; the capacity reserved above holds
	// the tag that Seal appends, which then moves to the GCM header.
	public, plain := dst[base+pubOffset:privStart], dst[privStart:]
	sealed := aead.Seal(plain[:0], iv, plain, public)
	if len(plain) > 0 && &sealed[0] != &plain[0] {
		copy(plain, sealed) // an AEAD that did not seal in place
	}
	copy(e[tagOffset:ivOffset], sealed[len(plain):])
	return dst, nil
}

// ParseEntry parses one serialised entry (ccf-format.md §1.3–1.4). It checks
// the framing only: version 1, a size field equal to len(raw)-8, and a public
// domain size within bounds. The returned Entry aliases raw.
//
// ParseEntry is small enough to be inlined, so that where the Entry does
// not outlive its caller it is not allocated on the heap.
func ParseEntry(raw []byte) (*Entry, error) {
	e := new(Entry)
	if err := e.parse(raw); err != nil {
		return nil, err
	}
	return e, nil
}

func (e *Entry) parse(raw []byte) error {
	info, err := inspectEntry(raw)
	if err != nil {
		return err
	}
	*e = Entry{
		Raw:        raw,
		Version:    raw[0],
		Flags:      info.flags,
		Seqno:      info.seqno,
		View:       info.view,
		Public:     raw[pubOffset : pubOffset+info.pubLen : pubOffset+info.pubLen],
		Ciphertext: raw[pubOffset+info.pubLen:],
	}
	copy(e.Tag[:], raw[tagOffset:])
	copy(e.IV[:], raw[ivOffset:])
	return nil
}

// IsSnapshot reports whether the IV carries the snapshot flag (the top bit of
// its last byte, §1.4), set only on snapshot entries.
func (e *Entry) IsSnapshot() bool { return e.IV[GCMIVSize-1]&snapshotBit != 0 }

// PublicDomain parses the public domain (§1.5). The slices of the returned
// Domain alias e.Raw. Snapshot entries (type 1) are not supported.
func (e *Entry) PublicDomain() (*Domain, error) {
	return parsePublicDomain(e.Public)
}

// Decrypt authenticates the entry with aead (AES-256-GCM with the ledger
// secret valid at e.Seqno; AAD = the public domain, §1.4), decrypts the
// private domain and parses its maps. The returned slices alias a fresh
// buffer. An entry without private data yields no maps, but is still
// authenticated.
func (e *Entry) Decrypt(aead cipher.AEAD) ([]MapWrites, error) {
	if err := checkAEAD(aead); err != nil {
		return nil, err
	}
	buf := make([]byte, len(e.Ciphertext)+openSpace)
	plain, err := e.open(aead, buf)
	if err != nil {
		return nil, err
	}
	return parseMaps(plain, "private domain")
}

// authPool holds the scratch buffers of Authenticate.
var authPool = sync.Pool{New: func() any { return new([]byte) }}

// Authenticate checks the entry's GCM tag over the public domain and the
// ciphertext (§1.4) without parsing the private domain. It fails for any
// altered byte of the tag, IV, public domain or ciphertext.
func (e *Entry) Authenticate(aead cipher.AEAD) error {
	if err := checkAEAD(aead); err != nil {
		return err
	}
	n := len(e.Ciphertext) + openSpace
	bp := authPool.Get().(*[]byte)
	if cap(*bp) < n {
		*bp = make([]byte, n)
	}
	buf := (*bp)[:n]
	plain, err := e.open(aead, buf)
	clear(plain) // do not leave private data in a pooled buffer
	if cap(buf) <= poolMaxBytes {
		authPool.Put(bp)
	}
	return err
}

// WithPrivate authenticates and decrypts the entry as Decrypt does, into a
// pooled buffer, and calls f with its private maps, which alias the buffer
// and are valid only during the call (the buffer is cleared after it). It
// is Authenticate for a caller that also reads the private domain (the
// audit recomputing claims digests) without allocating a buffer per entry.
func (e *Entry) WithPrivate(aead cipher.AEAD, f func([]MapWrites) error) error {
	if err := checkAEAD(aead); err != nil {
		return err
	}
	n := len(e.Ciphertext) + openSpace
	bp := authPool.Get().(*[]byte)
	if cap(*bp) < n {
		*bp = make([]byte, n)
	}
	buf := (*bp)[:n]
	defer func() {
		clear(buf) // do not leave private data in a pooled buffer
		if cap(buf) <= poolMaxBytes {
			authPool.Put(bp)
		}
	}()
	plain, err := e.open(aead, buf)
	if err != nil {
		return err
	}
	maps, err := parseMaps(plain, "private domain")
	if err != nil {
		return err
	}
	return f(maps)
}

// openSpace is what open needs in its buffer beyond the ciphertext.
const openSpace = GCMTagSize + GCMIVSize

// open decrypts e into buf (len(Ciphertext)+openSpace bytes) in place:
// ciphertext || tag, which Open reads, then the IV. The IV is passed from
// buf rather than from e.IV so that e does not escape (escape analysis
// assumes an interface method keeps all it is given): an Entry that does
// not outlive its caller stays on the caller's stack.
func (e *Entry) open(aead cipher.AEAD, buf []byte) ([]byte, error) {
	n := copy(buf, e.Ciphertext)
	n += copy(buf[n:], e.Tag[:])
	iv := buf[n : n+GCMIVSize]
	copy(iv, e.IV[:])
	plain, err := aead.Open(buf[:0], iv, buf[:n], e.Public)
	if err != nil {
		return nil, fmt.Errorf("%w at seqno %d: %w", ErrAuthentication, e.Seqno, err)
	}
	return plain, nil
}

// checkAEAD rejects a cipher that cannot be CCF's AES-GCM (12-byte IV, 16-byte tag).
func checkAEAD(aead cipher.AEAD) error {
	if aead == nil {
		return errors.New("ledger: no AEAD (the ledger secret's AES-256-GCM is required)")
	}
	if aead.NonceSize() != GCMIVSize || aead.Overhead() != GCMTagSize {
		return fmt.Errorf("ledger: AEAD has a %d-byte nonce and %d-byte tag, want AES-GCM's %d and %d",
			aead.NonceSize(), aead.Overhead(), GCMIVSize, GCMTagSize)
	}
	return nil
}

// HeaderDigests returns the claims and commit evidence digests of an entry
// of type WriteSetWithCommitEvidenceAndClaims, from the fixed header of its
// public domain, without parsing its maps.
func (e *Entry) HeaderDigests() (claims, commitEvidence [32]byte, err error) {
	p := e.Public
	if len(p) < minPubDomain || EntryType(p[pubTypeOffset]) != WriteSetWithCommitEvidenceAndClaims {
		return claims, commitEvidence, malformed("seqno %d: not a %v entry", e.Seqno, WriteSetWithCommitEvidenceAndClaims)
	}
	copy(claims[:], p[pubClaimsOffset:])
	copy(commitEvidence[:], p[pubCEOffset:])
	return claims, commitEvidence, nil
}

// HasPublicMaps reports whether the public domain of an entry of type
// WriteSetWithCommitEvidenceAndClaims holds any map, without parsing it:
// whether it is longer than its fixed header.
func (e *Entry) HasPublicMaps() bool { return len(e.Public) > minPubDomain }

// Leaf returns the entry's Merkle leaf (ccf-format.md §2):
// receipt.LeafFromDigests of its write set digest and the digests of its
// public header.
func (e *Entry) Leaf() ([32]byte, error) {
	claims, ce, err := e.HeaderDigests()
	if err != nil {
		return [32]byte{}, err
	}
	return receipt.LeafFromDigests(WriteSetDigest(e.Raw), ce, claims), nil
}

// WriteSetDigest returns the write set digest of an entry: SHA-256 of the
// whole serialised entry including its 8-byte header (ccf-format.md §2). It is
// the first component of the entry's Merkle leaf.
func WriteSetDigest(raw []byte) [32]byte { return sha256.Sum256(raw) }

// EntrySeqnoView returns the seqno and view of an entry by reading its IV
// only (§1.4). It checks the header version and that the IV is present.
func EntrySeqnoView(raw []byte) (seqno, view uint64, err error) {
	if len(raw) < ivOffset+GCMIVSize {
		return 0, 0, malformed("%d bytes, too short for a GCM header", len(raw))
	}
	if raw[0] != EntryFormatV1 {
		return 0, 0, malformed("entry format version %d, want %d", raw[0], EntryFormatV1)
	}
	seqno = binary.LittleEndian.Uint64(raw[ivOffset:])
	view = uint64(binary.LittleEndian.Uint32(raw[ivViewOffset:]) & viewMask)
	return seqno, view, nil
}
