package node

import (
	"bytes"
	"context"
	"crypto/cipher"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strconv"

	"go.etcd.io/raft/v3/raftpb"

	"github.com/ledgerd/ledgerd/internal/consensus"
	"github.com/ledgerd/ledgerd/internal/durable"
	"github.com/ledgerd/ledgerd/internal/ledger"
	"github.com/ledgerd/ledgerd/internal/tables"
	"github.com/ledgerd/ledgerd/receipt"
)

// Disaster recovery (CCF's recover mode; docs/architecture.md, "Disaster
// recovery"). Every node of a service is lost, its ledger files are kept:
// a node started with Config.Recover over a copy of them starts a new
// service (new service and node identities, new ledger secret) that
// continues the previous service's ledger:
//
//  1. First start: the derived files are discarded, the ledger is replayed
//     with every signature verified against the previous service
//     certificate (Recover.PreviousServiceCert) and cut after its last
//     signature, whose seqno (PreviousEnd) is recorded in recovery.json.
//     Seqnos 1..PreviousEnd are the previous service's; their private
//     domain stays unread (tables.ErrNotRecovered): the state is the public
//     domain. A fresh Raft configuration names this node only; its first
//     view follows the previous service's last.
//  2. The recovery transaction (queueRecoveryIfNeeded): the service record
//     names the new certificate, status Recovering; the previous service
//     certificate in public:ccf.internal.previous_service_identity; the
//     previous service's nodes Retired; this node Trusted.
//  3. The members accept the recovery (transition_service_to_open with the
//     previous and next identities: EndorsePreviousWrites, status
//     WaitingForRecoveryShares), then submit their shares; the API
//     combines them (internal/recovery) into the previous latest ledger
//     secret, RecoverPrevious walks back the previous rekeys to every
//     previous secret and checks them against the ledger, the secrets are
//     recorded wrapped for the new service key, and InstallRecovered
//     executes the previous service's private domain.
//  4. Receipts of previous transactions carry the endorsements of the
//     previous service certificates by the services that recovered them.
//
// Later starts read recovery.json and find the recovered secrets in the
// ledger (findRecoveredSecrets) before the state is replayed.

// Recover configures the first start of a recovered service.
type Recover struct {
	// PreviousServiceCert is the previous service's certificate (PEM):
	// the previous nodes' signatures must verify against it.
	PreviousServiceCert []byte
}

// RecoveryFile is the name of the file, in the data directory, that marks
// a recovered service: the previous service certificate and last seqno.
const RecoveryFile = "recovery.json"

type recoveryFile struct {
	PreviousServiceCert string `json:"previous_service_cert"`
	PreviousEnd         uint64 `json:"previous_end"`
	// Earlier are the previous services before the immediately previous
	// one (a service recovered more than once), as the ledger's recovery
	// transactions record them, oldest first.
	Earlier []tables.PreviousService `json:"earlier,omitempty"`
	// Learnt: this node did not recover the service; it learnt the
	// previous identities from the ledger it holds (a joiner with the
	// history), or was given them when it joined the service while it was
	// being recovered. It never writes a recovery transaction.
	Learnt bool `json:"learnt,omitempty"`
	// Voters is, for a node that joined the service while it was being
	// recovered, the Raft configuration at PreviousEnd (the recovering
	// node's, endFirstRecovery): its own starts from it, the previous
	// service's configurations being no part of this service's.
	Voters []uint64 `json:"voters_at_previous_end,omitempty"`
}

// prevService is a previous service identity and the verifier of its
// nodes' signatures.
type prevService struct {
	tables.PreviousService
	verifier *tables.Verifier
	// fromFile: recovery.json names it (this node's own recovery, trusted
	// as its operator's input).
	fromFile bool
}

func (n *Node) recoveryPath() string { return filepath.Join(n.cfg.Dir, RecoveryFile) }

// setupRecovery runs before the node's files are opened: a recovered
// service's keyring and verifier of the previous signatures; on the first
// start of a recovery, the derived files (of the previous nodes, if copied)
// are removed.
func (n *Node) setupRecovery() error {
	b, err := durable.ReadFile(n.cfg.FS, n.recoveryPath())
	switch {
	case err == nil:
		var rf recoveryFile
		if err := json.Unmarshal(b, &rf); err != nil || rf.PreviousEnd == 0 {
			return fmt.Errorf("node: %s is unreadable (%v); restore it", n.recoveryPath(), err)
		}
		n.recovery = &rf
	case !errors.Is(err, os.ErrNotExist):
		return err
	case n.cfg.Recover == nil:
		return nil
	default:
		n.firstRecovery = true
		n.recovery = &recoveryFile{PreviousServiceCert: string(n.cfg.Recover.PreviousServiceCert), PreviousEnd: math.MaxUint64}
		for _, name := range []string{"raft.state", "state.checkpoint", "merkle.tree", "signatures.idx"} {
			if err := n.cfg.FS.Remove(filepath.Join(n.cfg.Dir, name)); err != nil && !errors.Is(err, os.ErrNotExist) {
				return err
			}
		}
	}
	for _, p := range n.recovery.Earlier {
		if err := n.addPrevious(p, true); err != nil {
			return err
		}
	}
	if err := n.addPrevious(tables.PreviousService{End: n.recovery.PreviousEnd, Cert: n.recovery.PreviousServiceCert}, true); err != nil {
		return err
	}
	return n.keys.SetPrevious(n.recovery.PreviousEnd, nil)
}

