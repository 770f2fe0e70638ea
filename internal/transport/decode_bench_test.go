package transport

import (
	"bytes"
	"io"
	"testing"

	"go.etcd.io/raft/v3/raftpb"
)

// msgApp is a MsgApp as a loaded primary sends: n entries of size bytes.
func msgApp(n, size int) raftpb.Message {
	m := raftpb.Message{Type: raftpb.MsgApp, From: 1, To: 2, Term: 3, LogTerm: 3, Index: 1000, Commit: 990}
	for i := range n {
		d := bytes.Repeat([]byte{byte(i)}, size)
		m.Entries = append(m.Entries, raftpb.Entry{Term: 3, Index: uint64(1001 + i), Type: raftpb.EntryNormal, Data: d})
	}
	return m
}

// BenchmarkDecodeMsgApp decodes a stream of MsgApps of 32 entries of
// 1.4 KiB (a follower's receiving side under load) followed by a heartbeat
// each; ns and allocs per MsgApp.
func BenchmarkDecodeMsgApp(b *testing.B) {
	app := msgApp(32, 1400)
	hb := raftpb.Message{Type: raftpb.MsgHeartbeat, From: 1, To: 2, Term: 3, Commit: 990}
	frames := encodeAll(b, 64<<20, app, hb)
	r := &repeatReader{b: frames}
	dec := newDecoder(r, 64<<20)
	b.SetBytes(int64(len(frames)))
	b.ReportAllocs()
	for b.Loop() {
		for range 2 {
			if _, err := dec.next(); err != nil {
				b.Fatal(err)
			}
		}
	}
}

// repeatReader reads b over and over.
type repeatReader struct {
	b   []byte
	off int
}

func (r *repeatReader) Read(p []byte) (int, error) {
	n := copy(p, r.b[r.off:])
	r.off = (r.off + n) % len(r.b)
	return n, nil
}

var _ io.Reader = (*repeatReader)(nil)
