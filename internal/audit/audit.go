// Package audit verifies a ledger directory offline, like CCF's full ledger
// validation (python/src/ccf/ledger.py, LedgerValidator at level FULL): every
// entry parses, every Merkle leaf is recomputed, and every signature
// transaction's root must equal the recomputed tree's root and verify under
// a node certificate endorsed by the service certificate.
//
// With the ledger secrets (Options.Keyring: the first secret and the service
// key that unwraps those of rekeys), every entry is also authenticated with
// the secret of its seqno (its AES-GCM tag covers the public domain and the
// ciphertext), so a modified entry is named exactly; without it, a modification is detected at the next signature and
// the entry is named from the node's Merkle tree file if one is given.
//
// Leaves are computed from the entry as stored, without decrypting it: the
// write set digest is SHA-256 of the whole entry, and the commit evidence
// and claims digests are read from its public header (CCF: leaf =
// H(write set digest || H(commit evidence) || claims digest)). With the
// ledger secrets and Options.Claims, every entry is also decrypted and its claims digest
// recomputed from its write set (tables.EntryClaimsDigest): a user entry
// with a claims key must carry the LedgerEntryV1 claims digest of its
// collection, contents and key, a transaction of a user-defined endpoint
// that set a claims digest (ccf.rpc.setClaimsDigest) the digest its write
// set records (tables.ClaimsDigestMap), a snapshot evidence transaction the
// digest of the snapshot it records (public, checked without the secrets
// too), every other transaction zeros. Without the secrets, the entries' claims digests
// are covered by the signatures only (as is the rest of the leaf).
package audit

import (
	"bytes"
	"crypto/cipher"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"

	"github.com/ledgerd/ledgerd/internal/ledger"
	"github.com/ledgerd/ledgerd/internal/merkle"
	"github.com/ledgerd/ledgerd/internal/tables"
	"github.com/ledgerd/ledgerd/receipt"
)

// Options configures an audit.
type Options struct {
	// ServiceCert is the service identity the signatures must chain to.
	// Required: an auditor must know whom it trusts.
	ServiceCert *x509.Certificate
	// LedgerSecret, if set, authenticates every entry's AES-GCM tag up to
	// the first rekey (all of them if the ledger was never rekeyed).
	LedgerSecret []byte
	// Keyring, if set, replaces LedgerSecret: it finds each entry's ledger
	// secret, through rekeys too when it holds the service key
	// (tables.NewKeyring), so that every entry is authenticated with the
	// secret of its seqno.
	Keyring *tables.Keyring
	// TreeLeaf, if set, returns the node's stored Merkle leaf for a seqno; it
	// is used only to name the modified entry when a root does not match.
	TreeLeaf func(seqno uint64) (merkle.Hash, bool)
	// Progress is called with bytes done and total as chunks are read.
	Progress func(done, total int64)
	// Workers hashes entries in parallel. Default GOMAXPROCS.
	Workers int
	// Live audits the directory of a running node: bytes after the last
	// whole entry of the open chunk (a write in progress) are reported in
	// Report.TornTail instead of failing the audit. Off, they are a Failure:
	// a stopped node's ledger has none once it has been opened again.
	Live bool
	// Start, if set, audits a ledger that starts after a snapshot (a node
	// that joined from one): the caller verified the snapshot; the ledger
	// must start at Start.Seqno+1 and every signature after it must verify
	// against the tree that goes on from the snapshot's right edge.
	Start *Start
	// Previous, for a recovered service's ledger (ledgerd --recover), once
	// or more: the previous services, oldest first. The seqnos up to
	// Previous[i].End (after Previous[i-1].End) are the i-th previous
	// service's, whose signatures verify against its ServiceCert. Their
	// entries are authenticated if the Keyring holds the recovered secrets
	// (tables.Keyring.SetPrevious), else not (Report.Authenticated false).
	// Every previous service identity that a recovery transaction of the
	// ledger records must be one of them, and must be covered by a
	// verified signature after that transaction (the next service's, which
	// vouches for it).
	Previous []Previous
	// Claims, with the ledger secrets, also decrypts every entry and
	// recomputes its claims digest from its write set (see the package
	// comment). It costs one more keyed hash of every entry's contents, about
	// half the audit's throughput, so it is asked for (ledgerctl audit
	// --claims); without it, a leaf's claims digest is covered by the
	// signatures like the rest of the leaf, and an entry's AES-GCM tag still
	// authenticates it. A snapshot evidence transaction's claims digest is
	// checked either way.
	Claims bool
}

