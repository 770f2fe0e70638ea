package ledger

import (
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"strings"
)

// EntryType is the first byte of the public domain (ccf-format.md §1.5).
type EntryType uint8

// Entry types. ledgerd writes only WriteSetWithCommitEvidenceAndClaims; the
// others are parsed for old ledgers.
const (
	WriteSet                            EntryType = 0
	Snapshot                            EntryType = 1
	WriteSetWithClaims                  EntryType = 2
	WriteSetWithCommitEvidence          EntryType = 3
	WriteSetWithCommitEvidenceAndClaims EntryType = 4
)

// String returns CCF's name of the entry type.
func (t EntryType) String() string {
	switch t {
	case WriteSet:
		return "WriteSet"
	case Snapshot:
		return "Snapshot"
	case WriteSetWithClaims:
		return "WriteSetWithClaims"
	case WriteSetWithCommitEvidence:
		return "WriteSetWithCommitEvidence"
	case WriteSetWithCommitEvidenceAndClaims:
		return "WriteSetWithCommitEvidenceAndClaims"
	}
	return fmt.Sprintf("EntryType(%d)", uint8(t))
}

// HasClaims reports whether the public domain carries a claims digest (types 2 and 4).
func (t EntryType) HasClaims() bool {
	return t == WriteSetWithClaims || t == WriteSetWithCommitEvidenceAndClaims
}

// HasCommitEvidence reports whether the public domain carries a commit
// evidence digest (types 3 and 4).
func (t EntryType) HasCommitEvidence() bool {
	return t == WriteSetWithCommitEvidence || t == WriteSetWithCommitEvidenceAndClaims
}

// KV is one write: a key and its new value, as the map's serialiser produced them.
type KV struct{ Key, Value []byte }

// MapWrites is the final write set of one map in a transaction (§1.5): the
// keys written and the keys removed. Reads are never recorded in the ledger.
type MapWrites struct {
	Name    string   // e.g. "public:ccf.internal.signatures" or "records"
	Writes  []KV     // in serialisation order
	Removes [][]byte // in serialisation order
}

// IsPublicMap reports whether a map belongs to the public (plaintext) domain:
// its name starts with "public:" (§1.5). All other maps are private.
func IsPublicMap(name string) bool { return strings.HasPrefix(name, "public:") }

// Tx is a transaction to serialise with AppendEntry.
type Tx struct {
	View  uint64 // Raft term; at most MaxView
	Seqno uint64 // Raft index; 1 or more
	Flags uint8  // FlagForceChunkAfter and/or FlagForceChunkBefore
	// ClaimsDigest is the application's claims digest (32 zero bytes if none).
	ClaimsDigest [32]byte
	// CommitEvidenceDigest is SHA-256 of the commit evidence string.
	CommitEvidenceDigest [32]byte
	// Maps holds public and private maps together; AppendEntry splits them
	// with IsPublicMap and orders each domain by map name. Names must be unique.
	Maps []MapWrites
}

// check validates the fields of tx that go into the entry framing.
func (tx *Tx) check() error {
	switch {
	case tx == nil:
		return errors.New("ledger: couldn't serialise: nil Tx")
	case tx.Seqno == 0 || tx.Seqno > seqnoLimit:
		return fmt.Errorf("ledger: couldn't serialise: seqno %d outside [1, 2^63-1]", tx.Seqno)
	case tx.View > MaxView:
		return fmt.Errorf("ledger: couldn't serialise seqno %d: view %d exceeds %d", tx.Seqno, tx.View, MaxView)
	case tx.Flags&^knownFlags != 0:
		return fmt.Errorf("ledger: couldn't serialise seqno %d: unknown flags %#x", tx.Seqno, tx.Flags)
	}
	return nil
}

// Domain is a parsed public domain (§1.5). Type, Version and the digests come
// from its header; Maps are the public maps. Slices alias the entry.
type Domain struct {
	Type                 EntryType
	Version              int64    // the tx version, i.e. its seqno
	ClaimsDigest         [32]byte // zero unless Type.HasClaims()
	CommitEvidenceDigest [32]byte // zero unless Type.HasCommitEvidence()
	Maps                 []MapWrites
}

// mapOrder returns the indices of the maps that have writes or removes,
// public maps first, each domain sorted by name, and how many are public.
func mapOrder(maps []MapWrites, buf []int) (order []int, nPublic int, err error) {
	order = buf
	for i := range maps {
		if len(maps[i].Writes) > 0 || len(maps[i].Removes) > 0 {
			order = append(order, i)
		}
	}
	if len(order) <= 16 {
		for i := 1; i < len(order); i++ { // insertion sort: few maps per tx
			for j := i; j > 0 && compareMaps(&maps[order[j-1]], &maps[order[j]]) > 0; j-- {
				order[j-1], order[j] = order[j], order[j-1]
			}
		}
	} else {
		slices.SortFunc(order, func(a, b int) int { return compareMaps(&maps[a], &maps[b]) })
	}
	for k, i := range order {
		if k > 0 && maps[order[k-1]].Name == maps[i].Name {
			return nil, 0, fmt.Errorf("ledger: couldn't serialise: map %q appears twice", maps[i].Name)
		}
		if IsPublicMap(maps[i].Name) {
			nPublic++
		}
	}
	return order, nPublic, nil
}

