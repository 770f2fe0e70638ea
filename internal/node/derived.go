package node

import (
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"

	"github.com/ledgerd/ledgerd/internal/consensus"
	"github.com/ledgerd/ledgerd/internal/ledger"
	"github.com/ledgerd/ledgerd/internal/merkle"
	"github.com/ledgerd/ledgerd/internal/tables"
)

// DerivedReport summarises a check of a data directory's derived files.
type DerivedReport struct {
	TreeLeaves        uint64 // leaves of merkle.tree checked against the ledger
	Signatures        uint64 // records of signatures.idx checked
	CheckpointApplied uint64 // the checkpoint's applied seqno; 0 if there is none
	// CheckpointChecked: the checkpoint's MAC and contents were checked
	// (they need the ledger secret).
	CheckpointChecked bool
}

// DerivedFailure names a derived file that disagrees with the ledger.
type DerivedFailure struct {
	File   string // merkle.tree, signatures.idx or state.checkpoint
	Reason string
}

func (f *DerivedFailure) Error() string { return f.File + ": " + f.Reason }

// CheckDerived checks the derived files of the data directory dir against
// its ledger, reading only (nothing is ever written): every leaf of
// merkle.tree equals the leaf recomputed from the ledger and every record's
// subtree hashes are the hashes of their children; signatures.idx lists
// exactly the ledger's signature transactions, in order; state.checkpoint's
// MAC verifies under the ledger secret and its contents equal a replay of
// the ledger up to its applied seqno. The derived files may lag behind the
// ledger (a node replays the rest at start); they may not disagree with it.
// secret may be nil: the checkpoint is then not checked. live accepts a
// write in progress at the end of the ledger, as audit does. A rekeyed
// ledger needs CheckDerivedKeys, with the service key.
func CheckDerived(dir string, secret []byte, live bool) (*DerivedReport, error) {
	var keys *tables.Keyring
	if secret != nil {
		var err error
		if keys, err = tables.NewKeyring(secret, nil); err != nil {
			return nil, fmt.Errorf("node: %w", err)
		}
	}
	return CheckDerivedKeys(dir, keys, live)
}

