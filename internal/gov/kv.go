package gov

import (
	"github.com/ledgerd/ledgerd/internal/constitution"
	"github.com/ledgerd/ledgerd/internal/ledger"
)

// KVOf returns st as the constitution's KV, read-only: the engine buffers
// every write in a constitution.Tx over it and turns the Tx into the write
// set of one transaction (TxWrites), so Set and Delete are never called.
func KVOf(st State) constitution.KV { return stateKV{st} }

type stateKV struct{ st State }

func (k stateKV) Get(table string, key []byte) ([]byte, bool) { return k.st.Get(table, key) }
func (k stateKV) ForEach(table string, fn func(key, value []byte) bool) {
	k.st.Range(table, fn)
}
func (stateKV) Set(string, []byte, []byte) { panic("gov: write to the read-only state") }
func (stateKV) Delete(string, []byte)      { panic("gov: write to the read-only state") }

// StateOf returns a KV (a Tx: the state with the writes buffered so far)
// as a State.
func StateOf(kv constitution.KV) State { return kvState{kv} }

type kvState struct{ kv constitution.KV }

func (s kvState) Get(name string, key []byte) ([]byte, bool) { return s.kv.Get(name, key) }
func (s kvState) Range(name string, fn func(key, value []byte) bool) {
	s.kv.ForEach(name, fn)
}

// TxWrites returns a Tx's buffered writes as the write set of one
// transaction, tables and keys in ascending order (deterministic bytes).
func TxWrites(tx *constitution.Tx) []ledger.MapWrites {
	var out []ledger.MapWrites
	for _, w := range tx.Writes() {
		if len(out) == 0 || out[len(out)-1].Name != w.Table {
			out = append(out, ledger.MapWrites{Name: w.Table})
		}
		m := &out[len(out)-1]
		if w.Deleted {
			m.Removes = append(m.Removes, w.Key)
		} else {
			m.Writes = append(m.Writes, ledger.KV{Key: w.Key, Value: w.Value})
		}
	}
	return out
}

// ApplyWrites buffers a write set in a Tx.
func ApplyWrites(tx *constitution.Tx, ws []ledger.MapWrites) {
	for _, m := range ws {
		for _, kv := range m.Writes {
			tx.Set(m.Name, kv.Key, kv.Value)
		}
		for _, k := range m.Removes {
			tx.Delete(m.Name, k)
		}
	}
}
