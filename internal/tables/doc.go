// Package tables names the CCF tables (maps) that ledgerd writes and defines
// the values of the internal ones, so that the node that writes them and
// the auditor that checks them share one definition.
//
// Map names follow CCF (src/service/tables/*.h): a name starting with
// "public:" is written in the clear in the ledger's public domain; any other
// map is private and encrypted with the ledger secret.
package tables
