package consensus

import (
	"bytes"
	"encoding/binary"
	"hash/crc32"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"go.etcd.io/raft/v3/raftpb"
)

func TestHardStateSurvivesReopenAndTornSlot(t *testing.T) {
	path := filepath.Join(t.TempDir(), "raft.state")
	h, err := OpenHardState(path)
	if err != nil {
		t.Fatal(err)
	}
	want := State{Hard: raftpb.HardState{Term: 3, Vote: 1, Commit: 42}, Conf: raftpb.ConfState{Voters: []uint64{1, 2, 3}}, ConfIndex: 7}
	for i := range uint64(5) {
		st := want
		st.Hard.Commit = 38 + i
		if err := h.Save(st, true); err != nil {
			t.Fatal(err)
		}
	}
	h.Close()
	h, err = OpenHardState(path)
	if err != nil {
		t.Fatal(err)
	}
	if got := h.State(); got.Hard.Commit != 42 || got.Hard.Term != 3 || len(got.Conf.Voters) != 3 || got.ConfIndex != 7 {
		t.Fatalf("reopened state = %+v", got)
	}
	gen := h.gen
	h.Close()
	// Tear the newest slot: the other, one save older, must be used.
	f, _ := os.OpenFile(path, os.O_RDWR, 0)
	f.WriteAt([]byte{0xff, 0xff, 0xff}, int64(gen%2)*slotSize+30)
	f.Close()
	h, err = OpenHardState(path)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	if got := h.State(); got.Hard.Commit != 41 {
		t.Fatalf("after tearing the newest slot, commit = %d, want 41 (the previous save)", got.Hard.Commit)
	}
}

func TestHardStateEmptyFile(t *testing.T) {
	h, err := OpenHardState(filepath.Join(t.TempDir(), "raft.state"))
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	if st := h.State(); st.Hard.Term != 0 || st.Hard.Commit != 0 || len(st.Conf.Voters) != 0 {
		t.Fatalf("new state = %+v", st)
	}
}

// FuzzDecodeSlot checks the hard state slot's properties, not only that
// decodeSlot does not panic:
//
//   - round trip: a State built from the fuzzer's values, encoded, decodes
//     to the same generation and State; every truncation of the slot's used
//     bytes, and every single-bit flip in them, is rejected (a torn or
//     damaged slot never decodes);
//   - any input (raw; with fixCRC its checksum is made right first, so that
//     the fuzzer reaches the parser behind the CRC) either is rejected or
//     decodes to a State that re-encodes to the same bytes, except where the
//     input's protobuf sections are not in the canonical form Marshal writes
//     (unordered or repeated fields, long varints: raft's encoder is not
//     ours, so such a slot is accepted rather than a persisted vote
//     forgotten), and then the re-encoding decodes to the same State.
func FuzzDecodeSlot(f *testing.F) {
	b, _ := encodeSlot(3, State{Hard: raftpb.HardState{Term: 1, Commit: 2}, Conf: raftpb.ConfState{Voters: []uint64{1}}})
	f.Add(uint64(3), uint64(1), uint64(0), uint64(2), uint64(0), []byte{0, 0, 1}, false, b)
	f.Add(uint64(1<<40), uint64(7), uint64(3), uint64(1<<33), uint64(99), []byte{0, 1, 2, 1, 3, 4, 2, 5, 6, 3, 7, 8, 4}, true, b[:100])
	f.Add(uint64(0), uint64(0), uint64(0), uint64(0), uint64(0), []byte(nil), false, []byte{})
	f.Fuzz(func(t *testing.T, gen, term, vote, commit, confIndex uint64, ids []byte, fixCRC bool, raw []byte) {
		st := State{Hard: raftpb.HardState{Term: term, Vote: vote, Commit: commit}, ConfIndex: confIndex}
		lists := []*[]uint64{&st.Conf.Voters, &st.Conf.Learners, &st.Conf.VotersOutgoing, &st.Conf.LearnersNext}
		for len(ids) >= 3 && len(ids) < 1000 {
			*lists[ids[0]%4] = append(*lists[ids[0]%4], uint64(ids[1])<<(ids[2]%57)|uint64(ids[2]))
			ids = ids[3:]
		}
		st.Conf.AutoLeave = len(ids) == 1
		enc, err := encodeSlot(gen, st)
		if err != nil {
			t.Fatal(err)
		}
		if len(enc) != slotSize {
			t.Fatalf("slot of %d bytes", len(enc))
		}
		g, got, ok := decodeSlot(enc)
		if !ok || g != gen || !sameState(got, st) {
			t.Fatalf("decode(encode(%d, %+v)) = %d, %+v, %v", gen, st, g, got, ok)
		}
		used := slotUsed(enc)
		for n := range used {
			if _, _, ok := decodeSlot(enc[:n]); ok {
				t.Fatalf("a slot cut to %d of its %d bytes decodes", n, used)
			}
		}
		for bit := range used * 8 {
			bad := slices.Clone(enc[:used])
			bad[bit/8] ^= 1 << (bit % 8)
			if _, _, ok := decodeSlot(bad); ok {
				t.Fatalf("a slot with bit %d flipped decodes", bit)
			}
		}

		raw = slices.Clone(raw)
		if fixCRC && len(raw) >= 32 {
			hl, cl := uint64(binary.LittleEndian.Uint32(raw[20:])), uint64(binary.LittleEndian.Uint32(raw[24:]))
			if end := 28 + hl + cl; end+4 <= uint64(len(raw)) {
				binary.LittleEndian.PutUint32(raw[end:], crc32.Checksum(raw[:end], crcTable))
			}
		}
		g, got, ok = decodeSlot(raw)
		if !ok {
			return
		}
		re, err := encodeSlot(g, got)
		if err != nil {
			t.Fatalf("%x decodes to %+v, which doesn't encode: %v", raw, got, err)
		}
		g2, again, ok := decodeSlot(re)
		if !ok || g2 != g || !sameState(again, got) {
			t.Fatalf("%x decodes to %d %+v; its re-encoding to %d %+v", raw, g, got, g2, again)
		}
		hl := int(binary.LittleEndian.Uint32(raw[20:]))
		end := 28 + hl + int(binary.LittleEndian.Uint32(raw[24:]))
		hs, _ := got.Hard.Marshal()
		cs, _ := got.Conf.Marshal()
		canonical := bytes.Equal(raw[28:28+hl], hs) && bytes.Equal(raw[28+hl:end], cs)
		if canonical && !bytes.Equal(re[:end+4], raw[:end+4]) {
			t.Fatalf("%x decodes, but re-encodes to %x", raw[:end+4], re[:end+4])
		}
	})
}

// slotUsed is the number of bytes of an encoded slot before its padding.
func slotUsed(slot []byte) int {
	return 28 + int(binary.LittleEndian.Uint32(slot[20:])) + int(binary.LittleEndian.Uint32(slot[24:])) + 4
}

// sameState compares two States by their encoding (nil and empty lists are
// the same).
func sameState(a, b State) bool {
	ah, _ := a.Hard.Marshal()
	bh, _ := b.Hard.Marshal()
	ac, _ := a.Conf.Marshal()
	bc, _ := b.Conf.Marshal()
	return a.ConfIndex == b.ConfIndex && bytes.Equal(ah, bh) && bytes.Equal(ac, bc)
}
