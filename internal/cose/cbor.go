package cose

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"unicode/utf8"
)

// This file is a minimal, strict CBOR (RFC 8949) decoder and encoder for
// exactly what a COSE_Sign1 governance envelope needs:
//
//   - major types 0-5 (unsigned and negative integers, byte and text strings,
//     arrays, maps), the simple values false, true and null (major type 7,
//     values 20-22), and tag 18 (COSE_Sign1) at the top level only;
//   - definite lengths only: indefinite-length items (additional info 31),
//     reserved additional info (28-30), floats and other simple values are
//     refused;
//   - preferred serialization only (RFC 8949 §4.2.1: every argument in its
//     shortest form), so that anything accepted re-encodes to the same bytes;
//   - map keys are integers or text strings (COSE labels, RFC 9052 §1.4);
//     keys need not be sorted, but a duplicate key is refused (§5.6);
//   - text strings must be valid UTF-8 (§5.3.1);
//   - every declared length or count is checked against the bytes that remain
//     before anything is allocated, and nesting is limited to maxDepth.

// maxDepth bounds nesting (arrays and maps inside arrays and maps).
const maxDepth = 16

// errCBOR is wrapped by every decoding error.
var errCBOR = errors.New("invalid CBOR")

// kind is the type of a decoded CBOR item.
type kind uint8

const (
	kUint  kind = iota // major type 0: value u
	kNeg               // major type 1: value -1-u
	kBytes             // major type 2: s
	kText              // major type 3: s (valid UTF-8)
	kArray             // major type 4: elems
	kMap               // major type 5: elems = key0, val0, key1, val1, ...
	kFalse             // simple value 20
	kTrue              // simple value 21
	kNull              // simple value 22
)

// item is one decoded CBOR data item. Strings alias the input.
type item struct {
	kind  kind
	u     uint64
	s     []byte
	elems []item
}

// intValue returns the item as an int64 if it is an integer that fits.
func (it item) intValue() (int64, bool) {
	switch {
	case it.kind == kUint && it.u <= math.MaxInt64:
		return int64(it.u), true
	case it.kind == kNeg && it.u <= math.MaxInt64:
		return -1 - int64(it.u), true
	}
	return 0, false
}

// labelKey identifies a map key (an integer or a text string) for duplicate
// detection and lookup.
func (it item) labelKey() string {
	if it.kind == kText {
		return "t" + string(it.s)
	}
	var b [9]byte
	b[0] = byte('0' + it.kind)
	binary.BigEndian.PutUint64(b[1:], it.u)
	return string(b[:])
}

func intLabel(v int64) string {
	if v >= 0 {
		return item{kind: kUint, u: uint64(v)}.labelKey()
	}
	return item{kind: kNeg, u: uint64(-1 - v)}.labelKey()
}

func textLabel(s string) string { return "t" + s }

// decoder reads CBOR items from b.
type decoder struct {
	b   []byte
	off int
}

func (d *decoder) errorf(format string, args ...any) error {
	return fmt.Errorf("%w at byte %d: %s", errCBOR, d.off, fmt.Sprintf(format, args...))
}

func (d *decoder) remaining() uint64 { return uint64(len(d.b) - d.off) }

// head reads an initial byte and its argument, refusing indefinite lengths,
// reserved values and arguments not in their shortest form.
func (d *decoder) head() (major byte, info byte, arg uint64, err error) {
	if d.off >= len(d.b) {
		return 0, 0, 0, d.errorf("unexpected end of input")
	}
	ib := d.b[d.off]
	major, info = ib>>5, ib&0x1f
	d.off++
	switch {
	case info < 24:
		return major, info, uint64(info), nil
	case info == 31:
		return 0, 0, 0, d.errorf("indefinite length refused")
	case info > 27:
		return 0, 0, 0, d.errorf("reserved additional information %d", info)
	}
	n := 1 << (info - 24) // 1, 2, 4 or 8 bytes
	if d.remaining() < uint64(n) {
		return 0, 0, 0, d.errorf("truncated argument")
	}
	p := d.b[d.off : d.off+n]
	d.off += n
	var min uint64
	switch n {
	case 1:
		arg, min = uint64(p[0]), 24
	case 2:
		arg, min = uint64(binary.BigEndian.Uint16(p)), 1<<8
	case 4:
		arg, min = uint64(binary.BigEndian.Uint32(p)), 1<<16
	case 8:
		arg, min = binary.BigEndian.Uint64(p), 1<<32
	}
	if arg < min && major != 7 {
		return 0, 0, 0, d.errorf("argument %d not in its shortest form", arg)
	}
	return major, info, arg, nil
}