// compareMaps orders public maps before private ones, then by name.
func compareMaps(a, b *MapWrites) int {
	pa, pb := IsPublicMap(a.Name), IsPublicMap(b.Name)
	if pa != pb {
		if pa {
			return -1
		}
		return 1
	}
	return strings.Compare(a.Name, b.Name)
}

// mapSize is the serialised size of one map (§1.5).
func mapSize(m *MapWrites) int {
	n := 8 + len(m.Name) + 8 + 8 + 8 + 8 // name, read_version, read_count, write_count, remove_count
	for _, kv := range m.Writes {
		n += 16 + len(kv.Key) + len(kv.Value)
	}
	for _, k := range m.Removes {
		n += 8 + len(k)
	}
	return n
}

// appendPublicHeader appends the header fields of a type-4 public domain:
// entry_type, version, claims digest, commit evidence digest and the
// max_conflict_version placeholder (§1.5).
func appendPublicHeader(dst []byte, tx *Tx) []byte {
	// In the order of the offsets pubTypeOffset to pubMCVOffset.
	dst = append(dst, byte(WriteSetWithCommitEvidenceAndClaims))
	dst = binary.LittleEndian.AppendUint64(dst, tx.Seqno)
	dst = append(dst, tx.ClaimsDigest[:]...)
	dst = append(dst, tx.CommitEvidenceDigest[:]...)
	return binary.LittleEndian.AppendUint64(dst, 0)
}

// appendMap appends one map: name, read_version = NoVersion, read_count = 0,
// the writes and the removes (§1.5).
func appendMap(dst []byte, m *MapWrites) []byte {
	dst = binary.LittleEndian.AppendUint64(dst, uint64(len(m.Name)))
	dst = append(dst, m.Name...)
	dst = binary.LittleEndian.AppendUint64(dst, noVersion)
	dst = binary.LittleEndian.AppendUint64(dst, 0)
	dst = binary.LittleEndian.AppendUint64(dst, uint64(len(m.Writes)))
	for _, kv := range m.Writes {
		dst = appendBytes(dst, kv.Key)
		dst = appendBytes(dst, kv.Value)
	}
	dst = binary.LittleEndian.AppendUint64(dst, uint64(len(m.Removes)))
	for _, k := range m.Removes {
		dst = appendBytes(dst, k)
	}
	return dst
}

// appendBytes appends a uint64 length and the bytes.
func appendBytes(dst, b []byte) []byte {
	dst = binary.LittleEndian.AppendUint64(dst, uint64(len(b)))
	return append(dst, b...)
}

// decoder reads little-endian fields from untrusted bytes. The first error
// sticks; every read checks the bytes left before slicing.
type decoder struct {
	b    []byte
	off  int
	what string // "public domain" or "private domain", for errors
	err  error
}

func (d *decoder) left() int { return len(d.b) - d.off }

func (d *decoder) fail(format string, args ...any) {
	if d.err == nil {
		d.err = malformed("%s at byte %d: %s", d.what, d.off, fmt.Sprintf(format, args...))
	}
}

func (d *decoder) bytes(n uint64) []byte {
	if d.err != nil {
		return nil
	}
	if n > uint64(d.left()) {
		d.fail("%d bytes needed, %d left", n, d.left())
		return nil
	}
	b := d.b[d.off : d.off+int(n) : d.off+int(n)]
	d.off += int(n)
	return b
}

func (d *decoder) u8() uint8 {
	if b := d.bytes(1); b != nil {
		return b[0]
	}
	return 0
}

func (d *decoder) u64() uint64 {
	if b := d.bytes(8); b != nil {
		return binary.LittleEndian.Uint64(b)
	}
	return 0
}

// lengthPrefixed reads a uint64 length and that many bytes.
func (d *decoder) lengthPrefixed() []byte { return d.bytes(d.u64()) }

// count reads an item count and bounds it by the bytes left, given the
// smallest serialised item, so a forged count cannot force a huge allocation.
func (d *decoder) count(what string, minItem int) int {
	n := d.u64()
	if d.err == nil && n > uint64(d.left()/minItem) {
		d.fail("%s count %d, but only %d bytes left", what, n, d.left())
	}
	if d.err != nil {
		return 0
	}
	return int(n)
}