// Previous is a previous service of a recovered ledger.
type Previous struct {
	ServiceCert *x509.Certificate
	End         uint64
	// CertPEM, if set, is ServiceCert as PEM: the recovery transaction
	// that records this service, if the ledger holds it, must record
	// exactly it.
	CertPEM string
}

// Report summarises a successful audit.
type Report struct {
	Entries       uint64 // transactions verified
	Signatures    uint64 // signature transactions verified
	FirstSeqno    uint64
	LastSeqno     uint64
	LastSigned    uint64 // seqno of the last signature: entries after it are not yet covered
	Bytes         int64  // bytes of entries hashed
	Authenticated bool   // every entry's GCM tag was checked with the ledger secret of its seqno
	// AuthenticatedTo, when a secret was given but Authenticated is false,
	// is the last seqno authenticated: a rekey there whose secret the
	// keyring cannot unwrap (no service key) ended authentication.
	AuthenticatedTo uint64
	Rekeys          uint64 // rekey transactions met
	// Claims is the number of ledger entries whose application claims
	// digest was recomputed from their decrypted write set and matched
	// their leaf's (the entries authenticated; the other transactions
	// authenticated were checked to carry zeros).
	Claims uint64
	Root   merkle.Hash
	// TornTail, with Options.Live, describes bytes after the last whole
	// entry (a write in progress), which were not audited.
	TornTail *ledger.TornTail
}

// Failure names the first bad seqno and what is wrong with it.
type Failure struct {
	Seqno  uint64
	Reason string
}

func (f *Failure) Error() string { return fmt.Sprintf("seqno %d: %s", f.Seqno, f.Reason) }

// item is one entry on its way through the pipeline.
type item struct {
	seqno uint64
	raw   []byte
	view  uint64
	leaf  merkle.Hash
	sig   *tables.PrimarySignature
	certs []nodeCert // endorsed node certificates this entry writes
	err   error
	// authWith is the AEAD prepare authenticated the entry with (the
	// secret of its seqno as the rekeys checked so far knew it) and
	// authErr the outcome; check redoes it if the secret was another.
	authWith cipher.AEAD
	authErr  error
	// claimsHave is the claims digest of the entry's header (the leaf's
	// third component); claimsWant the one its decrypted write set gives,
	// and keyed whether that is a user entry with a claims key. Set only
	// when the entry is decrypted (with authWith).
	claimsHave, claimsWant [32]byte
	keyed                  bool
	// evidence is the snapshot digest a snapshot evidence transaction
	// records in its public maps: its claims digest (CCF's design).
	evidence *[32]byte
	rekey    []byte // the EncryptedLedgerSecretsMap value of a rekey
	// prev is the previous service identity a recovery transaction records.
	prev *tables.PreviousService
}

type nodeCert struct{ id, pem string }

// Start is what an audit of a ledger that starts after a snapshot at Seqno
// takes from the (verified) snapshot.
type Start struct {
	Seqno     uint64
	Edge      []merkle.Hash     // right edge of the tree of leaves [0, Seqno]
	Rekeys    []tables.Rekey    // the rekeys up to Seqno
	NodeCerts map[string]string // node id -> endorsed certificate PEM, as of Seqno
}

