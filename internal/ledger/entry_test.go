package ledger

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/sha256"
	"errors"
	"math"
	"reflect"
	"runtime"
	"testing"
)

// le writes n as size little-endian bytes, by hand.
func le(n uint64, size int) []byte {
	b := make([]byte, size)
	for i := range b {
		b[i] = byte(n >> (8 * i))
	}
	return b
}

func cat(parts ...[]byte) []byte { return bytes.Join(parts, nil) }

// lp is a length-prefixed byte string (uint64 length, §1.5).
func lp(s string) []byte { return cat(le(uint64(len(s)), 8), []byte(s)) }

// TestAppendEntryGolden builds the bytes of a small entry by hand from
// ccf-format.md §1.3–1.5, independently of the encoder, and compares.
func TestAppendEntryGolden(t *testing.T) {
	aead := testAEAD(t)
	tx := &Tx{
		View: 2, Seqno: 5, Flags: FlagForceChunkAfter,
		ClaimsDigest:         [32]byte(bytes.Repeat([]byte{0x11}, 32)),
		CommitEvidenceDigest: [32]byte(bytes.Repeat([]byte{0x22}, 32)),
		Maps: []MapWrites{ // private first, to check the split and ordering
			{Name: "data", Writes: []KV{{Key: []byte("k1"), Value: []byte("v1")}}, Removes: [][]byte{[]byte("gone")}},
			{Name: "public:t", Writes: []KV{{Key: []byte("a"), Value: []byte("bcd")}}},
			{Name: "empty"}, // no writes: not serialised
		},
	}
	noVersion := []byte{0, 0, 0, 0, 0, 0, 0, 0x80} // INT64_MIN
	public := cat(
		[]byte{4},                           // entry_type WriteSetWithCommitEvidenceAndClaims
		le(5, 8),                            // version = seqno
		bytes.Repeat([]byte{0x11}, 32),      // claims digest
		bytes.Repeat([]byte{0x22}, 32),      // commit evidence digest
		le(0, 8),                            // max_conflict_version
		lp("public:t"), noVersion, le(0, 8), // name, read_version, read_count
		le(1, 8), lp("a"), lp("bcd"), // writes
		le(0, 8), // removes
	)
	private := cat(
		lp("data"), noVersion, le(0, 8),
		le(1, 8), lp("k1"), lp("v1"),
		le(1, 8), lp("gone"),
	)
	iv := cat(le(5, 8), le(2, 4))
	sealed := aead.Seal(nil, iv, private, public)
	ciphertext, tag := sealed[:len(private)], sealed[len(private):]
	body := cat(tag, iv, le(uint64(len(public)), 8), public, ciphertext)
	want := cat([]byte{1, FlagForceChunkAfter}, le(uint64(len(body)), 6), body)

	got, err := AppendEntry([]byte("prefix"), tx, aead)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got[:6], []byte("prefix")) {
		t.Fatal("AppendEntry did not append to dst")
	}
	if got = got[6:]; !bytes.Equal(got, want) {
		t.Fatalf("AppendEntry:\n got %x\nwant %x", got, want)
	}

	// Round trip.
	e, err := ParseEntry(got)
	if err != nil {
		t.Fatal(err)
	}
	if e.Seqno != 5 || e.View != 2 || e.Flags != FlagForceChunkAfter || e.Version != 1 || e.IsSnapshot() {
		t.Fatalf("ParseEntry header = %+v", e)
	}
	if !bytes.Equal(e.Public, public) || !bytes.Equal(e.Ciphertext, ciphertext) || !bytes.Equal(e.Tag[:], tag) {
		t.Fatal("ParseEntry split the entry wrongly")
	}
	dom, err := e.PublicDomain()
	if err != nil {
		t.Fatal(err)
	}
	wantDom := &Domain{Type: WriteSetWithCommitEvidenceAndClaims, Version: 5,
		ClaimsDigest: tx.ClaimsDigest, CommitEvidenceDigest: tx.CommitEvidenceDigest,
		Maps: []MapWrites{tx.Maps[1]}}
	if !reflect.DeepEqual(dom, wantDom) {
		t.Fatalf("PublicDomain = %+v, want %+v", dom, wantDom)
	}
	priv, err := e.Decrypt(aead)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(priv, []MapWrites{tx.Maps[0]}) {
		t.Fatalf("Decrypt = %+v", priv)
	}
	if err := e.Authenticate(aead); err != nil {
		t.Fatal(err)
	}
	if s, v, err := EntrySeqnoView(got); s != 5 || v != 2 || err != nil {
		t.Fatalf("EntrySeqnoView = %d, %d, %v", s, v, err)
	}
	if WriteSetDigest(got) != sha256.Sum256(want) {
		t.Fatal("WriteSetDigest is not SHA-256 of the whole entry")
	}
}