// addPrevious adds a previous service identity: from recovery.json
// (fromFile) or recorded by a recovery transaction of the ledger. Two
// records of the same service must agree.
func (n *Node) addPrevious(p tables.PreviousService, fromFile bool) error {
	for i := range n.prevs {
		q := &n.prevs[i]
		if q.End != p.End {
			continue
		}
		if q.Cert != p.Cert {
			return fmt.Errorf("node: the recovery transaction at %d records a previous service identity (of seqnos up to %d) that is not the one %s names", max(p.At, q.At), p.End, n.recoveryPath())
		}
		q.At = max(q.At, p.At)
		q.fromFile = q.fromFile || fromFile
		return nil
	}
	cert, err := receipt.ParseCertificatePEM([]byte(p.Cert))
	if err != nil {
		return fmt.Errorf("node: the previous service certificate (of seqnos up to %d): %w", p.End, err)
	}
	n.prevs = append(n.prevs, prevService{PreviousService: p, verifier: tables.NewVerifier(cert), fromFile: fromFile})
	sort.Slice(n.prevs, func(i, j int) bool { return n.prevs[i].End < n.prevs[j].End })
	return nil
}

// verifierFor returns the verifier of the signatures at seqno: that of the
// previous service whose seqnos include it, else this service's.
func (n *Node) verifierFor(seqno uint64) *tables.Verifier {
	for i := range n.prevs {
		if seqno <= n.prevs[i].End {
			return n.prevs[i].verifier
		}
	}
	return n.verifier
}

// scanPrevious reads, in the ledger from seqno from on, the previous
// service identities that recovery transactions record (the service that
// signed the seqnos before a recovery is recorded after them: a signature
// that does not verify against the service expected for it has the ledger
// after it scanned once). Each recorded identity is trusted once a
// signature after its recovery transaction verifies (checkPreviousCovered).
func (n *Node) scanPrevious(from uint64) error {
	last := n.ledger.LastSeqno()
	if n.prevScanned != 0 && from >= n.prevScanned {
		return nil
	}
	to := last
	if n.prevScanned != 0 {
		to = n.prevScanned - 1
	}
	n.prevScanned = from
	return n.ledger.Range(from, to, func(s uint64, raw []byte) error {
		if !tables.MayRecordPreviousService(raw) {
			return nil
		}
		maps, ok, err := publicMaps(raw)
		if err != nil || !ok {
			return err
		}
		p, ok, err := tables.PreviousServiceOf(maps)
		if err != nil {
			return fmt.Errorf("node: entry %d: %w", s, err)
		}
		if !ok {
			return nil
		}
		if p.End >= s {
			return fmt.Errorf("node: the recovery transaction at %d says the previous service ended at %d", s, p.End)
		}
		p.At = s
		n.log.Info("recovery: the ledger records a previous service identity", "at", s, "previous_end", p.End)
		return n.addPrevious(p, false)
	})
}

// checkPreviousCovered checks, once the ledger is replayed, that every
// previous service identity learnt from the ledger is covered by a
// verified signature after the recovery transaction that recorded it: that
// signature (of the next service) vouches for it. Then the keyring and
// recovery.json learn the previous services (a node that joined with the
// history).
func (n *Node) checkPreviousCovered() error {
	var learnt []tables.PreviousService
	for _, p := range n.prevs {
		if p.End == math.MaxUint64 {
			continue // the first start of a recovery: recovery.json's, ended by endFirstRecovery
		}
		if !p.fromFile && p.At > n.sigs.Last() {
			return fmt.Errorf("node: the previous service identity recorded at %d is covered by no signature of the service that recovered it (the last signature is at %d)", p.At, n.sigs.Last())
		}
		learnt = append(learnt, p.PreviousService)
	}
	if len(learnt) == 0 || n.firstRecovery {
		return nil
	}
	last := learnt[len(learnt)-1]
	if n.recovery != nil && n.recovery.PreviousEnd == last.End && len(n.recovery.Earlier) == len(learnt)-1 {
		return nil
	}
	rf := &recoveryFile{PreviousServiceCert: last.Cert, PreviousEnd: last.End, Earlier: learnt[:len(learnt)-1], Learnt: n.recovery == nil || n.recovery.Learnt}
	if err := durable.WriteFileFS(n.cfg.FS, n.recoveryPath(), tables.Value(rf), 0o600); err != nil {
		return err
	}
	n.recovery = rf
	if end, _ := n.keys.Previous(); end != last.End {
		return n.keys.SetPrevious(last.End, nil)
	}
	return nil
}