// item decodes one data item at the given nesting depth. Tags are refused
// here: the only tag allowed (18) is handled by the caller at the top level.
func (d *decoder) item(depth int) (item, error) {
	if depth > maxDepth {
		return item{}, d.errorf("nesting deeper than %d", maxDepth)
	}
	major, info, arg, err := d.head()
	if err != nil {
		return item{}, err
	}
	switch major {
	case 0:
		return item{kind: kUint, u: arg}, nil
	case 1:
		return item{kind: kNeg, u: arg}, nil
	case 2, 3:
		if arg > d.remaining() {
			return item{}, d.errorf("string of %d bytes, only %d remain", arg, d.remaining())
		}
		s := d.b[d.off : d.off+int(arg)]
		d.off += int(arg)
		if major == 3 {
			if !utf8.Valid(s) {
				return item{}, d.errorf("text string is not valid UTF-8")
			}
			return item{kind: kText, s: s}, nil
		}
		return item{kind: kBytes, s: s}, nil
	case 4:
		// Each element takes at least one byte.
		if arg > d.remaining() {
			return item{}, d.errorf("array of %d items, only %d bytes remain", arg, d.remaining())
		}
		elems := make([]item, arg)
		for i := range elems {
			if elems[i], err = d.item(depth + 1); err != nil {
				return item{}, err
			}
		}
		return item{kind: kArray, elems: elems}, nil
	case 5:
		// Each entry takes at least two bytes.
		if arg > d.remaining()/2 {
			return item{}, d.errorf("map of %d entries, only %d bytes remain", arg, d.remaining())
		}
		elems := make([]item, 2*arg)
		seen := make(map[string]struct{}, arg)
		for i := 0; i < len(elems); i += 2 {
			if elems[i], err = d.item(depth + 1); err != nil {
				return item{}, err
			}
			k := elems[i]
			if k.kind != kUint && k.kind != kNeg && k.kind != kText {
				return item{}, d.errorf("map key is not an integer or a text string")
			}
			if _, dup := seen[k.labelKey()]; dup {
				return item{}, d.errorf("duplicate map key")
			}
			seen[k.labelKey()] = struct{}{}
			if elems[i+1], err = d.item(depth + 1); err != nil {
				return item{}, err
			}
		}
		return item{kind: kMap, elems: elems}, nil
	case 6:
		return item{}, d.errorf("tag %d not allowed here", arg)
	default: // 7
		if info >= 24 {
			return item{}, d.errorf("floating-point or extended simple values refused")
		}
		switch arg {
		case 20:
			return item{kind: kFalse}, nil
		case 21:
			return item{kind: kTrue}, nil
		case 22:
			return item{kind: kNull}, nil
		}
		return item{}, d.errorf("simple value %d refused", arg)
	}
}

// decodeOne decodes b as exactly one data item (no tag) with nothing after it.
func decodeOne(b []byte) (item, error) {
	d := decoder{b: b}
	it, err := d.item(0)
	if err != nil {
		return item{}, err
	}
	if d.off != len(b) {
		return item{}, d.errorf("%d trailing bytes", len(b)-d.off)
	}
	return it, nil
}

// appendHead appends an initial byte and argument in preferred (shortest)
// form.
func appendHead(b []byte, major byte, arg uint64) []byte {
	m := major << 5
	switch {
	case arg < 24:
		return append(b, m|byte(arg))
	case arg <= math.MaxUint8:
		return append(b, m|24, byte(arg))
	case arg <= math.MaxUint16:
		return binary.BigEndian.AppendUint16(append(b, m|25), uint16(arg))
	case arg <= math.MaxUint32:
		return binary.BigEndian.AppendUint32(append(b, m|26), uint32(arg))
	}
	return binary.BigEndian.AppendUint64(append(b, m|27), arg)
}

func appendInt(b []byte, v int64) []byte {
	if v >= 0 {
		return appendHead(b, 0, uint64(v))
	}
	return appendHead(b, 1, uint64(-1-v))
}

func appendBytes(b, s []byte) []byte { return append(appendHead(b, 2, uint64(len(s))), s...) }

func appendText(b []byte, s string) []byte { return append(appendHead(b, 3, uint64(len(s))), s...) }

// appendItem encodes it in preferred serialization, map entries in their
// decoded order.
func appendItem(b []byte, it item) []byte {
	switch it.kind {
	case kUint:
		return appendHead(b, 0, it.u)
	case kNeg:
		return appendHead(b, 1, it.u)
	case kBytes:
		return appendBytes(b, it.s)
	case kText:
		return append(appendHead(b, 3, uint64(len(it.s))), it.s...)
	case kArray:
		b = appendHead(b, 4, uint64(len(it.elems)))
	case kMap:
		b = appendHead(b, 5, uint64(len(it.elems)/2))
	case kFalse:
		return append(b, 0xf4)
	case kTrue:
		return append(b, 0xf5)
	case kNull:
		return append(b, 0xf6)
	}
	for _, e := range it.elems {
		b = appendItem(b, e)
	}
	return b
}