// TestAppendEntryPublicOnly checks that the tag is computed and checked when
// there is no private data.
func TestAppendEntryPublicOnly(t *testing.T) {
	aead := testAEAD(t)
	tx := &Tx{Seqno: 9, View: 1, Maps: []MapWrites{{Name: "public:x", Writes: []KV{{Key: []byte("k"), Value: []byte("v")}}}}}
	raw, err := AppendEntry(nil, tx, aead)
	if err != nil {
		t.Fatal(err)
	}
	e, err := ParseEntry(raw)
	if err != nil {
		t.Fatal(err)
	}
	if len(e.Ciphertext) != 0 {
		t.Fatalf("ciphertext of %d bytes, want none", len(e.Ciphertext))
	}
	wantTag := aead.Seal(nil, e.IV[:], nil, e.Public)
	if !bytes.Equal(e.Tag[:], wantTag) {
		t.Fatal("tag is not GCM over the empty plaintext with AAD = public domain")
	}
	maps, err := e.Decrypt(aead)
	if err != nil || maps != nil {
		t.Fatalf("Decrypt = %v, %v", maps, err)
	}
	raw[len(raw)-1] ^= 1
	if err := e.Authenticate(aead); !errors.Is(err, ErrAuthentication) {
		t.Fatalf("Authenticate after a public-domain flip = %v", err)
	}
}

// TestTamper flips every byte of a small entry.
func TestTamper(t *testing.T) {
	aead := testAEAD(t)
	orig := entry(t, aead, 3, 1, 0)
	for i := range orig {
		raw := bytes.Clone(orig)
		raw[i] ^= 0xFF
		e, perr := ParseEntry(raw)
		var aerr, derr error
		if perr == nil {
			aerr = e.Authenticate(aead)
			_, derr = e.Decrypt(aead)
		}
		switch {
		case i == 1: // flags: not authenticated, but part of the write set digest
			if perr != nil || aerr != nil || WriteSetDigest(raw) == WriteSetDigest(orig) {
				t.Errorf("byte %d (flags): parse %v, auth %v", i, perr, aerr)
			}
		case i < EntryHeaderSize: // version and size
			if perr == nil {
				t.Errorf("byte %d (header): ParseEntry accepted it", i)
			}
		case i >= pubLenOffset && i < pubOffset: // public domain size
			if perr == nil && aerr == nil {
				t.Errorf("byte %d (public size): accepted", i)
			}
		default: // tag, IV, public domain, ciphertext
			if perr != nil || !errors.Is(aerr, ErrAuthentication) || !errors.Is(derr, ErrAuthentication) {
				t.Errorf("byte %d: parse %v, auth %v, decrypt %v", i, perr, aerr, derr)
			}
		}
	}
}

func TestAppendEntryErrors(t *testing.T) {
	aead := testAEAD(t)
	gcm16, _ := cipher.NewGCMWithNonceSize(must(aes.NewCipher(testKey)), 16)
	kv := []KV{{Key: []byte("k"), Value: []byte("v")}}
	cases := map[string]struct {
		tx   *Tx
		aead cipher.AEAD
	}{
		"nil tx":        {nil, aead},
		"nil aead":      {testTx(1, 1, 0), nil},
		"wrong nonce":   {testTx(1, 1, 0), gcm16},
		"seqno 0":       {testTx(0, 1, 0), aead},
		"seqno too big": {testTx(math.MaxInt64+1, 1, 0), aead},
		"view too big":  {testTx(1, MaxView+1, 0), aead},
		"bad flags":     {testTx(1, 1, 0x04), aead},
		"duplicate map": {&Tx{Seqno: 1, Maps: []MapWrites{{Name: "a", Writes: kv}, {Name: "a", Writes: kv}}}, aead},
		"too large":     {&Tx{Seqno: 1, Maps: []MapWrites{{Name: "a", Writes: []KV{{Value: make([]byte, MaxEntrySize)}}}}}, aead},
	}
	for name, c := range cases {
		dst := []byte("keep")
		got, err := AppendEntry(dst, c.tx, c.aead)
		if err == nil {
			t.Errorf("%s: no error", name)
		}
		if !bytes.Equal(got, []byte("keep")) {
			t.Errorf("%s: dst changed to %q", name, got)
		}
	}
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

// TestMapOrder checks the split into domains and the ordering by name.
func TestMapOrder(t *testing.T) {
	aead := testAEAD(t)
	kv := []KV{{Key: []byte("k"), Value: []byte("v")}}
	names := []string{"z", "public:b", "a", "public:a", "m", "public:c"}
	var maps []MapWrites
	for _, n := range names {
		maps = append(maps, MapWrites{Name: n, Writes: kv})
	}
	raw, err := AppendEntry(nil, &Tx{Seqno: 1, Maps: maps}, aead)
	if err != nil {
		t.Fatal(err)
	}
	e := must(ParseEntry(raw))
	dom := must(e.PublicDomain())
	priv := must(e.Decrypt(aead))
	var got []string
	for _, m := range append(dom.Maps, priv...) {
		got = append(got, m.Name)
	}
	want := []string{"public:a", "public:b", "public:c", "a", "m", "z"}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("map order %v, want %v", got, want)
	}

	// Many maps take the other sort; the bytes must not depend on input order.
	var many, reversed []MapWrites
	for i := range 40 {
		many = append(many, MapWrites{Name: string(rune('A' + i)), Writes: kv})
	}
	for i := range many {
		reversed = append(reversed, many[len(many)-1-i])
	}
	a := must(AppendEntry(nil, &Tx{Seqno: 1, Maps: many}, aead))
	b := must(AppendEntry(nil, &Tx{Seqno: 1, Maps: reversed}, aead))
	if !bytes.Equal(a, b) {
		t.Fatal("serialisation depends on the order of Tx.Maps")
	}
}