// previousEnd is the previous service's last seqno, 0 if this service was
// not recovered.
func (n *Node) previousEnd() uint64 {
	end, _ := n.keys.Previous()
	return end
}

// endFirstRecovery cuts the previous ledger after its last signature and
// records it (recovery.json), then gives Raft a configuration of this node
// alone, in a view after the previous service's last. It returns the new
// last seqno.
func (n *Node) endFirstRecovery(last uint64) (uint64, error) {
	end := n.sigs.Last()
	if end == 0 {
		return 0, errors.New("node: the ledger to recover holds no signature transaction: nothing of it was committed")
	}
	if last > end {
		n.log.Warn("recovery: dropping the previous ledger's unsigned tail (never committed)", "from", end+1, "to", last)
		if err := n.ledger.Truncate(end); err != nil {
			return 0, err
		}
		if err := n.tree.Truncate(end + 1); err != nil {
			return 0, err
		}
		last = end
	}
	n.recovery.PreviousEnd = end
	n.recovery.Earlier = nil
	for i := range n.prevs {
		p := &n.prevs[i]
		switch {
		case p.End == math.MaxUint64:
			p.End, p.fromFile = end, true
		case p.End >= end:
			return 0, fmt.Errorf("node: the ledger to recover records a previous service ending at %d, after its last signature at %d", p.End, end)
		case p.At > end:
			return 0, fmt.Errorf("node: the previous service identity recorded at %d is covered by no signature (the last is at %d)", p.At, end)
		default:
			n.recovery.Earlier = append(n.recovery.Earlier, p.PreviousService)
		}
	}
	if err := durable.WriteFileFS(n.cfg.FS, n.recoveryPath(), tables.Value(n.recovery), 0o600); err != nil {
		return 0, err
	}
	if err := n.keys.SetPrevious(end, nil); err != nil {
		return 0, err
	}
	view, err := n.ledger.View(end)
	if err != nil {
		return 0, err
	}
	if err := n.storage.SetConfState(raftpb.ConfState{Voters: []uint64{n.cfg.Raft.ID}}, end); err != nil {
		return 0, err
	}
	if err := n.storage.SetHardState(raftpb.HardState{Term: view + 1, Commit: end}, true); err != nil {
		return 0, err
	}
	n.log.Info("recovery: a new service over the previous service's ledger", "previous_end", end, "previous_view", view)
	return last, nil
}

// findRecoveredSecrets looks, in the public domain of this service's
// transactions (after the previous service's), for the recovered secrets,
// and installs them in the keyring before the state is replayed.
func (n *Node) findRecoveredSecrets(last uint64) error {
	end := n.previousEnd()
	if end == 0 || end >= last {
		return nil
	}
	var value []byte
	err := n.ledger.Range(end+1, last, func(s uint64, raw []byte) error {
		maps, ok, err := publicMaps(raw)
		if err != nil || !ok {
			return err
		}
		for _, m := range maps {
			if m.Name == tables.RecoveredLedgerSecretsMap {
				for _, w := range m.Writes {
					value = append([]byte(nil), w.Value...)
					n.recoveredAt = s
				}
			}
		}
		return nil
	})
	if err != nil || value == nil {
		return err
	}
	got, secrets, err := n.keys.OpenRecovered(value)
	if err != nil {
		return fmt.Errorf("node: %w", err)
	}
	if got != end {
		return fmt.Errorf("node: the recovered secrets are of a service that ended at %d, not %d", got, end)
	}
	return n.usePrevious(end, secrets)
}

func (n *Node) usePrevious(end uint64, secrets []tables.SeqSecret) error {
	if err := n.keys.SetPrevious(end, secrets); err != nil {
		return err
	}
	// Each previous service's commit evidence is keyed from its own first
	// ledger secret: the secret of the seqno after the service before it.
	pe := &prevEvidence{}
	start := uint64(1)
	for _, p := range n.prevs {
		if p.End > end {
			break
		}
		pe.ends = append(pe.ends, p.End)
		pe.keys = append(pe.keys, newEvidenceKey(secretAt(secrets, start)))
		start = p.End + 1
	}
	if len(pe.ends) == 0 || pe.ends[len(pe.ends)-1] != end {
		pe.ends = append(pe.ends, end)
		pe.keys = append(pe.keys, newEvidenceKey(secretAt(secrets, start)))
	}
	n.prevEvidence.Store(pe)
	return nil
}

// prevEvidence derives the commit evidence of the previous services'
// transactions: keys[i] for the seqnos up to ends[i] (after ends[i-1]).
type prevEvidence struct {
	ends []uint64
	keys []*evidenceKey
}

