package node

import (
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
	cert, err := receipt.ParseCertificatePEM([]byte(n.recovery.PreviousServiceCert))
	if err != nil {
		return fmt.Errorf("node: the previous service certificate: %w", err)
	}
	n.prevVerifier = tables.NewVerifier(cert)
	return n.keys.SetPrevious(n.recovery.PreviousEnd, nil)
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
		e, err := ledger.ParseEntry(raw)
		if err != nil || !consensus.HasPublicMaps(e) {
			return err
		}
		d, err := e.PublicDomain()
		if err != nil {
			return nil // a Raft entry of ledgerd's own (conf change)
		}
		for _, m := range d.Maps {
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
	n.prevEvidence.Store(newEvidenceKey(secrets[0].Secret))
	return nil
}

// RecoverPrevious returns every ledger secret of the previous service from
// its latest one (what the recovery shares give): the previous rekeys'
// historical records, read back from the latest, as CCF's recovery walks
// them. Each secret must authenticate the previous entries it encrypts
// (the first and last few), else the shares were wrong.
func (r *Reader) RecoverPrevious(latest []byte) ([]tables.SeqSecret, error) {
	end, _ := r.keys.Previous()
	if end == 0 {
		return nil, errors.New("node: this service was not recovered from a previous one")
	}
	var rekeys []tables.Rekey
	for _, rk := range r.state.rekeys() {
		if rk.Seqno <= end {
			rekeys = append(rekeys, rk)
		}
	}
	secrets := []tables.SeqSecret{{From: 1, Secret: append([]byte(nil), latest...)}}
	if len(rekeys) > 0 {
		secrets[0].From = rekeys[len(rekeys)-1].Seqno + 1
	}
	cur := latest
	for i := len(rekeys) - 1; i >= 0; i-- {
		hist, err := r.publicValue(rekeys[i].Seqno, tables.HistoricalLedgerSecretMap)
		if err != nil {
			return nil, err
		}
		info, prev, err := tables.PreviousSecret(hist, cur)
		if err != nil {
			return nil, fmt.Errorf("%w: %v", tables.ErrNotRecovered, err)
		}
		from := uint64(1)
		if i > 0 {
			from = rekeys[i-1].Seqno + 1
		}
		if info.Version > 0 && uint64(info.Version) != from {
			return nil, fmt.Errorf("node: the rekey at %d replaced a secret of seqno %d, not %d", rekeys[i].Seqno, info.Version, from)
		}
		secrets = append(secrets, tables.SeqSecret{From: from, Secret: prev})
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
	if n.recovery == nil {
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

// ReadRecovery reads a data directory's recovery.json: ok=false for a
// service that was not recovered. For auditors (ledgerctl audit).
func ReadRecovery(dir string) (previousCertPEM []byte, previousEnd uint64, ok bool, err error) {
	b, err := os.ReadFile(filepath.Join(dir, RecoveryFile))
	if errors.Is(err, os.ErrNotExist) {
		return nil, 0, false, nil
	}
	if err != nil {
		return nil, 0, false, err
	}
	var rf recoveryFile
	if err := json.Unmarshal(b, &rf); err != nil || rf.PreviousEnd == 0 {
		return nil, 0, false, fmt.Errorf("%s is unreadable (%v)", filepath.Join(dir, RecoveryFile), err)
	}
	return []byte(rf.PreviousServiceCert), rf.PreviousEnd, true, nil
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
		e, err := ledger.ParseEntry(raw)
		if err != nil || !consensus.HasPublicMaps(e) {
			return nil
		}
		d, err := e.PublicDomain()
		if err != nil {
			return nil
		}
		for _, m := range d.Maps {
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