// TestParseLegacyTypes parses hand-built public domains of types 0, 2 and 3.
func TestParseLegacyTypes(t *testing.T) {
	digest := func(b byte) []byte { return bytes.Repeat([]byte{b}, 32) }
	m := cat(lp("public:m"), le(0, 8), le(0, 8), le(1, 8), lp("k"), lp("v"), le(1, 8), lp("r"))
	wantMap := []MapWrites{{Name: "public:m", Writes: []KV{{Key: []byte("k"), Value: []byte("v")}}, Removes: [][]byte{[]byte("r")}}}
	for _, c := range []struct {
		typ    EntryType
		header []byte
		claims []byte
		ce     []byte
	}{
		{WriteSet, nil, nil, nil},
		{WriteSetWithClaims, digest(0xAA), digest(0xAA), nil},
		{WriteSetWithCommitEvidence, digest(0xCC), nil, digest(0xCC)},
		{WriteSetWithCommitEvidenceAndClaims, cat(digest(0xAA), digest(0xCC)), digest(0xAA), digest(0xCC)},
	} {
		public := cat([]byte{byte(c.typ)}, le(7, 8), c.header, le(99, 8), m)
		dom, err := parsePublicDomain(public)
		if err != nil {
			t.Fatalf("%v: %v", c.typ, err)
		}
		var claims, ce [32]byte
		copy(claims[:], c.claims)
		copy(ce[:], c.ce)
		want := &Domain{Type: c.typ, Version: 7, ClaimsDigest: claims, CommitEvidenceDigest: ce, Maps: wantMap}
		if !reflect.DeepEqual(dom, want) {
			t.Errorf("%v: got %+v, want %+v", c.typ, dom, want)
		}
	}
	if _, err := parsePublicDomain(cat([]byte{1}, le(7, 8), le(0, 8))); !errors.Is(err, ErrSnapshotEntry) {
		t.Errorf("snapshot type: %v", err)
	}
	if _, err := parsePublicDomain(cat([]byte{5}, le(7, 8), le(0, 8))); !errors.Is(err, ErrMalformed) {
		t.Errorf("type 5: %v", err)
	}
}

// TestForgedCounts checks that forged counts fail without allocating for them.
func TestForgedCounts(t *testing.T) {
	header := cat([]byte{0}, le(1, 8), le(0, 8))
	for _, public := range [][]byte{
		cat(header, lp("m"), le(0, 8), le(math.MaxUint64, 8)),                                         // reads
		cat(header, lp("m"), le(0, 8), le(0, 8), le(1<<60, 8)),                                        // writes
		cat(header, lp("m"), le(0, 8), le(0, 8), le(0, 8), le(1<<40, 8), bytes.Repeat([]byte{0}, 64)), // removes
		cat(header, le(math.MaxUint64, 8), bytes.Repeat([]byte{0}, 40)),                               // name length
		cat(header, lp("m"), le(0, 8)),                                                                // truncated
	} {
		// The fewest bytes allocated over a few tries: the process's other
		// goroutines (the runtime's, other tests') allocate meanwhile too.
		least := uint64(math.MaxUint64)
		for range 5 {
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			if _, err := parsePublicDomain(public); !errors.Is(err, ErrMalformed) {
				t.Fatalf("parsePublicDomain(%x) = %v", public, err)
			}
			runtime.ReadMemStats(&after)
			least = min(least, after.TotalAlloc-before.TotalAlloc)
		}
		if least > 4096 {
			t.Errorf("%d bytes allocated for a forged count", least)
		}
	}
}