// parsePublicDomain parses a public domain (§1.5): the header fields for the
// entry type, then maps to the end.
func parsePublicDomain(b []byte) (*Domain, error) {
	d := &decoder{b: b, what: "public domain"}
	dom := &Domain{Type: EntryType(d.u8()), Version: int64(d.u64())}
	switch {
	case d.err != nil:
		return nil, d.err
	case dom.Type == Snapshot:
		return nil, ErrSnapshotEntry
	case dom.Type > WriteSetWithCommitEvidenceAndClaims:
		return nil, malformed("unknown entry type %d", dom.Type)
	}
	if dom.Type.HasClaims() {
		copy(dom.ClaimsDigest[:], d.bytes(32))
	}
	if dom.Type.HasCommitEvidence() {
		copy(dom.CommitEvidenceDigest[:], d.bytes(32))
	}
	d.u64() // max_conflict_version: a placeholder, ignored
	if d.err != nil {
		return nil, d.err
	}
	maps, err := d.maps()
	if err != nil {
		return nil, err
	}
	dom.Maps = maps
	return dom, nil
}

// parseMaps parses a domain that holds only maps (the private domain).
func parseMaps(b []byte, what string) ([]MapWrites, error) {
	d := &decoder{b: b, what: what}
	return d.maps()
}

// Minimum serialised sizes used to bound counts.
const (
	minMapSize    = 8 + 8 + 8 + 8 + 8 // empty name and all counts zero
	minReadSize   = 8 + 8             // empty key, version
	minWriteSize  = 8 + 8             // empty key and value
	minRemoveSize = 8                 // empty key
)

// maps parses maps until the end of the domain, in two passes over the
// same bytes: the first checks them and counts the maps, writes, removes
// and name bytes; the second fills slices carved from one allocation of
// each kind (not one per map), every read checked again.
func (d *decoder) maps() ([]MapWrites, error) {
	start := d.off
	var a mapAlloc
	a.walk(d)
	if d.err != nil {
		return nil, d.err
	}
	if a.maps == 0 {
		return nil, nil
	}
	d.off = start
	a.alloc()
	maps := make([]MapWrites, 0, a.maps)
	var endsBuf [8]int
	ends := endsBuf[:0] // where each map's name ends in a.names
	for d.err == nil && d.left() > 0 {
		m := d.mapWrites(&a)
		maps = append(maps, m)
		ends = append(ends, a.names.Len())
	}
	if d.err != nil { // the first pass read the same bytes
		return nil, d.err
	}
	names, from := a.names.String(), 0
	for i, end := range ends {
		maps[i].Name, from = names[from:end], end
	}
	return maps, nil
}

// mapAlloc hands out the slices of a domain's maps. In the first pass (kv
// and rm nil) it counts what they need; in the second it carves them from
// kv and rm, each with its capacity capped (an append to one reallocates),
// and gathers the names into one string.
type mapAlloc struct {
	second                           bool
	maps, writes, removes, nameBytes int
	kv                               []KV
	rm                               [][]byte
	names                            strings.Builder
}

// walk is the first pass: it reads the maps to the end of the domain,
// counting.
func (a *mapAlloc) walk(d *decoder) {
	for d.err == nil && d.left() > 0 {
		if d.left() < minMapSize {
			d.fail("%d trailing bytes", d.left())
			return
		}
		d.mapWrites(a)
		a.maps++
	}
}

// alloc starts the second pass.
func (a *mapAlloc) alloc() {
	a.second = true
	a.kv = make([]KV, a.writes)
	if a.removes > 0 {
		a.rm = make([][]byte, a.removes)
	}
	a.names.Grow(a.nameBytes)
}

func (a *mapAlloc) name(b []byte) {
	a.nameBytes += len(b)
	if a.second {
		a.names.Write(b)
	}
}

func (a *mapAlloc) takeWrites(n int) []KV {
	a.writes += n
	if !a.second || n == 0 {
		return nil
	}
	s := a.kv[:n:n]
	a.kv = a.kv[n:]
	return s
}

func (a *mapAlloc) takeRemoves(n int) [][]byte {
	a.removes += n
	if !a.second || n == 0 {
		return nil
	}
	s := a.rm[:n:n]
	a.rm = a.rm[n:]
	return s
}

// mapWrites reads one map: name, read version, reads (skipped), writes and
// removes (§1.5). Its name is given to a (MapWrites.Name is set by maps);
// Writes and Removes are nil when there are none, and in the first pass.
func (d *decoder) mapWrites(a *mapAlloc) MapWrites {
	var m MapWrites
	a.name(d.lengthPrefixed())
	d.u64() // read_version
	for range d.count("read", minReadSize) {
		d.lengthPrefixed()
		d.u64()
	}
	n := d.count("write", minWriteSize)
	m.Writes = a.takeWrites(n)
	for i := range n {
		k, v := d.lengthPrefixed(), d.lengthPrefixed()
		if m.Writes != nil {
			m.Writes[i] = KV{Key: k, Value: v}
		}
	}
	n = d.count("remove", minRemoveSize)
	m.Removes = a.takeRemoves(n)
	for i := range n {
		k := d.lengthPrefixed()
		if m.Removes != nil {
			m.Removes[i] = k
		}
	}
	return m
}