// at returns the evidence key of seqno (nil: not a previous seqno, or the
// secrets are not recovered).
func (p *prevEvidence) at(seqno uint64) *evidenceKey {
	if p == nil {
		return nil
	}
	for i, end := range p.ends {
		if seqno <= end {
			return p.keys[i]
		}
	}
	return nil
}

// secretAt returns the secret of seqno among secrets sorted by From.
func secretAt(secrets []tables.SeqSecret, seqno uint64) []byte {
	var s []byte
	for _, x := range secrets {
		if x.From <= seqno {
			s = x.Secret
		}
	}
	return s
}

// RecoverPrevious returns every ledger secret of the previous services
// from the latest one (what the recovery shares give), as CCF's recovery
// walks them back: each service's rekeys' historical records, from its
// latest secret back to its first; then, for a service that was itself
// recovered, the link its opening wrote (PreviousLinkWrites: the service
// before it's latest secret, encrypted with its own secret of that seqno),
// and on through that service's rekeys. The previous services' ranges are
// those the ledger's endorsements of previous identities name (every
// recovery, this one included, writes one at transition_service_to_open).
// Each secret must authenticate the previous entries it encrypts (the
// first and last few), else the shares were wrong.
func (r *Reader) RecoverPrevious(latest []byte) ([]tables.SeqSecret, error) {
	end, _ := r.keys.Previous()
	if end == 0 {
		return nil, errors.New("node: this service was not recovered from a previous one")
	}
	var ends []uint64
	r.state.Range(tables.ServiceEndorsementsMap, func(k, _ []byte) bool {
		if e, err := strconv.ParseUint(string(k), 10, 64); err == nil && e < end {
			ends = append(ends, e)
		}
		return true
	})
	sort.Slice(ends, func(i, j int) bool { return ends[i] < ends[j] })
	ends = append(ends, end)
	all := r.state.rekeys()
	var secrets []tables.SeqSecret
	cur := append([]byte(nil), latest...)
	for k := len(ends) - 1; k >= 0; k-- {
		start := uint64(1)
		if k > 0 {
			start = ends[k-1] + 1
		}
		var rekeys []tables.Rekey
		for _, rk := range all {
			if rk.Seqno >= start && rk.Seqno <= ends[k] {
				rekeys = append(rekeys, rk)
			}
		}
		from := start
		if len(rekeys) > 0 {
			from = rekeys[len(rekeys)-1].Seqno + 1
		}
		mine := []tables.SeqSecret{{From: from, Secret: cur}}
		for i := len(rekeys) - 1; i >= 0; i-- {
			hist, err := r.publicValue(rekeys[i].Seqno, tables.HistoricalLedgerSecretMap)
			if err != nil {
				return nil, err
			}
			info, prev, err := tables.PreviousSecret(hist, cur)
			if err != nil {
				return nil, fmt.Errorf("%w: %v", tables.ErrNotRecovered, err)
			}
			from := start
			if i > 0 {
				from = rekeys[i-1].Seqno + 1
			}
			if info.Version > 0 && uint64(info.Version) != from {
				return nil, fmt.Errorf("node: the rekey at %d replaced a secret of seqno %d, not %d", rekeys[i].Seqno, info.Version, from)
			}
			mine = append(mine, tables.SeqSecret{From: from, Secret: prev})
			cur = prev
		}
		secrets = append(secrets, mine...)
		if k == 0 {
			break
		}
		// The service of this range was itself recovered: its opening
		// linked its secret of that seqno to the previous service's latest.
		at, link, err := r.previousLink(start, ends[k])
		if err != nil {
			return nil, err
		}
		sort.Slice(mine, func(i, j int) bool { return mine[i].From < mine[j].From })
		info, prev, err := tables.PreviousSecret(link, secretAt(mine, at))
		if err != nil {
			return nil, fmt.Errorf("%w: the link at %d to the secrets of the service before: %v", tables.ErrNotRecovered, at, err)
		}
		if info.Version <= 0 || uint64(info.Version) > ends[k-1] {
			return nil, fmt.Errorf("node: the link at %d names a secret of seqno %d, not one of the service that ended at %d", at, info.Version, ends[k-1])
		}
		cur = prev
	}
	sort.Slice(secrets, func(i, j int) bool { return secrets[i].From < secrets[j].From })
	for i, s := range secrets {
		to := end
		if i+1 < len(secrets) {
			to = secrets[i+1].From - 1
		}
		if err := r.authenticateRange(s, to); err != nil {
			return nil, err
		}
	}
	return secrets, nil
}