func TestParseEntryErrors(t *testing.T) {
	good := entry(t, testAEAD(t), 1, 1, 0)
	bad := map[string][]byte{
		"empty":       nil,
		"short":       good[:minEntrySize-1],
		"version 2":   append([]byte{2}, good[1:]...),
		"size":        good[:len(good)-1],
		"public size": cat(good[:pubLenOffset], le(uint64(len(good)), 8), good[pubOffset:]),
	}
	for name, raw := range bad {
		if _, err := ParseEntry(raw); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: ParseEntry = %v", name, err)
		}
	}
	if _, _, err := EntrySeqnoView(good[:20]); err == nil {
		t.Error("EntrySeqnoView accepted a short entry")
	}
}

func BenchmarkAppendEntry1KiB(b *testing.B) {
	aead := testAEAD(b)
	tx := &Tx{
		View: 3, Seqno: 1,
		Maps: []MapWrites{
			{Name: "public:ccf.internal.tree", Writes: []KV{{Key: make([]byte, 8), Value: make([]byte, 32)}}},
			{Name: "records", Writes: []KV{{Key: []byte("collection:0001"), Value: bytes.Repeat([]byte{0x5A}, 1024)}}},
		},
	}
	var buf []byte
	b.SetBytes(1024)
	b.ReportAllocs()
	for b.Loop() {
		tx.Seqno++
		var err error
		if buf, err = AppendEntry(buf[:0], tx, aead); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkDecrypt authenticates, decrypts and parses the private domain of
// a user entry as a follower executes it: 1 KiB of contents in one map and
// a 32-byte key in another (node.EntryWrites).
func BenchmarkDecrypt(b *testing.B) {
	aead := testAEAD(b)
	raw, err := AppendEntry(nil, &Tx{View: 3, Seqno: 7, Maps: []MapWrites{
		{Name: "ledgerd.entries", Writes: []KV{{Key: []byte("subledger:0"), Value: bytes.Repeat([]byte{0x5A}, 1024)}}},
		{Name: "ledgerd.entries.claims", Writes: []KV{{Key: []byte("subledger:0"), Value: make([]byte, 32)}}},
	}}, aead)
	if err != nil {
		b.Fatal(err)
	}
	e, err := ParseEntry(raw)
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(e.Ciphertext)))
	b.ReportAllocs()
	for b.Loop() {
		maps, err := e.Decrypt(aead)
		if err != nil || len(maps) != 2 {
			b.Fatal(maps, err)
		}
	}
}

// The maps of a parsed domain share one slice of writes and one of removes:
// each map's is capped at its length, so that appending to one (writesOf
// appends private maps to public ones, callers add writes) never writes
// into the next map's.
func TestParsedMapsDoNotShareCapacity(t *testing.T) {
	aead := testAEAD(t)
	raw := must(AppendEntry(nil, &Tx{View: 1, Seqno: 5, Maps: []MapWrites{
		{Name: "a", Writes: []KV{{Key: []byte("k1"), Value: []byte("v1")}}, Removes: [][]byte{[]byte("r1")}},
		{Name: "b", Writes: []KV{{Key: []byte("k2"), Value: []byte("v2")}, {Key: []byte("k3"), Value: []byte("v3")}}, Removes: [][]byte{[]byte("r2")}},
		{Name: "c"},
		{Name: "d", Writes: []KV{{Key: []byte("k4"), Value: []byte("v4")}}},
	}}, aead))
	maps, err := must(ParseEntry(raw)).Decrypt(aead)
	if err != nil {
		t.Fatal(err)
	}
	if len(maps) != 3 || maps[0].Name != "a" || maps[1].Name != "b" || maps[2].Name != "d" {
		t.Fatalf("maps %+v", maps)
	}
	for _, m := range maps {
		if cap(m.Writes) != len(m.Writes) || cap(m.Removes) != len(m.Removes) {
			t.Errorf("map %q: %d writes in a capacity of %d, %d removes in %d", m.Name, len(m.Writes), cap(m.Writes), len(m.Removes), cap(m.Removes))
		}
	}
	_ = append(maps[0].Writes, KV{Key: []byte("x")})
	_ = append(maps[0].Removes, []byte("x"))
	if string(maps[1].Writes[0].Key) != "k2" || string(maps[1].Removes[0]) != "r2" {
		t.Errorf("appending to map a's writes changed map b's: %+v", maps[1])
	}
	if maps[2].Removes != nil {
		t.Errorf("map d has no removes but Removes = %v, want nil", maps[2].Removes)
	}
}