// Dir audits the ledger chunk files in dir.
func Dir(dir string, opts Options) (*Report, error) {
	if opts.ServiceCert == nil {
		return nil, errors.New("audit: the service certificate is required")
	}
	keys := opts.Keyring
	if keys == nil && opts.LedgerSecret != nil {
		var err error
		if keys, err = tables.NewKeyring(opts.LedgerSecret, nil); err != nil {
			return nil, fmt.Errorf("audit: %w", err)
		}
	}
	a := &auditor{opts: opts, keys: keys, nodes: map[string]string{}, verifier: tables.NewVerifier(opts.ServiceCert)}
	for i, p := range opts.Previous {
		if i > 0 && p.End <= opts.Previous[i-1].End {
			return nil, errors.New("audit: the previous services are not in seqno order")
		}
		a.prevVerifiers = append(a.prevVerifiers, tables.NewVerifier(p.ServiceCert))
	}
	a.rekeys.Store(&[]tables.Rekey{})
	a.rep.Authenticated = keys != nil
	if st := opts.Start; st != nil {
		f, err := merkle.FrontierOf(st.Seqno+1, st.Edge)
		if err != nil {
			return nil, fmt.Errorf("audit: the snapshot's tree: %w", err)
		}
		a.front = *f
		list := append([]tables.Rekey(nil), st.Rekeys...)
		a.rekeyList = list
		a.rekeys.Store(&list)
		for id, pem := range st.NodeCerts {
			a.nodes[id] = pem
		}
		a.prevSig = st.Seqno
	} else {
		a.front.Append(merkle.Hash{}) // leaf 0: 32 zero bytes
	}
	if err := a.run(dir); err != nil {
		return &a.rep, err
	}
	if err := a.checkTail(); err != nil {
		return &a.rep, err
	}
	if a.lastRecovery > a.rep.LastSigned {
		return &a.rep, &Failure{Seqno: a.lastRecovery, Reason: fmt.Sprintf("the previous service identity this recovery transaction records is covered by no signature (the last is at %d)", a.rep.LastSigned)}
	}
	if a.rep.Entries > 0 {
		a.rep.Root = a.front.Root()
	}
	return &a.rep, nil
}

type auditor struct {
	opts Options
	keys *tables.Keyring
	// rekeys are the rekeys checked so far, in order (check's), and a
	// snapshot of them for prepare's workers.
	rekeyList []tables.Rekey
	rekeys    atomic.Pointer[[]tables.Rekey]
	noAuth    bool // a rekey's secret could not be unwrapped: authentication ended
	front     merkle.Frontier
	rep       Report
	nodes     map[string]string // node id -> endorsed certificate PEM
	verifier  *tables.Verifier
	// prevVerifiers check the previous services' signatures (Options.Previous).
	prevVerifiers []*tables.Verifier
	// lastRecovery is the seqno of the last recovery transaction met: a
	// signature after it must verify.
	lastRecovery uint64
	prevSig      uint64
	// Leaves since the last verified signature, from seqno recentBase on,
	// to name a modified entry when the next root does not match.
	recentBase uint64
	recent     []merkle.Hash
}

const (
	batchSize = 512
	arenaSize = 1 << 20
)

// run pipelines the walk: the walker batches entries, workers hash and
// authenticate them in parallel, and check consumes batches in order.
func (a *auditor) run(dir string) error {
	workers := a.opts.Workers
	if workers <= 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	type batch struct {
		items []item
		arena []byte // copies of the entries: Walk's raw is valid only during its callback
		done  chan struct{}
	}
	work := make(chan *batch, workers*2)
	ordered := make(chan *batch, workers*4)
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for b := range work {
				for i := range b.items {
					a.prepare(&b.items[i])
				}
				close(b.done)
			}
		})
	}
	// Batches are recycled once checked: the audit allocates a few arenas,
	// not one per megabyte of ledger (the garbage collector would otherwise
	// take a core's share on a two-core machine).
	free := make(chan *batch, workers*8)
	newBatch := func() *batch {
		select {
		case b := <-free:
			b.items, b.arena, b.done = b.items[:0], b.arena[:0], make(chan struct{})
			return b
		default:
			return &batch{arena: make([]byte, 0, arenaSize), done: make(chan struct{})}
		}
	}
	checkErr := make(chan error, 1)
	go func() {
		var err error
		for b := range ordered {
			<-b.done
			if err == nil {
				err = a.checkBatch(b.items)
			}
			select {
			case free <- b:
			default:
			}
		}
		checkErr <- err
	}()
	cur := newBatch()
	flush := func() {
		work <- cur
		ordered <- cur
		cur = newBatch()
	}
	walkErr := ledger.Walk(dir, func(seqno uint64, raw []byte) error {
		if len(cur.items) > 0 && len(cur.arena)+len(raw) > cap(cur.arena) {
			flush()
		}
		if cap(cur.arena) < len(raw) {
			cur.arena = make([]byte, 0, len(raw)) // an entry larger than an arena
		}
		off := len(cur.arena)
		cur.arena = append(cur.arena, raw...)
		cur.items = append(cur.items, item{seqno: seqno, raw: cur.arena[off:len(cur.arena):len(cur.arena)]})
		if len(cur.items) == batchSize {
			flush()
		}
		return nil
	}, ledger.WalkOptions{Progress: a.opts.Progress, AllowTornTail: a.opts.Live,
		OnTornTail: func(t ledger.TornTail) { a.rep.TornTail = &t }})
	if len(cur.items) > 0 {
		flush()
	}
	close(work)
	close(ordered)
	wg.Wait()
	if err := <-checkErr; err != nil {
		return err
	}
	if walkErr != nil {
		var ce *ledger.CorruptionError
		if errors.As(walkErr, &ce) {
			return &Failure{Seqno: ce.Seqno, Reason: ce.Error()}
		}
		return walkErr
	}
	return nil
}

