package tables

import (
	"github.com/ledgerd/ledgerd/internal/ledger"
	"github.com/ledgerd/ledgerd/receipt"
)

// ClaimsDigestMap is the private map in which a transaction of a
// user-defined endpoint records the claims digest the endpoint set with
// ccf.rpc.setClaimsDigest: key = SingletonKey, value = the 32-byte digest
// (ClaimsDigestSize), written in that transaction only. User code cannot
// write it (ledgerd.* tables are reserved), so a transaction's claims digest
// is either its entry's LedgerEntryV1 digest, the one its endpoint set, or
// zeros (EntryClaimsDigest).
const ClaimsDigestMap = "ledgerd.internal.claims_digest"

// ClaimsDigestSize is the size of a claims digest (SHA-256, as CCF's).
const ClaimsDigestSize = 32

// ClaimsDigestWrites is the write recording an endpoint-set claims digest
// (ClaimsDigestMap) in a transaction's write set.
func ClaimsDigestWrites(digest [32]byte) ledger.MapWrites {
	return ledger.MapWrites{Name: ClaimsDigestMap, Writes: []ledger.KV{{Key: SingletonKey, Value: digest[:]}}}
}

// EntryClaimsDigest is the claims digest of a transaction with the given
// (decrypted) writes: the LedgerEntryV1 claims digest
// (receipt.LedgerEntryClaimsDigest) of the collection, contents and secret
// key of a user entry that has a key (one write in EntriesMap and one in
// EntryClaimsMap, under the same collection), else zeros (CCF's default).
// A transaction that records a claims digest its user-defined endpoint set
// (ccf.rpc.setClaimsDigest: one 32-byte write in ClaimsDigestMap) has that
// digest instead. The node computes it when it executes a transaction, and
// the audit recomputes it from the decrypted write set: it is a function of
// the write set alone, so every node, snapshot and auditor agrees on it.
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
		case ClaimsDigestMap:
			if v := m.Writes[0].Value; len(v) == ClaimsDigestSize {
				return [32]byte(v)
			}
		}
	}
	if entry == nil || key == nil || string(entry.Key) != string(key.Key) {
		return [32]byte{}
	}
	return receipt.LedgerEntryClaimsDigestBytes(entry.Key, entry.Value, key.Value)
}
