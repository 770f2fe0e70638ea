package tables

import (
	"bytes"
	"encoding/json"
	"math"
	"strconv"
	"strings"
)

// The JSON of PrimarySignature as encoding/json writes it: its fields in
// order, without spaces. A node parses one per signature transaction, and
// the primary writes one, so both go through these direct codecs when the
// JSON is in that shape, and through encoding/json otherwise (with its
// validation and errors): the codecs accept and produce exactly what
// encoding/json would, only faster (FuzzParseSignature and
// FuzzAppendSignatureJSON compare them with encoding/json).

// sigFields are the members of the JSON, each a literal name then a value:
// a string (str) or an unsigned integer.
var sigFields = [...]struct {
	lit string
	str bool
}{
	{`{"sig":`, true},
	{`,"node":`, true},
	{`,"hashed_nonce":`, true},
	{`,"seqno":`, false},
	{`,"view":`, false},
	{`,"commit_seqno":`, false},
	{`,"commit_view":`, false},
	{`,"root":`, true},
	{`,"cert":`, true},
}

// marshalSignature is json.Marshal(ps).
func marshalSignature(ps *PrimarySignature) ([]byte, error) {
	strs := [...]string{ps.Sig, ps.Node, ps.HashedNonce, ps.Root, ps.Cert}
	nums := [...]uint64{ps.Seqno, ps.View, ps.CommitSeqno, ps.CommitView}
	size := len(`}`)
	for _, f := range sigFields {
		size += len(f.lit)
	}
	for _, s := range strs {
		size += len(s) + 2 + len(s)/16 // room for a few escapes
	}
	b := make([]byte, 0, size+len(nums)*20)
	si, ni := 0, 0
	for _, f := range sigFields {
		b = append(b, f.lit...)
		if !f.str {
			b = strconv.AppendUint(b, nums[ni], 10)
			ni++
			continue
		}
		var ok bool
		if b, ok = appendPlainString(b, strs[si]); !ok {
			return json.Marshal(ps)
		}
		si++
	}
	return append(b, '}'), nil
}

// appendPlainString appends s as a JSON string as encoding/json writes it,
// or reports false if s holds a byte it would escape other than a newline
// (or one outside printable ASCII).
func appendPlainString(b []byte, s string) ([]byte, bool) {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '\n':
			b = append(b, s[start:i]...)
			b = append(b, `\n`...)
			start = i + 1
		case c < 0x20 || c > 0x7e || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&':
			return b, false
		}
	}
	b = append(b, s[start:]...)
	return append(b, '"'), true
}

// unmarshalSignature is json.Unmarshal(b, ps) into a new PrimarySignature.
func unmarshalSignature(b []byte) (*PrimarySignature, error) {
	if ps, ok := parsePlainSignature(b); ok {
		return ps, nil
	}
	ps := new(PrimarySignature)
	if err := json.Unmarshal(b, ps); err != nil {
		return nil, err
	}
	return ps, nil
}

// parsePlainSignature parses b if it is a PrimarySignature as
// marshalSignature writes it, with no escape but \n in its strings: those of
// printable ASCII, integers without leading zeros that fit in 64 bits, and
// nothing after the closing brace. Otherwise it reports false.
func parsePlainSignature(b []byte) (*PrimarySignature, bool) {
	var spans [5][2]int // the strings' contents in b, escapes included
	var nums [4]uint64
	size, si, ni, off := 0, 0, 0, 0
	for _, f := range sigFields {
		if len(b)-off < len(f.lit) || string(b[off:off+len(f.lit)]) != f.lit {
			return nil, false
		}
		off += len(f.lit)
		if !f.str {
			v, end, ok := plainUint(b, off)
			if !ok {
				return nil, false
			}
			nums[ni], off = v, end
			ni++
			continue
		}
		if off >= len(b) || b[off] != '"' {
			return nil, false
		}
		start := off + 1
		n, end, ok := plainStringEnd(b, start)
		if !ok {
			return nil, false
		}
		spans[si] = [2]int{start, end}
		size += n
		off = end + 1
		si++
	}
	if off != len(b)-1 || b[off] != '}' {
		return nil, false
	}
	var buf strings.Builder // one allocation for the five strings
	buf.Grow(size)
	var ends [5]int
	for i, sp := range spans {
		for run := b[sp[0]:sp[1]]; len(run) > 0; {
			esc := bytes.IndexByte(run, '\\')
			if esc < 0 {
				buf.Write(run)
				break
			}
			buf.Write(run[:esc])
			buf.WriteByte('\n')
			run = run[esc+2:]
		}
		ends[i] = buf.Len()
	}
	all := buf.String()
	return &PrimarySignature{
		Sig:         all[:ends[0]],
		Node:        all[ends[0]:ends[1]],
		HashedNonce: all[ends[1]:ends[2]],
		Seqno:       nums[0],
		View:        nums[1],
		CommitSeqno: nums[2],
		CommitView:  nums[3],
		Root:        all[ends[2]:ends[3]],
		Cert:        all[ends[3]:ends[4]],
	}, true
}

// plainStringEnd scans the contents of a JSON string from start: printable
// ASCII but '"' and '\\', and the escape \n. It returns the decoded length
// and the index of the closing quote, or false for any other content.
func plainStringEnd(b []byte, start int) (n, end int, ok bool) {
	for i := start; i < len(b); i++ {
		switch c := b[i]; plainByte[c] {
		case plainEnd:
			return n, i, true
		case plainEscape:
			if i+1 >= len(b) || b[i+1] != 'n' {
				return 0, 0, false
			}
			i++
		case plainOther:
			return 0, 0, false
		}
		n++
	}
	return 0, 0, false
}

// plainByte classifies the bytes of a string's contents for plainStringEnd.
var plainByte = func() (t [256]uint8) {
	for c := range t {
		switch {
		case c == '"':
			t[c] = plainEnd
		case c == '\\':
			t[c] = plainEscape
		case c < 0x20 || c > 0x7e:
			t[c] = plainOther
		}
	}
	return t
}()

const (
	plainASCII = iota
	plainEnd
	plainEscape
	plainOther
)

// plainUint parses the decimal integer at b[off:] that encoding/json would
// read into a uint64 unchanged: no sign, fraction, exponent or leading
// zero, at most math.MaxUint64. It returns the value and the index after it.
func plainUint(b []byte, off int) (v uint64, end int, ok bool) {
	i := off
	for ; i < len(b) && b[i] >= '0' && b[i] <= '9'; i++ {
		d := uint64(b[i] - '0')
		if v > (math.MaxUint64-d)/10 {
			return 0, 0, false
		}
		v = v*10 + d
	}
	if i == off || (b[off] == '0' && i > off+1) {
		return 0, 0, false
	}
	return v, i, true
}