// prepare does the per-entry work that needs no order: parse, authenticate,
// compute the leaf, and parse the public tables the checker needs.
func (a *auditor) prepare(it *item) {
	e, err := ledger.ParseEntry(it.raw)
	if err != nil {
		it.err = fmt.Errorf("entry does not parse: %w", err)
		return
	}
	it.view = e.View
	if e.Seqno != it.seqno {
		it.err = fmt.Errorf("entry's IV says seqno %d", e.Seqno)
		return
	}
	if a.keys != nil {
		if aead, err := a.keys.AEAD(*a.rekeys.Load(), it.seqno); err == nil {
			it.authWith = aead
			it.claimsWant, it.keyed, it.authErr = a.open(e, aead)
		}
	}
	d, err := e.PublicDomain()
	if err != nil {
		it.err = fmt.Errorf("public domain does not parse: %w", err)
		return
	}
	if d.Type != ledger.WriteSetWithCommitEvidenceAndClaims {
		it.err = fmt.Errorf("unexpected entry type %d", d.Type)
		return
	}
	if d.Version != int64(it.seqno) {
		it.err = fmt.Errorf("public domain version %d differs from the seqno", d.Version)
		return
	}
	it.claimsHave = d.ClaimsDigest
	if h, _, ok, err := tables.SnapshotEvidenceOf(d.Maps); err != nil {
		it.err = err
		return
	} else if ok {
		it.evidence = &h
	}
	if value, ok := tables.RekeyOf(d.Maps); ok {
		it.rekey = value
	}
	it.leaf = merkle.Hash(receipt.LeafFromDigests(ledger.WriteSetDigest(it.raw), d.CommitEvidenceDigest, d.ClaimsDigest))
	if it.sig, _, err = tables.ParseSignature(d); err != nil {
		it.err = err
		return
	}
	if tables.MayRecordPreviousService(it.raw) {
		p, ok, err := tables.PreviousServiceOf(d.Maps)
		if err != nil {
			it.err = err
			return
		}
		if ok {
			it.prev = &p
		}
	}
	for _, m := range d.Maps {
		if m.Name == tables.NodeCertsMap {
			for _, w := range m.Writes {
				it.certs = append(it.certs, nodeCert{id: string(w.Key), pem: string(w.Value)})
			}
		}
	}
}

func (a *auditor) checkBatch(items []item) error {
	for i := range items {
		if err := a.check(&items[i]); err != nil {
			return err
		}
	}
	return nil
}

// open authenticates an entry with aead and, with Options.Claims, decrypts
// it and recomputes its claims digest (recomputeClaims).
func (a *auditor) open(e *ledger.Entry, aead cipher.AEAD) (want [32]byte, keyed bool, err error) {
	if !a.opts.Claims {
		return want, false, e.Authenticate(aead)
	}
	return recomputeClaims(e, aead)
}

// recomputeClaims authenticates and decrypts an entry with aead and returns
// the claims digest its write set gives (tables.EntryClaimsDigest), and
// whether it is a user entry with a claims key (tables.EntryClaimsMap).
func recomputeClaims(e *ledger.Entry, aead cipher.AEAD) (want [32]byte, keyed bool, err error) {
	err = e.WithPrivate(aead, func(maps []ledger.MapWrites) error {
		want = tables.EntryClaimsDigest(maps)
		for _, m := range maps {
			keyed = keyed || (m.Name == tables.EntryClaimsMap && len(m.Writes) > 0)
		}
		return nil
	})
	return want, keyed, err
}

