// Package ledger implements CCF's ledger: the serialised entry format and the
// chunk files that hold the entries on disk, byte for byte as Microsoft CCF
// writes them (ccf-format.md §1).
//
// It has two concerns, in two groups of files:
//
//   - The entry format (entry.go, domain.go): [AppendEntry] serialises a
//     transaction as one CCF ledger entry (§1.3–1.5): an 8-byte entry header,
//     the AES-256-GCM header (tag and IV), the public domain in plaintext and
//     the private domain encrypted with the ledger secret, the public domain
//     being the additional authenticated data. [ParseEntry], [Entry.PublicDomain],
//     [Entry.Decrypt] and [Entry.Authenticate] read entries back; they take
//     untrusted bytes and never panic.
//
//   - The chunk files (ledger.go, sync.go, read.go, truncate.go, recover.go,
//     walk.go): a [Ledger] is a directory of files ledger_<start>,
//     ledger_<start>-<end> and ledger_<start>-<end>.committed (§1.1), each an
//     8-byte positions-table offset, the entries back to back, and, once
//     complete, a table of uint32 entry offsets (§1.2). [Open] recovers a
//     directory after a crash, [Walk] verifies one offline for auditors.
//
// The ledger does not know the ledger secret and never decrypts: it stores and
// returns raw entries, reading only their headers and IVs (seqno and view).
//
// # Durability
//
// Appended entries wait in memory, readable at once, until Sync writes each
// touched file with one write, fsyncs it, and renames a chunk that ended
// (table first, then header, then fsync, then rename, then fsync of the
// directory). A chunk is durable before the next file is created, so after a
// crash only the last file can be torn, and Open repairs exactly the states
// that Sync and Truncate can leave (see recoverOpen). Memory holds the
// offsets of the open chunk's entries, one small record per completed chunk,
// an LRU of open completed chunks with their positions tables, and the view
// history (one record per view): nothing grows with the number of entries.
package ledger