// previousLink finds, in from..to, the last transaction that writes
// HistoricalLedgerSecretMap without being a rekey: the link of a
// recovered service's secrets to its previous service's.
func (r *Reader) previousLink(from, to uint64) (uint64, []byte, error) {
	var at uint64
	var value []byte
	err := r.ledger.Range(from, to, func(s uint64, raw []byte) error {
		if !tables.MayLinkPreviousSecret(raw) {
			return nil
		}
		maps, ok, err := publicMaps(raw)
		if err != nil || !ok {
			return err
		}
		if _, rekey := tables.RekeyOf(maps); rekey {
			return nil
		}
		for _, m := range maps {
			if m.Name == tables.HistoricalLedgerSecretMap {
				for _, w := range m.Writes {
					at, value = s, append([]byte(nil), w.Value...)
				}
			}
		}
		return nil
	})
	if err != nil {
		return 0, nil, err
	}
	if value == nil {
		return 0, nil, fmt.Errorf("%w: the service of seqnos %d..%d was recovered, but its ledger holds no link to the secrets of the service before it", tables.ErrNotRecovered, from, to)
	}
	return at, value, nil
}

// PreviousLinkWrites returns the write that links this service's latest
// secret to the previous service's recovered ones (the opening of a
// recovered service; tables.Keyring.PreviousLinkWrites).
func (n *Node) PreviousLinkWrites(latest []byte) ([]ledger.MapWrites, error) {
	return n.keys.PreviousLinkWrites(latest, nil)
}

// authenticateRange authenticates up to authenticatedTail entries at each
// end of from..to with the secret.
func (r *Reader) authenticateRange(s tables.SeqSecret, to uint64) error {
	a, err := tables.NewKeyring(s.Secret, nil)
	if err != nil {
		return err
	}
	check := func(seqno uint64) error {
		raw, err := r.ledger.Read(seqno)
		if err != nil {
			return err
		}
		e, err := ledger.ParseEntry(raw)
		if err != nil {
			return err
		}
		if err := e.Authenticate(a.First()); err != nil {
			return fmt.Errorf("%w: entry %d fails authentication with the recovered secret", tables.ErrNotRecovered, seqno)
		}
		return nil
	}
	for seqno := s.From; seqno <= to && seqno < s.From+authenticatedTail; seqno++ {
		if err := check(seqno); err != nil {
			return err
		}
	}
	for seqno := to; seqno >= s.From && seqno+authenticatedTail > to && seqno >= s.From+authenticatedTail; seqno-- {
		if err := check(seqno); err != nil {
			return err
		}
	}
	return nil
}

// publicValue returns the value a transaction wrote to a public map's
// singleton key.
func (r *Reader) publicValue(seqno uint64, name string) ([]byte, error) {
	raw, err := r.ledger.Read(seqno)
	if err != nil {
		return nil, err
	}
	e, err := ledger.ParseEntry(raw)
	if err != nil {
		return nil, err
	}
	d, err := e.PublicDomain()
	if err != nil {
		return nil, err
	}
	for _, m := range d.Maps {
		if m.Name == name {
			for _, w := range m.Writes {
				return w.Value, nil
			}
		}
	}
	return nil, fmt.Errorf("node: entry %d writes no %s", seqno, name)
}

// RecoveredWrites returns the write that records the previous service's
// recovered secrets, wrapped for this service.
func (n *Node) RecoveredWrites(secrets []tables.SeqSecret) ([]ledger.MapWrites, error) {
	return n.keys.RecoveredWrites(n.previousEnd(), secrets, nil)
}