// authenticate checks, in order, that the entry authenticated with the
// ledger secret of its seqno (redoing prepare's work if prepare used
// another), and records a rekey's secret for the entries after it. It
// reports whether the entry was authenticated (and so decrypted, its claims
// digest recomputed).
func (a *auditor) authenticate(it *item) (bool, error) {
	if a.keys == nil || a.noAuth {
		return false, nil
	}
	aead, err := a.keys.AEAD(a.rekeyList, it.seqno)
	if errors.Is(err, tables.ErrNoWrappingKey) {
		a.noAuth, a.rep.Authenticated, a.rep.AuthenticatedTo = true, false, it.seqno-1
		return false, nil
	}
	if errors.Is(err, tables.ErrNotRecovered) {
		// The previous service's entry, its secrets not recovered (or not
		// available to the auditor): covered by the signatures only.
		a.rep.Authenticated = false
		return false, nil
	}
	if err != nil {
		return false, &Failure{Seqno: it.seqno, Reason: err.Error()}
	}
	if aead != it.authWith {
		e, err := ledger.ParseEntry(it.raw)
		if err != nil {
			return false, &Failure{Seqno: it.seqno, Reason: err.Error()}
		}
		it.claimsWant, it.keyed, it.authErr = a.open(e, aead)
	}
	if errors.Is(it.authErr, ledger.ErrAuthentication) {
		return false, &Failure{Seqno: it.seqno, Reason: fmt.Sprintf("entry fails authentication with the ledger secret of its seqno (modified public domain, ciphertext or IV): %v", it.authErr)}
	}
	if it.authErr != nil {
		return false, &Failure{Seqno: it.seqno, Reason: fmt.Sprintf("private domain: %v", it.authErr)}
	}
	if it.rekey != nil {
		a.rep.Rekeys++
		a.rekeyList = append(a.rekeyList[:len(a.rekeyList):len(a.rekeyList)], tables.Rekey{Seqno: it.seqno, Value: append([]byte(nil), it.rekey...)})
		list := a.rekeyList
		a.rekeys.Store(&list)
	}
	return true, nil
}

// checkClaims compares the claims digest of an authenticated entry's leaf
// with the one its decrypted write set gives, or a snapshot evidence
// transaction's with the snapshot digest it records.
func (a *auditor) checkClaims(it *item) error {
	if it.evidence != nil {
		if it.claimsHave != *it.evidence {
			return &Failure{Seqno: it.seqno, Reason: fmt.Sprintf("the leaf's claims digest %x is not %x, the digest of the snapshot this transaction records the evidence of", it.claimsHave, *it.evidence)}
		}
		return nil
	}
	if it.claimsHave != it.claimsWant {
		if it.keyed {
			return &Failure{Seqno: it.seqno, Reason: fmt.Sprintf("the leaf's claims digest %x is not %x, the LedgerEntryV1 claims digest of the entry's collection, contents and secret key: its application claims were altered", it.claimsHave, it.claimsWant)}
		}
		if it.claimsWant != ([32]byte{}) {
			return &Failure{Seqno: it.seqno, Reason: fmt.Sprintf("the leaf's claims digest %x is not %x, the claims digest its user-defined endpoint set (recorded in %s)", it.claimsHave, it.claimsWant, tables.ClaimsDigestMap)}
		}
		return &Failure{Seqno: it.seqno, Reason: fmt.Sprintf("the leaf's claims digest %x is not zero, but the transaction writes no ledger entry with a claims key and no claims digest set by a user-defined endpoint", it.claimsHave)}
	}
	if it.keyed {
		a.rep.Claims++
	}
	return nil
}

// check does the ordered work: signatures against the running tree.
func (a *auditor) check(it *item) error {
	if it.err != nil {
		return &Failure{Seqno: it.seqno, Reason: it.err.Error()}
	}
	authed, err := a.authenticate(it)
	if err != nil {
		return err
	}
	if (authed && a.opts.Claims) || it.evidence != nil {
		if err := a.checkClaims(it); err != nil {
			return err
		}
	}
	if a.rep.Entries == 0 {
		a.rep.FirstSeqno = it.seqno
		if want := a.front.Size(); it.seqno != want {
			return &Failure{Seqno: it.seqno, Reason: fmt.Sprintf("ledger does not start at seqno %d", want)}
		}
	}
	if it.sig != nil {
		if err := a.checkSignature(it); err != nil {
			return err
		}
	}
	if it.prev != nil {
		if err := a.checkRecovery(it); err != nil {
			return err
		}
	}
	for _, c := range it.certs {
		a.nodes[c.id] = c.pem
	}
	a.front.Append(it.leaf)
	if len(a.recent) == 0 {
		a.recentBase = it.seqno
	}
	a.recent = append(a.recent, it.leaf)
	a.rep.Entries++
	a.rep.LastSeqno = it.seqno
	a.rep.Bytes += int64(len(it.raw))
	return nil
}

