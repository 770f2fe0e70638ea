// Command ledgerd runs a ledgerd node: a self-hostable ledger that speaks
// the Azure Confidential Ledger (ACL) data-plane API, so that existing ACL
// clients (azure-confidentialledger for Python, @azure-rest/confidential-ledger
// for JavaScript) work against it unchanged.
//
// # Starting
//
//	ledgerd [--data DIR] [--listen HOST:PORT] [flags]
//
// The first start in an empty data directory founds a new single-node
// service and writes, besides the node's own state:
//
//	DIR/service.pem  the service certificate: clients pin it
//	                 (Python: ledger_certificate_path=DIR/service.pem)
//	DIR/admin.pem    certificate and private key, in one PEM file (mode
//	                 0600), of the initial Administrator user: the file
//	                 Python's ConfidentialLedgerCertificateCredential takes
//	DIR/member0.pem  certificate and private key of the first consortium
//	                 member
//	DIR/member0_enc_privk.pem, DIR/member0_enc_pubk.pem
//	                 the member's RSA recovery encryption key pair (the
//	                 private key mode 0600): member0 is a recovery member
//	                 and holds a share of the ledger secret, encrypted to
//	                 this key (GET /gov/recovery/encrypted-shares/{memberId})
//
// The administrator and the member, any --user, and the default
// constitution are written in the genesis transaction. Later starts reuse
// the directory: they never regenerate admin.pem, member0.pem or its keys (if you
// moved them away, they stay away), and --user flags no longer matter;
// manage users through the API (PATCH /app/users/{userId}) instead.
//
// On start, ledgerd prints the address it listens on, the ledger id, the
// service certificate's path and, on the first start, the credential files
// it created. It stops gracefully on SIGINT or SIGTERM: it stops accepting
// connections, lets requests in flight finish (up to 10s), and closes the
// node, which flushes and checkpoints its files.
//
// # Flags
//
//	--data DIR                 data directory (default ./data)
//	--listen HOST:PORT         HTTPS address (default 127.0.0.1:8443; port 0 picks a free port)
//	--config FILE              JSON file with any of the keys below; flags override it
//	--ledger-id ID             name reported by /ledgerIdentity (default "ledger")
//	--san-dns NAME             extra DNS name for the node certificate (repeatable)
//	--san-ip IP                extra IP address for the node certificate (repeatable)
//	--signature-interval D     longest wait for a signature, e.g. 5ms (default 5ms)
//	--sync-interval D          shortest time between two fsyncs of the ledger (default 2ms; 0: none).
//	                           A write is answered once sequenced (Pending) and is durable once
//	                           Committed; this group commit delays commit by at most D, and saves
//	                           the CPU of an fsync per batch (~150µs on a small VM)
//	--election-timeout D       Raft's election timeout (default 1s, between 10ms and 1h): a follower that
//	                           hears no primary for D to 2D stands for election, and a primary that hears
//	                           from no quorum for D steps down (CheckQuorum). Raft ticks every 10ms (a
//	                           tenth of D below 100ms); D is rounded down to whole ticks; the primary's
//	                           heartbeat is every D/10. A primary's death is noticed within 2D
//	--commit-window D          the primary sequences new writes only while its oldest write Raft has not
//	                           committed is younger than D (default 20ms, between 1ms and 1m): a larger
//	                           window trades append→Committed latency for throughput (docs/benchmarks.md)
//	--chunk-size BYTES         ledger chunk size (default 5000000)
//	--snapshot-tx-interval N   take a snapshot at the first committed signature of every N seqnos (CCF's
//	                           snapshots.tx_count, default 10000; 0: none): Data/snapshots/
//	                           snapshot_<seqno>_<evidence seqno>.committed, the 5 latest kept
//	--fetch-history            with --join: besides the latest snapshot, fetch the committed ledger chunks
//	                           before it from a peer, verified against the snapshot's Merkle tree, so that
//	                           the node serves the whole history (default: from the snapshot on only)
//	--max-connections N        most client connections open at once (default: RLIMIT_NOFILE minus a
//	                           reserve of a quarter, at least 128 and at most 1024, for the ledger's own
//	                           files; a larger N is refused). At the limit a new connection replaces
//	                           the longest idle one that never had a request authorised, else it is
//	                           closed. Connections idle 5s without an authorised request are closed
//	--user CERTFILE:ROLE       initial user from a PEM certificate; ROLE is Reader,
//	                           Contributor or Administrator (repeatable; first start only)
//	--aad-tenant TENANT        accept the Azure AD tokens of tenant TENANT (its directory id, a GUID)
//	                           as ACL does: issuers https://sts.windows.net/TENANT/ and
//	                           https://login.microsoftonline.com/TENANT/v2.0, audience
//	                           https://confidential-ledger.azure.com (with or without a trailing /),
//	                           keys from https://login.microsoftonline.com/TENANT/discovery/v2.0/keys,
//	                           cached and refreshed hourly. A user's id is its oid.
//	--jwt-issuer ISS,AUD,JWKS[,NAMESPACE]
//	                           accept bearer JWTs from issuer ISS for audience AUD, with
//	                           keys from JWKS, a file or an https URL (repeatable). A user's id
//	                           is the token's oid (else sub), or NAMESPACE:oid with a NAMESPACE
//	                           (letters, digits, '.', '-', '_'). Only one issuer (or the
//	                           --aad-tenant's two) may go without a NAMESPACE, so that one id
//	                           never names users of two issuers
//	                           --aad-tenant and --jwt-issuer seed the genesis only: JWT issuers
//	                           are governed state (see below)
//	--jwt-max-lifetime D       longest time a bearer JWT may be valid: exp - iat, or exp - now
//	                           for a token without iat (default 24h)
//	--start-opening            found the service in CCF's status Opening rather than Open: every
//	                           /app/* request is answered 404 FrontendNotOpen, governance (/gov/*)
//	                           and the node's endpoints are served, until the members pass a
//	                           transition_service_to_open proposal (next_service_identity: the
//	                           service certificate). First start only: a later start never changes
//	                           the status. Without it the service is Open at once
//	--log-level LEVEL          debug, info, warn or error (default info)
//	--log-format FORMAT        text or json (default text), on standard error
//	--version                  print the version and exit
//	--unsafe-accept-lost-tail  start even though committed transactions are missing from the
//	                           ledger (see "Start-up checks"); command line only, never the default
//
// The node certificate's names are always localhost, 127.0.0.1 and the
// listen host (unless it is unspecified, as in 0.0.0.0), plus --san-dns and
// --san-ip: clients check the name they connect to against them.
//
// The configuration file has the flags' names as keys, lists for
// repeatable flags, and a string for durations:
//
//	{"data": "/var/lib/ledgerd", "listen": "0.0.0.0:443", "ledger-id": "contoso",
//	 "san-dns": ["contoso.example.com"], "signature-interval": "10ms",
//	 "aad-tenant": "72f988bf-86f1-41af-91ab-2d7cd011db47",
//	 "jwt-issuer": ["https://idp.partner.example/,https://confidential-ledger.azure.com,https://idp.partner.example/keys,partner"]}
//
// Besides the ACL API (see package internal/api), the node serves GET
// /healthz (liveness, no credentials), CCF's node endpoints (/node/state,
// /node/network, /node/network/nodes, /node/commit, /node/tx, /node/version,
// /node/quotes: no credentials; /node/consensus: any ledger user or
// consortium member), and GET /metrics (Prometheus text format) to any
// ledger user or consortium member.
//
// # JWT issuers
//
// The trusted JWT issuers and their keys are governed state, as in CCF
// (public:ccf.gov.jwt.issuers, public:ccf.gov.jwt.public_signing_keys_metadata_v2),
// read on every request from the latest state. --aad-tenant and
// --jwt-issuer write the genesis transaction's issuers: the keys of a JWKS
// file go in the ledger (governed keys; keys it lists that can't verify
// signatures are left out with a warning); a JWKS URL becomes the issuer's
// jwks_uri, which every node fetches keys from (cached, refreshed hourly and
// on an unknown kid; not in the ledger). Later starts never write them
// again: if the flags differ from the governed issuers (another issuer,
// audience, namespace, URL or JWKS file contents), ledgerd logs a warning
// and the governed state decides. Dropping a flag removes nothing either:
// the issuer stays trusted until a remove_jwt_issuer proposal. Change
// issuers with the constitution's set_jwt_issuer,
// set_jwt_public_signing_keys and remove_jwt_issuer.
//
// # Start-up checks
//
// ledgerd refuses to start, with a message that says what to restore, when:
// the ledger secret does not authenticate the ledger's last entries (a wrong
// ledger.secret); committed transactions are missing from the ledger (its
// end lies before the commit point recorded in raft.state, the .committed
// chunk names or state.checkpoint: a lost or truncated chunk); raft.state is
// missing or unreadable on a node of a multi-node service (a single-node
// service rebuilds it from the ledger, with a warning); or another process
// holds the data directory. Derived files (merkle.tree, signatures.idx,
// state.checkpoint) that do not match the ledger are rebuilt from it, with a
// warning.
//
// # Using it
//
// With Python:
//
//	from azure.confidentialledger import ConfidentialLedgerClient, ConfidentialLedgerCertificateCredential
//	client = ConfidentialLedgerClient("https://localhost:8443",
//	    ConfidentialLedgerCertificateCredential("data/admin.pem"),
//	    ledger_certificate_path="data/service.pem")
//	client.create_ledger_entry({"contents": "hello"})
//
// # Exit codes
//
// 0 after a clean shutdown, 1 on a failure (including a node that stopped
// after a fatal error), 2 on a usage error.
package main