// InstallRecovered makes the previous service's private domain readable
// once its recovered secrets are recorded (committed): the keyring gets
// them, and the private writes of the previous transactions, executed
// public-only so far, are added to the state. The state is then
// checkpointed. It returns once done.
func (n *Node) InstallRecovered(ctx context.Context, secrets []tables.SeqSecret) error {
	done := make(chan error, 1)
	err := n.onLoop(ctx, func() { done <- n.installRecovered(secrets) })
	if err != nil {
		return err
	}
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (n *Node) installRecovered(secrets []tables.SeqSecret) error {
	end := n.previousEnd()
	if _, recovered := n.keys.Previous(); recovered {
		return nil
	}
	var txs []delta
	keys, err := tables.NewKeyring(secrets[0].Secret, nil)
	if err != nil {
		return err
	}
	if err := keys.SetPrevious(end, secrets); err != nil {
		return err
	}
	err = n.ledger.Range(1, end, func(s uint64, raw []byte) error {
		e, err := ledger.ParseEntry(raw)
		if err != nil {
			return err
		}
		if len(e.Ciphertext) == 0 {
			return nil
		}
		var a cipher.AEAD
		if a, err = keys.AEAD(nil, s); err != nil {
			return err
		}
		private, err := e.Decrypt(a)
		if err != nil {
			return fmt.Errorf("node: couldn't decrypt the previous service's entry %d: %w", s, err)
		}
		txs = append(txs, delta{id: TxID{View: e.View, Seqno: s}, writes: private})
		return nil
	})
	if err != nil {
		return err
	}
	if err := n.usePrevious(end, secrets); err != nil {
		return err
	}
	n.state.addPrevious(txs)
	n.log.Info("recovery: the previous service's private domain is readable", "previous_end", end, "transactions", len(txs))
	if err := n.checkpoint(); err != nil {
		n.log.Warn("couldn't checkpoint state", "err", err)
	}
	return nil
}

// EndorsePreviousWrites returns the writes that endorse the previous
// service certificate with this service's key (transition_service_to_open
// of a recovering service), under the previous service's last seqno.
func (n *Node) EndorsePreviousWrites(previousPEM []byte) ([]ledger.MapWrites, error) {
	end := n.previousEnd()
	if end == 0 {
		return nil, errors.New("this service was not recovered: there is no previous service identity to endorse")
	}
	svc := n.cfg.Identities.Service
	pem, err := tables.EndorsePreviousService(previousPEM, svc.Cert, svc.Key)
	if err != nil {
		return nil, err
	}
	return []ledger.MapWrites{{Name: tables.ServiceEndorsementsMap, Writes: []ledger.KV{{Key: tables.EndorsementKey(end), Value: pem}}}}, nil
}

// serviceEndorsements returns the endorsements a receipt of seqno carries:
// those of every previous service that seqno belongs to, oldest first.
func (r *Reader) serviceEndorsements(seqno uint64) []string {
	type e struct {
		end uint64
		pem string
	}
	var es []e
	r.state.Range(tables.ServiceEndorsementsMap, func(k, v []byte) bool {
		end, err := strconv.ParseUint(string(k), 10, 64)
		if err == nil && seqno <= end {
			es = append(es, e{end, string(v)})
		}
		return true
	})
	sort.Slice(es, func(i, j int) bool { return es[i].end < es[j].end })
	out := []string{}
	for _, x := range es {
		out = append(out, x.pem)
	}
	return out
}

// queueRecoveryIfNeeded queues the recovery transaction of a recovered
// service whose state still names the previous service. It reports
// whether it did.
func (n *Node) queueRecoveryIfNeeded() bool {
	if n.recovery == nil || n.recovery.Learnt {
		return false
	}
	raw, ok := n.state.Get(tables.ServiceInfoMap, tables.SingletonKey)
	if !ok {
		return false
	}
	id := n.cfg.Identities
	var fields map[string]json.RawMessage
	var info tables.ServiceInfo
	if json.Unmarshal(raw, &fields) != nil || json.Unmarshal(raw, &info) != nil || info.Cert == string(id.Service.CertPEM) {
		return false
	}
	var count uint64
	if c, ok := fields["recovery_count"]; ok {
		_ = json.Unmarshal(c, &count)
	}
	fields["cert"], _ = json.Marshal(string(id.Service.CertPEM))
	fields["status"], _ = json.Marshal(tables.ServiceRecovering)
	fields["recovery_count"], _ = json.Marshal(count + 1)
	fields["previous_service_identity_version"], _ = json.Marshal(n.previousEnd())
	var retire []ledger.KV
	n.state.Range(tables.NodesInfoMap, func(k, v []byte) bool {
		var nf map[string]json.RawMessage
		var ni tables.NodeInfo
		if string(k) == id.Node.ID || json.Unmarshal(v, &nf) != nil || json.Unmarshal(v, &ni) != nil || ni.Status == tables.NodeRetired {
			return true
		}
		nf["status"], _ = json.Marshal(tables.NodeRetired)
		retire = append(retire, ledger.KV{Key: append([]byte(nil), k...), Value: tables.Value(nf)})
		return true
	})
	nodeInfo := tables.Value(n.ownInfo(tables.NodeInfo{Status: tables.NodeTrusted}))
	writes := []ledger.MapWrites{
		{Name: tables.ServiceInfoMap, Writes: []ledger.KV{{Key: tables.SingletonKey, Value: tables.Value(fields)}}},
		{Name: tables.PreviousServiceIdentityMap, Writes: []ledger.KV{{Key: tables.SingletonKey, Value: []byte(info.Cert)}}},
		{Name: tables.NodesInfoMap, Writes: append(retire, ledger.KV{Key: []byte(id.Node.ID), Value: nodeInfo})},
		{Name: tables.NodeCertsMap, Writes: []ledger.KV{{Key: []byte(id.Node.ID), Value: id.Node.CertPEM}}},
	}
	p := &proposal{writes: writes, fut: newFuture()}
	n.qmu.Lock()
	n.queue = append([]*proposal{p}, n.queue...)
	n.qmu.Unlock()
	n.genesisQueued = true // it endorses this node: nothing is signed before it
	n.log.Info("recovery: queued the recovery transaction", "previous_end", n.previousEnd())
	return true
}

// PreviousEnd returns the previous service's last seqno (0 if this service
// was not recovered) and whether its ledger secrets are recovered.
func (r *Reader) PreviousEnd() (uint64, bool) { return r.keys.Previous() }

// PreviousServices returns, for auditors (ledgerctl audit), the previous
// service identities of a data directory's ledger, oldest first: those its
// recovery.json names (this directory's own recovery, before its recovery
// transaction is written) and those the ledger's recovery transactions
// record (every recovery the ledger went through). The two must agree.
// None: a service never recovered. The auditor checks that each one the
// ledger records is covered by a later signature.
func PreviousServices(dir, ledgerDir string, live bool) ([]tables.PreviousService, error) {
	byEnd := map[uint64]tables.PreviousService{}
	b, err := os.ReadFile(filepath.Join(dir, RecoveryFile))
	switch {
	case err == nil:
		var rf recoveryFile
		if err := json.Unmarshal(b, &rf); err != nil || rf.PreviousEnd == 0 {
			return nil, fmt.Errorf("%s is unreadable (%v)", filepath.Join(dir, RecoveryFile), err)
		}
		for _, p := range append(rf.Earlier, tables.PreviousService{End: rf.PreviousEnd, Cert: rf.PreviousServiceCert}) {
			byEnd[p.End] = p
		}
	case !errors.Is(err, os.ErrNotExist):
		return nil, err
	}
	err = ledger.Walk(ledgerDir, func(s uint64, raw []byte) error {
		if !tables.MayRecordPreviousService(raw) {
			return nil
		}
		maps, ok, err := publicMaps(raw)
		if err != nil || !ok {
			return nil // the audit names an entry that does not parse
		}
		p, ok, err := tables.PreviousServiceOf(maps)
		if err != nil || !ok {
			return nil
		}
		if q, dup := byEnd[p.End]; dup && q.Cert != p.Cert {
			return fmt.Errorf("the recovery transaction at %d records a previous service identity (of seqnos up to %d) other than %s's", s, p.End, RecoveryFile)
		}
		p.At = s
		byEnd[p.End] = p
		return nil
	}, ledger.WalkOptions{AllowTornTail: live})
	if err != nil {
		return nil, err
	}
	out := make([]tables.PreviousService, 0, len(byEnd))
	for _, p := range byEnd {
		out = append(out, p)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].End < out[j].End })
	return out, nil
}

