// Package constitution is the sandbox that loads and runs a CCF
// constitution and ballots: JavaScript, run by github.com/dop251/goja (pure
// Go). It is built but not yet wired: nothing in ledgerd calls it yet
// (issue 10's governance will).
//
// A constitution is ES module text exporting validate(input),
// resolve(proposal, proposerId, votes) and apply(proposal, proposalId), as
// in CCF; a ballot exports vote(proposal, proposerId). goja has no ES
// modules, so the module text is turned into a script deterministically
// (see moduleScript). The default constitution ships as .js files in
// default/ (Default concatenates them, as CCF concatenates a
// constitution's files).
//
// The globals a call sees are CCF's ccf object, as far as the default
// constitution uses it:
//
//	ccf.kv[table]             get, has, set, delete, clear, forEach, size over
//	                          ArrayBuffer keys and values, backed by a KV
//	                          (validate: none; resolve, vote: read-only;
//	                          apply: writes public:ccf.gov.* and
//	                          public:ledgerd.* except public:ledgerd.internal.*,
//	                          buffered in a Tx); only public: tables are read
//	ccf.strToBuf, ccf.bufToStr, ccf.jsonCompatibleToBuf, ccf.bufToJsonCompatible
//	ccf.pemToId               hex SHA-256 of the first certificate's DER
//	ccf.crypto.isValidX509CertBundle, ccf.crypto.digest("SHA-256", buf)
//	ccf.node.triggerLedgerRekey, triggerRecoverySharesRefresh,
//	  transitionServiceToOpen, triggerSnapshot, triggerLedgerChunk,
//	  triggerACMERefresh; ccf.setJwtPublicSigningKeys,
//	  ccf.removeJwtPublicSigningKeys, ccf.refreshAppBytecodeCache
//	                          recorded as Effects (apply only), returned by
//	                          Apply for the caller to carry out
//	ccf.network.generateNetworkCertificate, generateEndorsedCertificate,
//	  getLatestLedgerSecretSeqno
//	                          through a Host (Constitution.WithHost); they
//	                          throw without one
//	console.log and friends   do nothing
//
// Not provided (a constitution that calls them gets a TypeError): the rest
// of CCF's ccf.crypto (sign, verifySignature, pubPemToJwk, generateRsaKeyPair,
// wrapKey, ...), ccf.historicalState, ccf.rpc, ccf.host, ccf.snp and the
// ccf.enableUntrustedDateTime family.
//
// Every call runs in a fresh runtime within Limits (time, live-heap growth,
// call depth; see Limits for exactly what is bounded). A call that throws
// or exceeds a limit returns an error and applies nothing.
package constitution
