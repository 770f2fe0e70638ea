package transport

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"slices"

	"go.etcd.io/raft/v3/raftpb"
)

// A Raft stream is a sequence of frames, each one marshalled
// raftpb.Message:
//
//	uint32 big-endian length n | n bytes of raftpb.Message (protobuf)
//
// The sender encodes every message it has queued into one buffer, and the
// HTTP/2 transport writes it as one DATA frame (up to 512 KiB) with one
// flush: a batch is what one flush carries.

// ErrFrameTooLarge is returned by the decoder for a frame longer than its
// bound, before anything of the frame is allocated or read.
var ErrFrameTooLarge = errors.New("transport: frame too large")

// readStep is how much of a large frame the decoder allocates ahead of the
// data that has arrived.
const readStep = 1 << 20

// readBuffer is the size of a decoder's reader buffer: a frame up to this
// size (a MsgApp of a few hundred 1 KiB entries) is copied from it into a
// buffer of its own size once it has all arrived.
const readBuffer = 256 << 10

// keepBuffer bounds the buffer a decoder keeps between frames.
const keepBuffer = 8 << 20

// encoder encodes frames into its buffer, one batch at a time.
type encoder struct {
	max int
	buf []byte // the batch's frames
}

func newEncoder(max int) *encoder { return &encoder{max: max} }

// encode appends one frame. A message larger than the bound is refused
// (the peer would refuse it) and nothing is appended.
func (e *encoder) encode(m *raftpb.Message) error {
	n := m.Size()
	if n > e.max {
		return fmt.Errorf("%w: message of %d bytes, bound %d", ErrFrameTooLarge, n, e.max)
	}
	at := len(e.buf)
	e.buf = slices.Grow(e.buf, 4+n)[:at+4+n]
	binary.BigEndian.PutUint32(e.buf[at:], uint32(n))
	if _, err := m.MarshalToSizedBuffer(e.buf[at+4:]); err != nil {
		e.buf = e.buf[:at]
		return fmt.Errorf("transport: couldn't marshal message: %w", err)
	}
	return nil
}

// bytes returns the frames encoded since the last reset.
func (e *encoder) bytes() []byte { return e.buf }

// len is the length of bytes().
func (e *encoder) len() int { return len(e.buf) }

// reset starts a new batch, keeping the buffer unless it grew beyond
// keepBuffer.
func (e *encoder) reset() {
	if cap(e.buf) > keepBuffer {
		e.buf = nil
	}
	e.buf = e.buf[:0]
}

// decoder reads frames of at most max bytes.
type decoder struct {
	r   *bufio.Reader
	max int
	// buf is the frame buffer, reused from frame to frame until a message
	// keeps it (its entries' Data alias it): it is then given away and the
	// next frame is read into a new one.
	buf []byte
	sc  scratch
}

func newDecoder(r io.Reader, max int) *decoder {
	return &decoder{r: bufio.NewReaderSize(r, readBuffer), max: max}
}

// next reads one frame and unmarshals it. At the end of a stream between
// frames it returns io.EOF; a stream cut inside a frame is
// io.ErrUnexpectedEOF. A length above the bound is ErrFrameTooLarge, found
// before anything is allocated. A frame that fits the reader's buffer
// (readBuffer) is allocated only once all of it has arrived; a longer
// one's buffer grows with the data that has arrived (readStep at a time),
// so a peer announcing a large frame and sending little makes us allocate
// little.
func (d *decoder) next() (raftpb.Message, error) {
	var m raftpb.Message
	var hdr [4]byte
	if _, err := io.ReadFull(d.r, hdr[:]); err != nil {
		return m, err
	}
	n := binary.BigEndian.Uint32(hdr[:])
	if uint64(n) > uint64(d.max) {
		return m, fmt.Errorf("%w: %d bytes announced, bound %d", ErrFrameTooLarge, n, d.max)
	}
	b, err := d.read(int(n))
	if err != nil {
		return m, err
	}
	if cap(b) > 2*len(b)+4096 {
		// b keeps more than the frame (a larger frame was read into it
		// before): a message aliasing it would keep all of it.
		b = bytes.Clone(b)
	}
	kept, err := unmarshalMessage(&m, b, &d.sc)
	if err != nil {
		return m, fmt.Errorf("transport: bad message: %w", err)
	}
	if kept {
		// m's entries alias b: it is never read into again.
		d.buf = nil
	}
	return m, nil
}

func (d *decoder) read(n int) ([]byte, error) {
	b := d.buf[:0]
	if cap(b) < n && n <= d.r.Size() {
		// A frame that fits the reader's buffer (a MsgApp under load): its
		// bytes are appended to a new buffer of their size (append's size
		// class), allocated once they have all arrived and not zeroed
		// first (slices.Grow zeroes what it adds, then ReadFull writes it).
		p, err := d.r.Peek(n)
		if err != nil {
			return nil, unexpectedEOF(err)
		}
		b = append(b, p...)
		_, _ = d.r.Discard(n) // cannot fail: n bytes were peeked
		d.buf = b
		return b, nil
	}
	for len(b) < n {
		k := min(n-len(b), readStep)
		b = slices.Grow(b, k)
		got, err := io.ReadFull(d.r, b[len(b):len(b)+k])
		b = b[:len(b)+got]
		if err != nil {
			return nil, unexpectedEOF(err)
		}
	}
	if cap(b) <= keepBuffer {
		d.buf = b
	} else {
		d.buf = nil
	}
	return b, nil
}

// unexpectedEOF makes the end of the stream inside a frame an
// io.ErrUnexpectedEOF.
func unexpectedEOF(err error) error {
	if errors.Is(err, io.EOF) {
		return io.ErrUnexpectedEOF
	}
	return err
}
