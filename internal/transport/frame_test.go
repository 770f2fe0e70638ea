package transport

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"runtime"
	"testing"

	"go.etcd.io/raft/v3/raftpb"
)

func encodeAll(t testing.TB, max int, msgs ...raftpb.Message) []byte {
	t.Helper()
	enc := newEncoder(max)
	for i := range msgs {
		if err := enc.encode(&msgs[i]); err != nil {
			t.Fatal(err)
		}
	}
	return enc.bytes()
}

func TestFrameRoundTrip(t *testing.T) {
	msgs := []raftpb.Message{msg(1, 2, 0, 0), msg(1, 2, 1, 100), msg(1, 2, 2, 3<<20), {Type: raftpb.MsgHeartbeat, From: 1, To: 2, Commit: 9}}
	dec := newDecoder(bytes.NewReader(encodeAll(t, 4<<20, msgs...)), 4<<20)
	for i, want := range msgs {
		got, err := dec.next()
		if err != nil {
			t.Fatalf("message %d: %v", i, err)
		}
		gb, _ := got.Marshal()
		wb, _ := want.Marshal()
		if !bytes.Equal(gb, wb) {
			t.Fatalf("message %d differs after a round trip", i)
		}
	}
	if _, err := dec.next(); err != io.EOF {
		t.Fatalf("after the last frame: %v, want io.EOF", err)
	}
	// A stream cut inside a frame is not a clean end.
	b := encodeAll(t, 1<<20, msg(1, 2, 5, 1000))
	if _, err := newDecoder(bytes.NewReader(b[:len(b)-1]), 1<<20).next(); err != io.ErrUnexpectedEOF {
		t.Fatalf("cut frame: %v, want io.ErrUnexpectedEOF", err)
	}
	// The encoder refuses what the decoder would.
	big := msg(1, 2, 1, 2<<20)
	if err := newEncoder(1 << 20).encode(&big); !errors.Is(err, ErrFrameTooLarge) {
		t.Fatalf("encoding a message above the bound: %v", err)
	}
}

// zeros is an endless stream of zero bytes.
type zeros struct{}

func (zeros) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}

// allocated returns the bytes allocated while f runs.
func allocated(f func()) uint64 {
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	f()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}

// TestDecoderRefusesOversizedFrame: a frame above the bound is refused from
// its header, without reading or allocating it, even when the bytes are
// there to read.
func TestDecoderRefusesOversizedFrame(t *testing.T) {
	const max = 1 << 20
	hdr := binary.BigEndian.AppendUint32(nil, 64<<20)
	var err error
	n := allocated(func() {
		_, err = newDecoder(io.MultiReader(bytes.NewReader(hdr), zeros{}), max).next()
	})
	if !errors.Is(err, ErrFrameTooLarge) {
		t.Fatalf("a 64 MiB frame with a 1 MiB bound: %v, want ErrFrameTooLarge", err)
	}
	if n > 1<<20 {
		t.Fatalf("refusing a 64 MiB frame allocated %d bytes", n)
	}
	// One byte over the bound.
	hdr = binary.BigEndian.AppendUint32(nil, max+1)
	if _, err := newDecoder(io.MultiReader(bytes.NewReader(hdr), zeros{}), max).next(); !errors.Is(err, ErrFrameTooLarge) {
		t.Fatalf("a frame one byte over the bound: %v", err)
	}
}

// TestDecoderAllocatesAsDataArrives: a frame within a large bound that
// announces 1 GiB and sends 10 bytes costs about one read step, not 1 GiB.
func TestDecoderAllocatesAsDataArrives(t *testing.T) {
	hdr := binary.BigEndian.AppendUint32(nil, 1<<30)
	var err error
	n := allocated(func() {
		_, err = newDecoder(bytes.NewReader(append(hdr, make([]byte, 10)...)), 2<<30).next()
	})
	if err != io.ErrUnexpectedEOF {
		t.Fatalf("a 1 GiB frame cut after 10 bytes: %v", err)
	}
	if n > 4*readStep {
		t.Fatalf("a 1 GiB frame announced, 10 bytes sent: allocated %d bytes", n)
	}
}

// TestDecoderAllocatesFrameOnceArrived: a frame that fits the reader's
// buffer is allocated once all of it has arrived, in one buffer of its
// size: announced and cut short, it costs nothing.
func TestDecoderAllocatesFrameOnceArrived(t *testing.T) {
	const size = readBuffer - 1000
	hdr := binary.BigEndian.AppendUint32(nil, size)
	dec := newDecoder(bytes.NewReader(append(hdr, make([]byte, 10)...)), 1<<20)
	var err error
	if n := allocated(func() { _, err = dec.next() }); n > 4096 {
		t.Errorf("a %d-byte frame announced, 10 bytes sent: allocated %d bytes", size, n)
	}
	if err != io.ErrUnexpectedEOF {
		t.Fatalf("a frame cut after 10 bytes: %v", err)
	}

	m := msg(1, 2, 3, size-100)
	frame := encodeAll(t, 1<<20, m)
	if len(frame) > readBuffer+4 {
		t.Fatalf("test frame of %d bytes does not fit the reader's buffer", len(frame))
	}
	dec = newDecoder(bytes.NewReader(frame), 1<<20)
	var got raftpb.Message
	if n := allocated(func() { got, err = dec.next() }); err != nil || n > uint64(len(frame))*5/4+4096 {
		t.Fatalf("a %d-byte frame: allocated %d bytes, %v", len(frame), n, err)
	}
	if len(got.Entries) != 1 || !bytes.Equal(got.Entries[0].Data, m.Entries[0].Data) {
		t.Fatal("the frame decodes differently")
	}
}

// FuzzDecoder: any input decodes to messages or an error, never a panic,
// and what decodes re-encodes to a frame that decodes the same.
func FuzzDecoder(f *testing.F) {
	f.Add(encodeAll(f, 1<<16, msg(1, 2, 3, 10), raftpb.Message{Type: raftpb.MsgVote, From: 2, To: 1, Term: 4}))
	f.Add(binary.BigEndian.AppendUint32(nil, 1<<16+1))
	f.Add([]byte{0, 0, 0, 0})
	f.Add([]byte{0, 0, 0, 3, 8, 1})
	f.Fuzz(func(t *testing.T, data []byte) {
		dec := newDecoder(bytes.NewReader(data), 1<<16)
		for range 1000 {
			m, err := dec.next()
			if err != nil {
				return
			}
			again, err := newDecoder(bytes.NewReader(encodeAll(t, 1<<20, m)), 1<<20).next() // re-encoding writes every field: it may grow
			if err != nil {
				t.Fatalf("re-encoded message does not decode: %v", err)
			}
			a, _ := m.Marshal()
			b, _ := again.Marshal()
			if !bytes.Equal(a, b) {
				t.Fatal("re-encoded message decodes differently")
			}
		}
	})
}
