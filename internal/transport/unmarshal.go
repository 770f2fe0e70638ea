package transport

import (
	"encoding/binary"

	"go.etcd.io/raft/v3/raftpb"
)

// Zero-copy decoding of a MsgApp's entries.
//
// raftpb's generated Unmarshal copies every entry's Data into a slice of
// its own (it must: it cannot know its input is not reused). A follower
// under load receives every append that way, one allocation and one copy
// per entry. unmarshalMessage decodes a frame whose buffer the caller
// gives up: the entries' Data are sub-slices of the frame (capacity capped
// at their length, so an append to one reallocates), and the decoder reads
// the next frame into a new buffer. Every other field is decoded by the
// generated code. A frame the fast path does not fully understand (an
// entry field it does not know, a group, a malformed varint) is decoded by
// the generated code alone, copying, so both paths give the same message
// and the same errors.

// Field numbers and wire types of raftpb.Message and raftpb.Entry.
const (
	fieldMessageEntries = 7
	fieldEntryType      = 1
	fieldEntryTerm      = 2
	fieldEntryIndex     = 3
	fieldEntryData      = 4

	wireVarint  = 0
	wireFixed64 = 1
	wireBytes   = 2
	wireFixed32 = 5
)

// scratch is unmarshalMessage's working space, reused from frame to
// frame; it keeps nothing of a frame (offsets and copies only).
type scratch struct {
	rest    []byte     // the frame without its entries
	entries [][2]int32 // each entry's encoding: b[start:end]
}

// unmarshalMessage decodes b into m. kept reports that m's entries alias
// b, which must then never be written again; otherwise nothing of b is
// kept.
func unmarshalMessage(m *raftpb.Message, b []byte, sc *scratch) (kept bool, err error) {
	if len(b) > 1<<31-1 {
		return false, m.Unmarshal(b)
	}
	r, entries := sc.rest[:0], sc.entries[:0]
	defer func() {
		if cap(r) <= keepBuffer {
			sc.rest = r[:0]
		}
		sc.entries = entries[:0]
	}()
	for i := 0; i < len(b); {
		start := i
		key, n := binary.Uvarint(b[i:])
		if n <= 0 {
			return false, m.Unmarshal(b)
		}
		i += n
		switch key & 7 {
		case wireVarint:
			_, n = binary.Uvarint(b[i:])
			if n <= 0 {
				return false, m.Unmarshal(b)
			}
			i += n
		case wireFixed64:
			i += 8
		case wireFixed32:
			i += 4
		case wireBytes:
			l, n := binary.Uvarint(b[i:])
			if n <= 0 || l > uint64(len(b)-i-n) {
				return false, m.Unmarshal(b)
			}
			i += n + int(l)
			if key>>3 == fieldMessageEntries {
				entries = append(entries, [2]int32{int32(i - int(l)), int32(i)})
				continue
			}
		default:
			return false, m.Unmarshal(b)
		}
		if i > len(b) {
			return false, m.Unmarshal(b)
		}
		r = append(r, b[start:i]...)
	}
	if len(entries) == 0 {
		return false, m.Unmarshal(b)
	}
	ents := make([]raftpb.Entry, len(entries))
	for k, e := range entries {
		if !unmarshalEntry(&ents[k], b[e[0]:e[1]]) {
			*m = raftpb.Message{}
			return false, m.Unmarshal(b)
		}
	}
	if err := m.Unmarshal(r); err != nil {
		*m = raftpb.Message{}
		return false, m.Unmarshal(b) // the same error as the generated code's
	}
	m.Entries = ents
	return true, nil
}

// unmarshalEntry decodes an entry whose fields are the four raftpb.Entry
// has, with Data aliasing b; false if b holds anything else or is not
// well formed (the generated code then decides).
func unmarshalEntry(e *raftpb.Entry, b []byte) bool {
	for i := 0; i < len(b); {
		key, n := binary.Uvarint(b[i:])
		if n <= 0 {
			return false
		}
		i += n
		switch key {
		case fieldEntryType<<3 | wireVarint, fieldEntryTerm<<3 | wireVarint, fieldEntryIndex<<3 | wireVarint:
			v, n := binary.Uvarint(b[i:])
			if n <= 0 {
				return false
			}
			i += n
			switch key >> 3 {
			case fieldEntryType:
				e.Type = raftpb.EntryType(v)
			case fieldEntryTerm:
				e.Term = v
			default:
				e.Index = v
			}
		case fieldEntryData<<3 | wireBytes:
			l, n := binary.Uvarint(b[i:])
			if n <= 0 || l > uint64(len(b)-i-n) {
				return false
			}
			i += n
			// Never nil once present (as the generated code: an empty
			// Data is []byte{}, an absent one nil).
			e.Data = b[i : i+int(l) : i+int(l)]
			i += int(l)
		default:
			return false
		}
	}
	return true
}