func (a *auditor) checkSignature(it *item) error {
	ps := it.sig
	fail := func(format string, args ...any) error {
		return &Failure{Seqno: it.seqno, Reason: "signature transaction: " + fmt.Sprintf(format, args...)}
	}
	if ps.Seqno != it.seqno || ps.View != it.view {
		return fail("payload says %d.%d but the entry is %d.%d", ps.View, ps.Seqno, it.view, it.seqno)
	}
	// The node must have been recorded by an earlier transaction. Its
	// certificate may have been re-issued since (new names, renewal): the
	// verifier checks that the one in the signature is endorsed by the
	// service and holds the node's key (its hash is the node id).
	if _, ok := a.nodes[ps.Node]; !ok {
		return fail("signed by node %s, which no earlier transaction endorsed", ps.Node)
	}
	root := a.front.Root()
	verifier := a.verifier
	for i, p := range a.opts.Previous {
		if it.seqno <= p.End {
			verifier = a.prevVerifiers[i]
			break
		}
	}
	if err := verifier.Verify(ps, root); err != nil {
		if s, ok := a.locateModified(it.seqno); ok {
			return &Failure{Seqno: s, Reason: fmt.Sprintf("entry was modified: its leaf differs from the node's Merkle tree, and the signature at %d no longer verifies (%v)", it.seqno, err)}
		}
		return fail("%v (an entry in (%d, %d) or the signature itself was modified)", err, a.prevSig, it.seqno)
	}
	a.prevSig = it.seqno
	a.recent = a.recent[:0]
	a.rep.Signatures++
	a.rep.LastSigned = it.seqno
	return nil
}

// checkRecovery checks a recovery transaction: the previous service
// identity it records must be the one given for its seqnos, and a later
// signature must cover it (Dir's end).
func (a *auditor) checkRecovery(it *item) error {
	if it.prev.End >= it.seqno {
		return &Failure{Seqno: it.seqno, Reason: fmt.Sprintf("recovery transaction: the previous service ends at %d, not before it", it.prev.End)}
	}
	for _, p := range a.opts.Previous {
		if p.End != it.prev.End {
			continue
		}
		b, _ := pem.Decode([]byte(it.prev.Cert))
		if b == nil || !bytes.Equal(b.Bytes, p.ServiceCert.Raw) || (p.CertPEM != "" && p.CertPEM != it.prev.Cert) {
			return &Failure{Seqno: it.seqno, Reason: fmt.Sprintf("recovery transaction: the previous service identity it records (of seqnos up to %d) is not the one given", p.End)}
		}
		a.lastRecovery = it.seqno
		return nil
	}
	return &Failure{Seqno: it.seqno, Reason: fmt.Sprintf("recovery transaction: it records a previous service of seqnos up to %d, which the audit was not given", it.prev.End)}
}

// locateModified returns the first seqno before sigSeqno, since the last
// verified signature, whose recomputed leaf differs from the node's stored
// Merkle leaf.
func (a *auditor) locateModified(sigSeqno uint64) (uint64, bool) {
	if a.opts.TreeLeaf == nil {
		return 0, false
	}
	for i, leaf := range a.recent {
		s := a.recentBase + uint64(i)
		if s >= sigSeqno {
			break
		}
		if stored, ok := a.opts.TreeLeaf(s); ok && stored != leaf {
			return s, true
		}
	}
	return 0, false
}

// checkTail compares the leaves after the last signature, which no
// signature covers yet, with the node's stored Merkle leaves.
func (a *auditor) checkTail() error {
	if s, ok := a.locateModified(^uint64(0)); ok {
		return &Failure{Seqno: s, Reason: "entry after the last signature was modified: its leaf differs from the node's Merkle tree"}
	}
	return nil
}