// LoadRecoveredSecrets walks a recovered ledger (offline, as auditors do)
// for the previous service's recovered secrets and gives them to keys,
// which must hold this service's key to unwrap them. Without them, keys
// knows the previous seqnos as not recovered. It reports whether they were
// found.
func LoadRecoveredSecrets(ledgerDir string, end uint64, keys *tables.Keyring, live bool) (bool, error) {
	if err := keys.SetPrevious(end, nil); err != nil {
		return false, err
	}
	if !keys.CanUnwrap() {
		return false, nil
	}
	var value []byte
	err := ledger.Walk(ledgerDir, func(s uint64, raw []byte) error {
		if s <= end {
			return nil
		}
		maps, ok, err := publicMaps(raw)
		if err != nil || !ok {
			return nil // the audit names an entry that does not parse
		}
		for _, m := range maps {
			if m.Name == tables.RecoveredLedgerSecretsMap {
				for _, w := range m.Writes {
					value = append([]byte(nil), w.Value...)
				}
			}
		}
		return nil
	}, ledger.WalkOptions{AllowTornTail: live})
	if err != nil || value == nil {
		return false, err
	}
	got, secrets, err := keys.OpenRecovered(value)
	if err != nil {
		return false, err
	}
	if got != end {
		return false, fmt.Errorf("the recovered secrets are of a service that ended at %d, not %d", got, end)
	}
	return true, keys.SetPrevious(end, secrets)
}

// publicMaps parses a raw ledger entry and returns its public maps: ok is
// false for an entry whose public domain is not CCF maps (a Raft entry of
// ledgerd's own: a configuration change); err is the entry's parse error.
// The scans of a ledger for recovery transactions, recovered secrets and
// the previous service's secret link read entries through it.
func publicMaps(raw []byte) (maps []ledger.MapWrites, ok bool, err error) {
	e, err := ledger.ParseEntry(raw)
	if err != nil || !consensus.HasPublicMaps(e) {
		return nil, false, err
	}
	d, err := e.PublicDomain()
	if err != nil {
		return nil, false, nil
	}
	return d.Maps, true, nil
}

// JoinedRecovery returns what a node joining this service while it is
// being recovered needs to replay the previous services' part of the
// ledger (join.Welcome.Recovery): this node's recovery.json, marked
// learnt (the joiner never writes a recovery transaction). ok is false
// unless this service was recovered and its previous ledger secrets are
// not recovered yet (after that, a joiner starts from the snapshot taken
// at the end of the recovery, or learns the previous services from the
// ledger with --fetch-history).
func (n *Node) JoinedRecovery() (b []byte, ok bool) {
	end, recovered := n.keys.Previous()
	if n.recovery == nil || end == 0 || recovered || n.firstRecovery && n.recovery.PreviousEnd == math.MaxUint64 {
		return nil, false
	}
	rf := *n.recovery
	if len(rf.Voters) == 0 {
		rf.Voters = []uint64{n.cfg.Raft.ID} // this node recovered the service alone
	}
	rf.Learnt = true
	return tables.Value(rf), true
}

