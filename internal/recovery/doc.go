// Package recovery splits the ledger secret among the consortium's recovery
// members, as CCF's ShareManager does (src/node/share_manager.h), so that a
// threshold of them can restore a service whose nodes have all lost it
// (issue 11, the network's --recover).
//
// A fresh 32-byte wrapping key encrypts the latest ledger secret (AES-256-GCM,
// zero IV: the key is used once). The wrapping key is split k-of-n with
// Shamir's scheme over GF(2^8), one byte at a time (shamir.go); each share is
// encrypted to its member's RSA encryption key with RSA-OAEP (SHA-256) and
// stored, with the wrapped secret, in CCF's public:ccf.internal.recovery_shares
// (shares.go). A member reads its share at GET
// /gov/recovery/encrypted-shares/{memberId}, decrypts it with its private
// encryption key and submits it at POST /gov/recovery/members/{memberId}:recover;
// once k shares are in, Recover combines them into the wrapping key and
// unwraps the ledger secret.
//
// The package uses the standard library only. Its State is the read side
// of the governance state (gov.State and *node.State implement it); it does
// not import package gov, so that gov may use it.
package recovery
