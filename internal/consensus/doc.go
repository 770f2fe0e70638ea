// Package consensus glues go.etcd.io/raft/v3 to the ledger.
//
// The Raft log IS the ledger: Raft index = CCF seqno, Raft term = CCF view.
// There is no second copy of the log. [Storage] implements raft.Storage by
// reading CCF ledger entries back from the ledger files, and keeps the small
// Raft hard state (term, vote, commit) and configuration in a file of its own
// ([HardStateFile]).
//
// Raft entries carry the serialised CCF entry as their data, with two
// exceptions that Raft itself creates: the empty entry a new leader appends,
// and configuration changes. Both are turned into deterministic CCF
// transactions by the node before they are written (see [ConfChangeMap]), so
// every node writes identical bytes, and [Storage.Entries] turns them back
// into what Raft expects.
//
// The Ready loop that drives the RawNode lives in package node: it is the
// durability protocol, and it is one ordered function there.
package consensus
