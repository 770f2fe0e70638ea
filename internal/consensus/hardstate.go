package consensus

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"os"
	"path/filepath"

	"go.etcd.io/raft/v3/raftpb"

	"github.com/ledgerd/ledgerd/internal/durable"
)

// State is what HardStateFile keeps: Raft's hard state and the last applied
// configuration with the index of the conf change that produced it.
type State struct {
	Hard      raftpb.HardState
	Conf      raftpb.ConfState
	ConfIndex uint64
}

// HardStateFile keeps State in two fixed 4 KiB slots written alternately in
// place, each with a generation number and a CRC-32C. A torn write can only
// damage the slot being written, so Open always finds the other, older one
// intact. Crash windows: before the write's fsync returns, either slot may
// be the newest on restart; both are valid states Raft had persisted or was
// persisting, and Raft's protocol tolerates losing an unsynced commit index.
type HardStateFile struct {
	f   durable.File
	gen uint64
	st  State
}

const (
	slotSize  = 4096
	slotMagic = 0x6c647273 // "ldrs"
)

var crcTable = crc32.MakeTable(crc32.Castagnoli)

// OpenHardState opens or creates the hard state file at path (mode 0600).
func OpenHardState(path string) (*HardStateFile, error) {
	return OpenHardStateFS(durable.OS, path)
}

// OpenHardStateFS is OpenHardState on the file system fsys (nil: durable.OS).
func OpenHardStateFS(fsys durable.FS, path string) (*HardStateFile, error) {
	fsys = durable.Or(fsys)
	f, err := fsys.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("consensus: couldn't open hard state: %w", err)
	}
	// The file's directory entry must be durable before any Save is: a
	// Save's fsync makes the contents durable, not the file's creation,
	// and a lost file would be a lost vote and configuration.
	if err := durable.SyncDirFS(fsys, filepath.Dir(path)); err != nil {
		f.Close()
		return nil, fmt.Errorf("consensus: couldn't open hard state: %w", err)
	}
	h := &HardStateFile{f: f}
	for slot := range 2 {
		buf := make([]byte, slotSize)
		n, _ := f.ReadAt(buf, int64(slot*slotSize))
		gen, st, ok := decodeSlot(buf[:n])
		if ok && (gen > h.gen) {
			h.gen, h.st = gen, st
		}
	}
	return h, nil
}

// State returns the newest valid state found or saved.
func (h *HardStateFile) State() State { return h.st }

// Save writes st to the older slot; with sync it is durable on return.
func (h *HardStateFile) Save(st State, sync bool) error {
	h.gen++
	buf, err := encodeSlot(h.gen, st)
	if err != nil {
		return err
	}
	if _, err := h.f.WriteAt(buf, int64(h.gen%2)*slotSize); err != nil {
		return fmt.Errorf("consensus: couldn't write hard state: %w", err)
	}
	h.st = st
	if sync {
		if err := h.f.Sync(); err != nil {
			return fmt.Errorf("consensus: couldn't sync hard state: %w", err)
		}
	}
	return nil
}

// Sync makes the last Save durable.
func (h *HardStateFile) Sync() error { return h.f.Sync() }

// Close closes the file.
func (h *HardStateFile) Close() error { return h.f.Close() }

func encodeSlot(gen uint64, st State) ([]byte, error) {
	hs, err := st.Hard.Marshal()
	if err != nil {
		return nil, err
	}
	cs, err := st.Conf.Marshal()
	if err != nil {
		return nil, err
	}
	// magic u32 | gen u64 | confIndex u64 | len(hs) u32 | len(cs) u32 | hs | cs | crc u32
	need := 28 + len(hs) + len(cs) + 4
	if need > slotSize {
		return nil, errors.New("consensus: hard state too large")
	}
	buf := make([]byte, slotSize)
	binary.LittleEndian.PutUint32(buf[0:], slotMagic)
	binary.LittleEndian.PutUint64(buf[4:], gen)
	binary.LittleEndian.PutUint64(buf[12:], st.ConfIndex)
	binary.LittleEndian.PutUint32(buf[20:], uint32(len(hs)))
	binary.LittleEndian.PutUint32(buf[24:], uint32(len(cs)))
	copy(buf[28:], hs)
	copy(buf[28+len(hs):], cs)
	end := 28 + len(hs) + len(cs)
	binary.LittleEndian.PutUint32(buf[end:], crc32.Checksum(buf[:end], crcTable))
	return buf, nil
}

func decodeSlot(buf []byte) (uint64, State, bool) {
	var st State
	if len(buf) < 32 || binary.LittleEndian.Uint32(buf) != slotMagic {
		return 0, st, false
	}
	hl, cl := int(binary.LittleEndian.Uint32(buf[20:])), int(binary.LittleEndian.Uint32(buf[24:]))
	end := 28 + hl + cl
	if hl > slotSize || cl > slotSize || end+4 > len(buf) {
		return 0, st, false
	}
	if crc32.Checksum(buf[:end], crcTable) != binary.LittleEndian.Uint32(buf[end:]) {
		return 0, st, false
	}
	if st.Hard.Unmarshal(buf[28:28+hl]) != nil || st.Conf.Unmarshal(buf[28+hl:end]) != nil {
		return 0, st, false
	}
	st.ConfIndex = binary.LittleEndian.Uint64(buf[12:])
	return binary.LittleEndian.Uint64(buf[4:]), st, true
}
