package ledger

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"slices"
	"testing"
)

// This file holds FuzzParseEntry and its reference: a second, deliberately
// plain reading of ccf-format.md §1.3–1.5 that keeps every field (reads,
// read versions, max_conflict_version), so that what it parses it can write
// back byte for byte.

// refMap is one map as the reference reads it.
type refMap struct {
	name        []byte
	readVersion uint64
	reads       [][2][]byte // key, 8-byte version
	writes      []KV
	removes     [][]byte
}

// refReader reads the reference's fields; ok turns false at the first
// field that doesn't fit.
type refReader struct {
	b  []byte
	ok bool
}

func (r *refReader) take(n uint64) []byte {
	if !r.ok || n > uint64(len(r.b)) {
		r.ok = false
		return nil
	}
	v := r.b[:n]
	r.b = r.b[n:]
	return v
}

func (r *refReader) u64() uint64 {
	if b := r.take(8); r.ok {
		return binary.LittleEndian.Uint64(b)
	}
	return 0
}

func (r *refReader) blob() []byte { return r.take(r.u64()) }

// refMaps reads maps to the end of b.
func refMaps(b []byte) ([]refMap, bool) {
	r := &refReader{b: b, ok: true}
	var maps []refMap
	for r.ok && len(r.b) > 0 {
		m := refMap{name: r.blob(), readVersion: r.u64()}
		for n := r.u64(); r.ok && n > 0; n-- {
			m.reads = append(m.reads, [2][]byte{r.blob(), r.take(8)})
		}
		for n := r.u64(); r.ok && n > 0; n-- {
			m.writes = append(m.writes, KV{Key: r.blob(), Value: r.blob()})
		}
		for n := r.u64(); r.ok && n > 0; n-- {
			m.removes = append(m.removes, r.blob())
		}
		maps = append(maps, m)
	}
	return maps, r.ok
}

func refWriteMaps(maps []refMap) []byte {
	var b []byte
	blob := func(x []byte) { b = append(binary.LittleEndian.AppendUint64(b, uint64(len(x))), x...) }
	u64 := func(x uint64) { b = binary.LittleEndian.AppendUint64(b, x) }
	for _, m := range maps {
		blob(m.name)
		u64(m.readVersion)
		u64(uint64(len(m.reads)))
		for _, rd := range m.reads {
			blob(rd[0])
			b = append(b, rd[1]...)
		}
		u64(uint64(len(m.writes)))
		for _, kv := range m.writes {
			blob(kv.Key)
			blob(kv.Value)
		}
		u64(uint64(len(m.removes)))
		for _, k := range m.removes {
			blob(k)
		}
	}
	return b
}

// refDomain is a public domain as the reference reads it: the header
// fields of its type, verbatim, then the maps.
type refDomain struct {
	typ     EntryType
	header  []byte // version, digests and max_conflict_version as written
	version uint64
	claims  []byte
	ce      []byte
	mcv     uint64
	maps    []refMap
}

func refPublic(b []byte) (*refDomain, bool) {
	if len(b) == 0 {
		return nil, false
	}
	d := &refDomain{typ: EntryType(b[0])}
	if d.typ == Snapshot || d.typ > WriteSetWithCommitEvidenceAndClaims {
		return nil, false
	}
	r := &refReader{b: b[1:], ok: true}
	d.version = r.u64()
	if d.typ == WriteSetWithClaims || d.typ == WriteSetWithCommitEvidenceAndClaims {
		d.claims = r.take(32)
	}
	if d.typ == WriteSetWithCommitEvidence || d.typ == WriteSetWithCommitEvidenceAndClaims {
		d.ce = r.take(32)
	}
	d.mcv = r.u64()
	if !r.ok {
		return nil, false
	}
	d.header = b[1 : len(b)-len(r.b)]
	maps, ok := refMaps(r.b)
	d.maps = maps
	return d, ok
}

