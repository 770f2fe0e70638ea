// Package cose parses, verifies and builds CCF governance request envelopes:
// COSE_Sign1 messages (RFC 9052 §4.2) signed by a member with ECDSA, whose
// protected headers carry COSE's alg (1) and kid (4, the member id) and
// CCF's ccf.gov.msg.type, ccf.gov.msg.created_at and, for ballots and
// withdrawals, ccf.gov.msg.proposal_id (CCF's
// src/endpoints/authentication/cose_auth.cpp and python/src/ccf/cose.py).
//
// The CBOR underneath is this package's own minimal, strict decoder and
// encoder (cbor.go): definite lengths, preferred serialization, no
// duplicate map keys, lengths checked before allocating, bounded depth.
//
// The package also holds the checks a node applies to a governance request
// (message type, path ids, created_at) and CCF's proposal id formula. It is
// built for issue 10 and not yet used by the node.
package cose