// CheckDerivedKeys is CheckDerived with the ledger's keyring (its first
// secret and, to replay entries after a rekey, the service key); nil: the
// checkpoint is not checked.
func CheckDerivedKeys(dir string, keys *tables.Keyring, live bool) (*DerivedReport, error) {
	rep := &DerivedReport{}
	var secret []byte
	if keys != nil {
		secret = keys.OwnFirst() // this service's first secret keys the checkpoint's MAC
	}

	tree, err := merkle.OpenReadOnly(filepath.Join(dir, "merkle.tree"))
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return rep, &DerivedFailure{"merkle.tree", err.Error()}
	}
	if tree != nil {
		defer tree.Close()
	}
	sigs, err := readSigIndexFile(filepath.Join(dir, "signatures.idx"))
	if err != nil {
		return rep, err
	}
	var cp *checkpointFile
	var replay, cpState stateVersion
	if b, err := os.ReadFile(filepath.Join(dir, "state.checkpoint")); err == nil && secret != nil {
		if cp, err = openCheckpoint(secret, b); err != nil {
			return rep, &DerivedFailure{"state.checkpoint", err.Error()}
		}
		rep.CheckpointApplied, rep.CheckpointChecked = cp.Applied, true
		replay = newVersion()
		st := newState()
		st.restore(cp)
		cpState = st.base
	} else if err != nil && !errors.Is(err, os.ErrNotExist) {
		return rep, &DerivedFailure{"state.checkpoint", err.Error()}
	}

	var treeSize uint64
	if tree != nil {
		treeSize = tree.Size()
		if fl := tree.FileLeaves(); fl > treeSize && !live {
			return rep, &DerivedFailure{"merkle.tree", fmt.Sprintf("the records of leaves %d..%d are not consistent (damage, or the torn tail of a crash that ledgerd cuts and replays at start)", treeSize, fl-1)}
		}
		if treeSize > 0 {
			if h, err := tree.Leaf(0); err != nil || h != (merkle.Hash{}) {
				return rep, &DerivedFailure{"merkle.tree", fmt.Sprintf("leaf 0 is not 32 zero bytes (%v)", err)}
			}
			rep.TreeLeaves = 1
		}
	}
	var sigCount uint64
	var last uint64
	walkErr := ledger.Walk(filepath.Join(dir, "ledger"), func(seqno uint64, raw []byte) error {
		last = seqno
		e, err := ledger.ParseEntry(raw)
		if err != nil {
			return fmt.Errorf("node: entry %d: %w", seqno, err)
		}
		if seqno < treeSize {
			leaf, err := leafOf(raw, e)
			if err != nil {
				return fmt.Errorf("node: entry %d: %w", seqno, err)
			}
			stored, err := tree.Leaf(seqno)
			if err != nil {
				return &DerivedFailure{"merkle.tree", err.Error()}
			}
			if stored != leaf {
				return &DerivedFailure{"merkle.tree", fmt.Sprintf("leaf %d is %x, the ledger's entry %d hashes to %x", seqno, stored, seqno, leaf)}
			}
			rep.TreeLeaves++
		}
		if consensus.HasPublicMaps(e) {
			ps, err := signatureOf(e)
			if err != nil {
				return fmt.Errorf("node: entry %d: %w", seqno, err)
			}
			if ps != nil {
				if sigCount < uint64(len(sigs)) && sigs[sigCount] != seqno {
					return &DerivedFailure{"signatures.idx", fmt.Sprintf("record %d names %d, but the signature transaction there is %d", sigCount, sigs[sigCount], seqno)}
				}
				sigCount++
			}
		}
		if cp != nil && seqno <= cp.Applied {
			aead, err := keys.AEAD(replay.rekeys, seqno)
			var w []ledger.MapWrites
			if err == nil {
				w, err = writesOf(e, aead)
			}
			if err != nil {
				return &DerivedFailure{"state.checkpoint", fmt.Sprintf("couldn't replay entry %d: %v", seqno, err)}
			}
			replay.apply(TxID{View: e.View, Seqno: seqno}, w)
			if seqno == cp.Applied {
				if e.View != cp.AppliedView {
					return &DerivedFailure{"state.checkpoint", fmt.Sprintf("applied transaction %d.%d, the ledger has %d.%d", cp.AppliedView, seqno, e.View, seqno)}
				}
				if leaf, err := leafOf(raw, e); err != nil || hex.EncodeToString(leaf[:]) != cp.AppliedLeaf {
					return &DerivedFailure{"state.checkpoint", fmt.Sprintf("the leaf of applied transaction %d differs from the ledger's", seqno)}
				}
				if diff := stateDiff(&cpState, &replay); diff != "" {
					return &DerivedFailure{"state.checkpoint", fmt.Sprintf("its state at %d differs from a replay of the ledger: %s", seqno, diff)}
				}
			}
		}
		return nil
	}, ledger.WalkOptions{AllowTornTail: live})
	if walkErr != nil {
		var df *DerivedFailure
		if errors.As(walkErr, &df) {
			return rep, df
		}
		return rep, walkErr
	}
	if treeSize > last+1 && !live {
		return rep, &DerivedFailure{"merkle.tree", fmt.Sprintf("%d leaves, but the ledger ends at %d", treeSize, last)}
	}
	if uint64(len(sigs)) > sigCount && !live {
		return rep, &DerivedFailure{"signatures.idx", fmt.Sprintf("%d records, but the ledger holds %d signature transactions", len(sigs), sigCount)}
	}
	rep.Signatures = min(sigCount, uint64(len(sigs)))
	if cp != nil && cp.Applied > last && !live {
		return rep, &DerivedFailure{"state.checkpoint", fmt.Sprintf("applied seqno %d is beyond the ledger's end %d", cp.Applied, last)}
	}
	if tree != nil {
		if leaf, found, err := tree.CheckRecords(1, min(treeSize, last+1)); err != nil {
			return rep, &DerivedFailure{"merkle.tree", err.Error()}
		} else if found {
			return rep, &DerivedFailure{"merkle.tree", fmt.Sprintf("the record of leaf %d stores a subtree hash that is not the hash of its children", leaf)}
		}
	}
	return rep, nil
}

// readSigIndexFile reads signatures.idx without opening it for writing; a
// partial last record (a write in progress) is ignored.
func readSigIndexFile(path string) ([]uint64, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, &DerivedFailure{"signatures.idx", err.Error()}
	}
	out := make([]uint64, len(b)/8)
	for i := range out {
		out[i] = binary.LittleEndian.Uint64(b[8*i:])
	}
	return out, nil
}

// stateDiff describes the first difference between the checkpoint's state
// and the replayed one, or returns "".
func stateDiff(cp, replay *stateVersion) string {
	if !slices.EqualFunc(cp.rekeys, replay.rekeys, func(a, b tables.Rekey) bool { return a.Seqno == b.Seqno && string(a.Value) == string(b.Value) }) {
		return fmt.Sprintf("rekeys: checkpoint has %d, ledger %d (or they differ)", len(cp.rekeys), len(replay.rekeys))
	}
	for _, pair := range [2][2]*stateVersion{{cp, replay}, {replay, cp}} {
		a, b := pair[0], pair[1]
		for name, m := range a.maps {
			for k, v := range m {
				if w, ok := b.maps[name][k]; !ok || string(w) != string(v) {
					return fmt.Sprintf("%s[%q]: checkpoint %.80q, ledger %.80q", name, k, valueOr(cp.maps[name], k), valueOr(replay.maps[name], k))
				}
			}
		}
		for id, c := range a.collections {
			if d, ok := b.collections[id]; !ok || d != c {
				return fmt.Sprintf("collection %q: checkpoint %+v, ledger %+v", id, cp.collections[id], replay.collections[id])
			}
		}
	}
	return ""
}

func valueOr(m map[string][]byte, k string) string {
	v, ok := m[k]
	if !ok {
		return "(absent)"
	}
	return string(v)
}