// canonical reports whether maps are as AppendEntry writes them: no reads,
// read_version NoVersion, something written or removed in each, names in
// order and unique, every name in the domain it is found in.
func canonical(maps []refMap, public bool) bool {
	for i, m := range maps {
		if len(m.reads) > 0 || m.readVersion != noVersion || len(m.writes)+len(m.removes) == 0 ||
			IsPublicMap(string(m.name)) != public || i > 0 && bytes.Compare(maps[i-1].name, m.name) >= 0 {
			return false
		}
	}
	return true
}

// agree checks that the package's maps equal the reference's.
func agree(t *testing.T, what string, got []MapWrites, want []refMap) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d maps, the reference reads %d", what, len(got), len(want))
	}
	for i, m := range want {
		g := got[i]
		if g.Name != string(m.name) || len(g.Writes) != len(m.writes) || len(g.Removes) != len(m.removes) {
			t.Fatalf("%s: map %d is %q (%d writes, %d removes), the reference reads %q (%d, %d)",
				what, i, g.Name, len(g.Writes), len(g.Removes), m.name, len(m.writes), len(m.removes))
		}
		if cap(g.Writes) != len(g.Writes) || cap(g.Removes) != len(g.Removes) {
			t.Fatalf("%s: map %d's writes or removes have room beyond their length (shared with the next map's)", what, i)
		}
		for j, kv := range m.writes {
			if !bytes.Equal(g.Writes[j].Key, kv.Key) || !bytes.Equal(g.Writes[j].Value, kv.Value) {
				t.Fatalf("%s: map %q write %d differs from the reference", what, m.name, j)
			}
		}
		for j, k := range m.removes {
			if !bytes.Equal(g.Removes[j], k) {
				t.Fatalf("%s: map %q remove %d differs from the reference", what, m.name, j)
			}
		}
	}
}

