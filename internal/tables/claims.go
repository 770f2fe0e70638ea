package tables

import (
	"github.com/ledgerd/ledgerd/internal/ledger"
	"github.com/ledgerd/ledgerd/receipt"
)

// EntryClaimsDigest is the claims digest of a transaction with the given
// (decrypted) writes: the LedgerEntryV1 claims digest
// (receipt.LedgerEntryClaimsDigest) of the collection, contents and secret
// key of a user entry that has a key (one write in EntriesMap and one in
// EntryClaimsMap, under the same collection), else zeros (CCF's default).
// The node computes it when it executes an entry, and the audit recomputes
// it from the decrypted write set: it is a function of the write set alone.
func EntryClaimsDigest(writes []ledger.MapWrites) [32]byte {
	var entry, key *ledger.KV
	for i := range writes {
		m := &writes[i]
		if len(m.Writes) != 1 {
			continue
		}
		switch m.Name {
		case EntriesMap:
			entry = &m.Writes[0]
		case EntryClaimsMap:
			key = &m.Writes[0]
		}
	}
	if entry == nil || key == nil || string(entry.Key) != string(key.Key) {
		return [32]byte{}
	}
	return receipt.LedgerEntryClaimsDigestBytes(entry.Key, entry.Value, key.Value)
}
