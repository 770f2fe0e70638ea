package transport

import (
	"bytes"
	"math/rand/v2"
	"reflect"
	"testing"

	"go.etcd.io/raft/v3/raftpb"
)

// generated decodes b with raftpb's generated code.
func generated(b []byte) (raftpb.Message, error) {
	var m raftpb.Message
	err := m.Unmarshal(b)
	return m, err
}

// checkSame fails unless unmarshalMessage and the generated code agree on b
// (the same message, or both an error).
func checkSame(t *testing.T, b []byte) {
	t.Helper()
	want, werr := generated(b)
	var got raftpb.Message
	var sc scratch
	_, gerr := unmarshalMessage(&got, bytes.Clone(b), &sc)
	if (werr == nil) != (gerr == nil) {
		t.Fatalf("%x: generated code's error %v, unmarshalMessage's %v", b, werr, gerr)
	}
	if werr == nil && !reflect.DeepEqual(got, want) {
		t.Fatalf("%x: unmarshalMessage gives\n%+v\nthe generated code\n%+v", b, got, want)
	}
}

// randomMessage has every kind of field: entries of every type, some with
// empty or no Data, a snapshot, a context, responses.
func randomMessage(r *rand.Rand) raftpb.Message {
	m := raftpb.Message{Type: raftpb.MessageType(r.IntN(20)), To: r.Uint64(), From: r.Uint64N(5), Term: r.Uint64(),
		LogTerm: r.Uint64N(1000), Index: r.Uint64(), Commit: r.Uint64N(1 << 40), Reject: r.IntN(2) == 0, RejectHint: r.Uint64N(9), Vote: r.Uint64N(4)}
	for range r.IntN(6) {
		e := raftpb.Entry{Term: r.Uint64(), Index: r.Uint64(), Type: raftpb.EntryType(r.IntN(3))}
		switch r.IntN(3) {
		case 0: // no Data
		case 1:
			e.Data = []byte{}
		default:
			e.Data = make([]byte, r.IntN(300))
			for i := range e.Data {
				e.Data[i] = byte(r.Uint32())
			}
		}
		m.Entries = append(m.Entries, e)
	}
	if r.IntN(4) == 0 {
		m.Context = []byte("ctx")
	}
	if r.IntN(4) == 0 {
		m.Snapshot = &raftpb.Snapshot{Data: []byte("snap"), Metadata: raftpb.SnapshotMetadata{Index: 7, Term: 2,
			ConfState: raftpb.ConfState{Voters: []uint64{1, 2, 3}}}}
	}
	if r.IntN(5) == 0 {
		m.Responses = []raftpb.Message{{Type: raftpb.MsgAppResp, Entries: []raftpb.Entry{{Index: 1, Data: []byte("x")}}}}
	}
	return m
}

// TestUnmarshalMessageIsTheGeneratedCode: on well-formed messages, on every
// truncation and on random byte changes of them, unmarshalMessage decodes
// what raftpb's generated Unmarshal decodes, and fails where it fails.
func TestUnmarshalMessageIsTheGeneratedCode(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for range 2000 {
		m := randomMessage(r)
		b, err := m.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		checkSame(t, b)
		checkSame(t, b[:r.IntN(len(b)+1)])
		for range 4 {
			c := bytes.Clone(b)
			for range 1 + r.IntN(3) {
				if len(c) > 0 {
					c[r.IntN(len(c))] = byte(r.Uint32())
				}
			}
			checkSame(t, c)
		}
	}
	// Repeated fields (the last one wins), an unknown entry field, an
	// empty entry, an entry field of the wrong wire type, a group.
	for _, b := range [][]byte{
		{0x3a, 0x04, 0x10, 0x01, 0x10, 0x02},             // entry with Term twice
		{0x3a, 0x06, 0x22, 0x01, 0xaa, 0x22, 0x01, 0xbb}, // entry with Data twice
		{0x3a, 0x02, 0x28, 0x01},                         // entry with an unknown field 5
		{0x3a, 0x00, 0x3a, 0x02, 0x22, 0x00},             // an empty entry, an entry with empty Data
		{0x3a, 0x02, 0x22, 0x05},                         // Data longer than its entry
		{0x38, 0x01},                                     // field 7 as a varint
		{0x3b, 0x3c, 0x3a, 0x00},                         // a group, then an entry
		{0x10, 0x02, 0x3a, 0x00, 0x10, 0x03},             // To twice around an entry
	} {
		checkSame(t, b)
	}
}

// TestDecoderGivesAwayAFrameItsEntriesAlias: a decoded MsgApp's entries
// keep their bytes while the decoder reads further frames, of every size
// (the buffer they alias is never read into again), and an append to one
// entry's Data does not write into the next entry's.
func TestDecoderGivesAwayAFrameItsEntriesAlias(t *testing.T) {
	a, b := msgApp(4, 1000), msgApp(4, 1000)
	for i := range b.Entries {
		for j := range b.Entries[i].Data {
			b.Entries[i].Data[j] = 0xee
		}
	}
	hb := raftpb.Message{Type: raftpb.MsgHeartbeat, From: 1, To: 2, Term: 3}
	dec := newDecoder(bytes.NewReader(encodeAll(t, 1<<20, a, hb, b, msgApp(1, 3000), a)), 1<<20)
	first, err := dec.next()
	if err != nil {
		t.Fatal(err)
	}
	var later []raftpb.Message
	for range 4 {
		m, err := dec.next()
		if err != nil {
			t.Fatal(err)
		}
		later = append(later, m)
	}
	if !reflect.DeepEqual(first.Entries, a.Entries) {
		t.Fatal("a decoded MsgApp's entries changed when the decoder read the next frames")
	}
	if !reflect.DeepEqual(later[1].Entries, b.Entries) || !reflect.DeepEqual(later[3].Entries, a.Entries) {
		t.Fatal("later MsgApps' entries changed")
	}
	// The entries alias the frame: an append must not write into the next.
	_ = append(first.Entries[0].Data, 1, 2, 3)
	if !reflect.DeepEqual(first.Entries, a.Entries) {
		t.Fatal("an append to one entry's Data wrote into the next entry")
	}
}

// TestDecoderAllocatesOncePerMsgApp: decoding a MsgApp of 32 entries makes
// a few allocations, not one per entry (the generated code's copies).
func TestDecoderAllocatesOncePerMsgApp(t *testing.T) {
	frames := encodeAll(t, 64<<20, msgApp(32, 1400))
	dec := newDecoder(&repeatReader{b: frames}, 64<<20)
	dec.next()
	if n := testing.AllocsPerRun(50, func() {
		if _, err := dec.next(); err != nil {
			t.Fatal(err)
		}
	}); n > 4 {
		t.Fatalf("%v allocations per MsgApp of 32 entries, want at most 4", n)
	}
}

// FuzzUnmarshalMessageIsTheGeneratedCode: on any bytes, unmarshalMessage
// decodes what raftpb's generated Unmarshal decodes, and fails where it
// fails (the differential form of TestUnmarshalMessageIsTheGeneratedCode).
func FuzzUnmarshalMessageIsTheGeneratedCode(f *testing.F) {
	r := rand.New(rand.NewPCG(3, 4))
	for range 8 {
		m := randomMessage(r)
		b, err := m.Marshal()
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) { checkSame(t, b) })
}