// setUpJoinedRecovery, for a node that joined a service being recovered,
// starts its Raft configuration from the one at the previous service's end
// (once, before any entry: the configuration is then saved), and has its
// storage send the previous service's entries as they are (SetVerbatimUpTo),
// as every node of a recovered service does.
func (n *Node) setUpJoinedRecovery() error {
	end := n.previousEnd()
	if end == 0 || end == math.MaxUint64 {
		return nil
	}
	n.storage.SetVerbatimUpTo(end)
	rf := n.recovery
	if rf == nil || !rf.Learnt || len(rf.Voters) == 0 {
		return nil
	}
	if st := n.storage.State(); st.ConfIndex != 0 || len(st.Conf.Voters) != 0 || n.ledger.LastSeqno() != 0 {
		return nil
	}
	n.log.Info("joined a service being recovered: its Raft configuration starts at the previous service's end", "previous_end", end, "voters", rf.Voters)
	return n.storage.SetConfState(raftpb.ConfState{Voters: rf.Voters}, end)
}

// WriteJoinedRecovery records, in the data directory dir of a node that
// joins a service being recovered, the previous service identities the
// service gave it (JoinedRecovery, over the authenticated join channel),
// as its recovery.json: its node then verifies the previous nodes'
// signatures it replays against them, and finds the recovered secrets in
// the ledger once the members' shares are in (noteRecoveredSecrets).
func WriteJoinedRecovery(dir string, b []byte) error {
	var rf recoveryFile
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&rf); err != nil {
		return fmt.Errorf("node: the service's recovery record: %w", err)
	}
	if rf.PreviousEnd == 0 || rf.PreviousEnd == math.MaxUint64 {
		return fmt.Errorf("node: the service's recovery record names no previous service end (%d)", rf.PreviousEnd)
	}
	if _, err := receipt.ParseCertificatePEM([]byte(rf.PreviousServiceCert)); err != nil {
		return fmt.Errorf("node: the service's recovery record: the previous service certificate: %w", err)
	}
	if len(rf.Voters) == 0 {
		return errors.New("node: the service's recovery record names no Raft configuration")
	}
	for _, p := range rf.Earlier {
		if _, err := receipt.ParseCertificatePEM([]byte(p.Cert)); err != nil || p.End == 0 || p.End >= rf.PreviousEnd {
			return fmt.Errorf("node: the service's recovery record: an earlier service (up to %d) is not valid: %v", p.End, err)
		}
	}
	rf.Learnt = true
	return durable.WriteFile(filepath.Join(dir, RecoveryFile), tables.Value(rf), 0o600)
}

// noteRecoveredSecrets notes, on every node, the transaction that records
// the previous service's recovered secrets (the primary's, once the
// members' shares are in): once it is committed (installNotedRecovered),
// a node that holds the ledger of the previous service and this service's
// key installs them, as the primary does (InstallRecovered). A node that
// joined the service while it was being recovered gets the previous
// private domain this way (CCF's backups read the ledger secrets the
// primary broadcasts, then their private ledger).
func (n *Node) noteRecoveredSecrets(e *ledger.Entry, d *ledger.Domain) {
	end, recovered := n.keys.Previous()
	if end == 0 || recovered {
		return
	}
	for _, m := range d.Maps {
		if m.Name != tables.RecoveredLedgerSecretsMap {
			continue
		}
		for _, w := range m.Writes {
			n.recoveredNoted = &notedRecovered{seqno: e.Seqno, value: append([]byte(nil), w.Value...)}
		}
	}
}

// notedRecovered is a transaction recording the recovered secrets,
// appended and not yet installed.
type notedRecovered struct {
	seqno uint64
	value []byte
}

// installNotedRecovered installs the recovered secrets noted once their
// transaction is committed (at or below committed). On the loop.
func (n *Node) installNotedRecovered(committed uint64) {
	r := n.recoveredNoted
	if r == nil || r.seqno > committed {
		return
	}
	n.recoveredNoted = nil
	end, recovered := n.keys.Previous()
	if recovered {
		return
	}
	got, secrets, err := n.keys.OpenRecovered(r.value)
	if err == nil && got != end {
		err = fmt.Errorf("the recovered secrets are of a service that ended at %d, not %d", got, end)
	}
	if err == nil {
		err = n.installRecovered(secrets)
	}
	if err != nil {
		n.log.Error("recovery: couldn't install the recovered ledger secrets recorded at "+strconv.FormatUint(r.seqno, 10)+"; the previous service's private entries stay unreadable on this node", "err", err)
		return
	}
	n.recoveredAt = r.seqno
}
