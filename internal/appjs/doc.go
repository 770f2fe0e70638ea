// Package appjs is the sandbox for user code: user-defined functions and
// their hooks, and (for user-defined endpoints) CCF JavaScript application
// bundles. It runs JavaScript with github.com/dop251/goja under the same
// limits as governance (internal/jsrt: time, live-heap growth, call depth;
// internal/constitution is the governance sandbox).
//
// The API:
//
//	p, err := appjs.Compile(appjs.Module{Name: "main.js", Source: code}, ...)
//	res, err := p.Run(ctx, appjs.Call{Function: "main", Args: args, State: st, Limits: l})
//	// res.Value: the return value as JSON (nil: undefined)
//	// res.Writes: the ccf.kv write set, for the caller to commit in one transaction
//	// res.Logs: console output
//
// Compile takes one ES module or several (a bundle) whose imports name
// each other ("./util.js" relative to the importer, or a path from the
// bundle's root; ".js" and "/index.js" are tried); see jsrt.ModuleScript
// for the ES module subset (named and default exports of declarations,
// import declarations; bindings are not live). A Program is immutable and
// safe for concurrent use; callers keep programs in a Cache keyed by the
// code's identity so that repeated calls compile once.
//
// Run calls one exported function in a fresh runtime, so no state survives
// between calls (CCF's default, without interpreter reuse). Pool.Run gives
// the same semantics faster, on pooled runtimes locked when made and reset
// between calls (reset.go says exactly how, and what code can observe; a
// module that only declares functions and primitive constants at its top
// level is evaluated once per locked runtime and its functions frozen,
// and evaluated again after a call that changed one of its bindings:
// kept.go);
// with Call.Reuse (an endpoint's interpreter_reuse key) its runtimes keep
// module state between the calls of that key, as CCF's interpreter reuse. Arguments are
// JSON-compatible values (see Call.Args); the return value must be one
// (JSON.stringify of it is returned). A resolved promise counts as its
// value. A call fails with an error wrapping ErrTimeLimit, ErrMemoryLimit,
// ErrStackLimit or ErrCanceled when stopped, or a *ScriptError when the code
// throws; a failed call returns no writes.
//
// The globals, as CCF's JavaScript API defines them:
//
//	ccf.kv[table]            get, has, set, delete, clear, forEach, size over
//	                         ArrayBuffer keys and values. Reads see Call.State
//	                         (the node's latest executed state) overlaid
//	                         with the call's own writes; writes are buffered
//	                         and returned in Result.Writes. Only application
//	                         tables (AppTable) are reachable: CCF's and
//	                         ledgerd's tables (public:ccf.*, ccf.*,
//	                         public:ledgerd.*, ledgerd.*) throw.
//	ccf.strToBuf, ccf.bufToStr, ccf.jsonCompatibleToBuf, ccf.bufToJsonCompatible
//	console.log, info, warn, error, debug
//	                         captured in Result.Logs (bounded by Call.MaxLog),
//	                         never written to the server's log
//
//	ccf.crypto.digest        SHA-256, SHA-384, SHA-512
//	ccf.crypto.isValidX509CertBundle, ccf.pemToId
//	ccf.crypto.sign, verifySignature, generateAesKey, generateRsaKeyPair,
//	generateEcdsaKeyPair, generateEddsaKeyPair, wrapKey, unwrapKey,
//	isValidX509CertChain, pubPemToJwk, pemToJwk, pubRsaPemToJwk,
//	rsaPemToJwk, pubEddsaPemToJwk, eddsaPemToJwk
//	                         crypto.go; CCF's deprecated aliases on ccf
//	                         (ccf.digest, ccf.generateAesKey, ...) too
//	ccf.rpc.setApplyWrites   recorded in Result.ApplyWrites
//	ccf.rpc.setClaimsDigest  recorded in Result.ClaimsDigest (an ArrayBuffer
//	                         of exactly 32 bytes, else it throws; throws in a
//	                         readonly call)
//
// For CCF endpoints (endpoint.go, used by user-defined endpoints): a
// *Request argument is CCF's request object (method, url, route, path,
// query, params, headers, hostname, body.text/json/arrayBuffer, caller);
// with Call.Response the return value is read as CCF's response object
// ({statusCode, headers, body}: string, ArrayBuffer or JSON) into
// Result.Response; with Call.ReadOnly every ccf.kv write throws (a
// readonly endpoint). ACL's role tables (public:confidentialledger.*) are
// readable, never writable. Exported lists a module's exported functions.
//
// Not provided: the rest of CCF's ccf object (secp256k1 keys, RSA-PSS;
// ccf.historical, ccf.host, ccf.network, ccf.gov...), timers, and modules
// outside the program (import "@microsoft/ccf-app" must be bundled).
package appjs