// FuzzParseEntry checks ParseEntry, the public and private domain parsers
// and AppendEntry against each other and the reference above, not only that
// they do not panic:
//
//   - framing: ParseEntry accepts exactly what the reference's framing rules
//     accept, and the accepted Entry's fields, written back, are raw;
//   - domains: the public domain and the (unencrypted) ciphertext parse as
//     maps exactly when the reference parses them, to the same maps, and the
//     reference writes what it read back to the same bytes; where the domain
//     is in AppendEntry's canonical form, the package's own writer gives the
//     same bytes too;
//   - entries that authenticate (with reseal, the harness fixes the framing
//     and seals the ciphertext as plaintext under the entry's IV, so that the
//     fuzzer reaches the private parser): AppendEntry of what Decrypt and
//     PublicDomain read gives raw back, where it is canonical.
func FuzzParseEntry(f *testing.F) {
	aead := testAEAD(f)
	f.Add(entry(f, aead, 1, 1, 0), false)
	f.Add(entry(f, aead, 1<<40, MaxView, FlagForceChunkAfter), false)
	f.Add(must(AppendEntry(nil, &Tx{Seqno: 2, Maps: []MapWrites{{Name: "public:x", Removes: [][]byte{{1}}}}}, aead)), false)
	f.Add(syntheticEntry(3, 1, 0, 100), false)
	f.Add(syntheticEntry(3, 1, 0, 100), true)
	f.Fuzz(func(t *testing.T, raw []byte, reseal bool) {
		raw = slices.Clone(raw)
		if reseal && len(raw) >= minEntrySize {
			putHeader(raw, raw[1], uint64(len(raw)-EntryHeaderSize))
			raw[0] = EntryFormatV1
			pubLen := min(binary.LittleEndian.Uint64(raw[pubLenOffset:]), uint64(len(raw)-pubOffset))
			binary.LittleEndian.PutUint64(raw[pubLenOffset:], pubLen)
			public, plain := raw[pubOffset:pubOffset+pubLen], raw[pubOffset+pubLen:]
			sealed := aead.Seal(nil, raw[ivOffset:ivOffset+GCMIVSize], plain, public)
			copy(plain, sealed)
			copy(raw[tagOffset:ivOffset], sealed[len(plain):])
		}

		// Framing.
		refOK := len(raw) >= 44 && raw[0] == 1 && binary.LittleEndian.Uint64(raw)>>16 == uint64(len(raw)-8) &&
			binary.LittleEndian.Uint64(raw[36:]) <= uint64(len(raw)-44)
		e, err := ParseEntry(raw)
		if (err == nil) != refOK {
			t.Fatalf("ParseEntry: %v; the reference accepts: %v", err, refOK)
		}
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("ParseEntry: %v, not ErrMalformed", err)
			}
			return
		}
		var back []byte
		back = binary.LittleEndian.AppendUint64(back, uint64(len(e.Public)+len(e.Ciphertext)+28+8)<<16|uint64(e.Flags)<<8|uint64(e.Version))
		back = append(append(back, e.Tag[:]...), e.IV[:]...)
		back = binary.LittleEndian.AppendUint64(back, uint64(len(e.Public)))
		back = append(append(back, e.Public...), e.Ciphertext...)
		if !bytes.Equal(back, raw) {
			t.Fatalf("the parsed entry writes back as %x, not %x", back, raw)
		}
		seqno, view, err := EntrySeqnoView(raw)
		if err != nil || seqno != e.Seqno || view != e.View ||
			seqno != binary.LittleEndian.Uint64(e.IV[:]) || view != uint64(binary.LittleEndian.Uint32(e.IV[8:])&0x7FFFFFFF) ||
			e.IsSnapshot() != (e.IV[11]&0x80 != 0) {
			t.Fatalf("seqno/view: entry %d.%d, EntrySeqnoView %d.%d %v, IV %x", e.View, e.Seqno, view, seqno, err, e.IV)
		}

		// Public domain.
		ref, refOK := refPublic(e.Public)
		dom, err := e.PublicDomain()
		if (err == nil) != refOK {
			t.Fatalf("PublicDomain: %v; the reference accepts: %v", err, refOK)
		}
		publicCanonical := false
		if err == nil {
			if dom.Type != ref.typ || uint64(dom.Version) != ref.version ||
				(ref.claims != nil) != dom.Type.HasClaims() || ref.claims != nil && !bytes.Equal(ref.claims, dom.ClaimsDigest[:]) ||
				(ref.ce != nil) != dom.Type.HasCommitEvidence() || ref.ce != nil && !bytes.Equal(ref.ce, dom.CommitEvidenceDigest[:]) {
				t.Fatalf("public domain header %+v, the reference reads %+v", dom, ref)
			}
			agree(t, "public domain", dom.Maps, ref.maps)
			if b := append(append([]byte{byte(ref.typ)}, ref.header...), refWriteMaps(ref.maps)...); !bytes.Equal(b, e.Public) {
				t.Fatalf("the reference writes the public domain back as %x, not %x", b, e.Public)
			}
			publicCanonical = ref.typ == WriteSetWithCommitEvidenceAndClaims && ref.mcv == 0 && canonical(ref.maps, true)
			if publicCanonical {
				b := appendPublicHeader(nil, &Tx{Seqno: ref.version, ClaimsDigest: dom.ClaimsDigest, CommitEvidenceDigest: dom.CommitEvidenceDigest})
				for i := range dom.Maps {
					b = appendMap(b, &dom.Maps[i])
				}
				if !bytes.Equal(b, e.Public) {
					t.Fatalf("a canonical public domain writes back as %x, not %x", b, e.Public)
				}
			}
		} else if !errors.Is(err, ErrMalformed) && !errors.Is(err, ErrSnapshotEntry) {
			t.Fatalf("PublicDomain: %v", err)
		}
		// The fast reader of the type 4 header agrees with the parser, and
		// the leaf is CCF's formula over them.
		claims, ce, herr := e.HeaderDigests()
		if dom != nil && dom.Type == WriteSetWithCommitEvidenceAndClaims {
			if herr != nil || claims != dom.ClaimsDigest || ce != dom.CommitEvidenceDigest {
				t.Fatalf("HeaderDigests = %x, %x, %v; the public domain has %x, %x", claims, ce, herr, dom.ClaimsDigest, dom.CommitEvidenceDigest)
			}
		}
		if dom != nil && dom.Type == WriteSetWithCommitEvidenceAndClaims && e.HasPublicMaps() != (len(dom.Maps) > 0) {
			t.Fatalf("HasPublicMaps = %v with %d public maps", e.HasPublicMaps(), len(dom.Maps))
		}
		leaf, lerr := e.Leaf()
		if (lerr == nil) != (herr == nil) || lerr == nil && leaf != sha256.Sum256(cat(sha256Of(raw), ce[:], claims[:])) {
			t.Fatalf("Leaf = %x, %v", leaf, lerr)
		}

		// The private parser on untrusted bytes: the ciphertext, as is.
		checkMaps(t, "ciphertext as maps", e.Ciphertext, false)

		// Entries that authenticate.
		if e.Authenticate(aead) != nil {
			if _, err := e.Decrypt(aead); !errors.Is(err, ErrAuthentication) {
				t.Fatalf("Authenticate fails, Decrypt: %v", err)
			}
			return
		}
		plain := make([]byte, len(e.Ciphertext))
		if _, err := aead.Open(plain[:0], e.IV[:], append(slices.Clone(e.Ciphertext), e.Tag[:]...), e.Public); err != nil {
			t.Fatalf("Authenticate succeeds, Open: %v", err)
		}
		private, privateCanonical := checkMaps(t, "private domain", plain, true)
		priv, err := e.Decrypt(aead)
		if (err == nil) != (private != nil || len(plain) == 0) {
			t.Fatalf("Decrypt: %v", err)
		}
		if err != nil || !publicCanonical || !privateCanonical || e.Seqno == 0 || e.Seqno > seqnoLimit ||
			uint64(dom.Version) != e.Seqno || e.Flags&^knownFlags != 0 || e.Version != EntryFormatV1 ||
			binary.LittleEndian.Uint32(e.IV[8:]) > MaxView {
			return
		}
		tx := &Tx{View: e.View, Seqno: e.Seqno, Flags: e.Flags, ClaimsDigest: dom.ClaimsDigest,
			CommitEvidenceDigest: dom.CommitEvidenceDigest, Maps: append(slices.Clone(dom.Maps), priv...)}
		again, err := AppendEntry(nil, tx, aead)
		if err != nil {
			t.Fatalf("a canonical entry doesn't serialise: %v", err)
		}
		if !bytes.Equal(again, raw) {
			t.Fatalf("AppendEntry(ParseEntry(raw)) = %x, not raw %x", again, raw)
		}
	})
}

// checkMaps parses b with the package's map parser and the reference, checks
// that they agree and that the reference writes b back; it returns the
// reference's maps (nil if b doesn't parse) and whether they are canonical.
func checkMaps(t *testing.T, what string, b []byte, private bool) ([]refMap, bool) {
	t.Helper()
	ref, refOK := refMaps(b)
	maps, err := parseMaps(b, what)
	if (err == nil) != refOK {
		t.Fatalf("%s: %v; the reference accepts: %v", what, err, refOK)
	}
	if err != nil {
		if !errors.Is(err, ErrMalformed) {
			t.Fatalf("%s: %v", what, err)
		}
		return nil, false
	}
	agree(t, what, maps, ref)
	if back := refWriteMaps(ref); !bytes.Equal(back, b) {
		t.Fatalf("%s: the reference writes back %x, not %x", what, back, b)
	}
	return ref, canonical(ref, !private)
}

func sha256Of(b []byte) []byte { h := sha256.Sum256(b); return h[:] }
