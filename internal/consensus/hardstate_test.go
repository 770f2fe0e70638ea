package consensus

import (
	"os"
	"path/filepath"
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

func FuzzDecodeSlot(f *testing.F) {
	b, _ := encodeSlot(3, State{Hard: raftpb.HardState{Term: 1, Commit: 2}, Conf: raftpb.ConfState{Voters: []uint64{1}}})
	f.Add(b)
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		decodeSlot(b) // must not panic
	})
}
