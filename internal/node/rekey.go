package node

import (
	"github.com/ledgerd/ledgerd/internal/ledger"
)

// RekeyWrites returns the write set of a ledger rekey (CCF's
// trigger_ledger_rekey): a fresh 32-byte ledger secret, wrapped with the
// key derived from the service key, in tables.EncryptedLedgerSecretsMap,
// and the latest secret encrypted with the new one in
// tables.HistoricalLedgerSecretMap. Every transaction after the one that
// carries these writes (its seqno + 1 on, CCF's rule) is encrypted with the
// new secret, on the primary and on every node that appends it.
//
// Call it inside Exec's decide (it reads the latest executed state's
// secrets) and submit exactly these writes, alone or with other writes of
// the same transaction. If a rollback or another rekey changes the latest
// secret before the transaction is sequenced, it fails with an error and
// nothing is written: decide again.
func (n *Node) RekeyWrites() ([]ledger.MapWrites, error) {
	return n.keys.RekeyWrites(n.state.rekeys(), nil)
}

// RekeySecret returns the ledger secret that a tables.EncryptedLedgerSecretsMap
// value (what RekeyWrites writes, or what the state holds after a rekey)
// wraps: governance shares it among the recovery members.
func (n *Node) RekeySecret(value []byte) ([]byte, error) {
	return n.keys.UnwrapValue(value)
}

// RequestLedgerChunk makes the next signature transaction end the current
// chunk file (CCF's trigger_ledger_chunk: the chunk ends after the next
// signature), as if the chunk had reached ChunkSize.
func (n *Node) RequestLedgerChunk() { n.chunkRequested.Store(true) }
