package tables

import (
	"bytes"
	"crypto/cipher"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math/big"
	"sort"
	"strconv"
	"time"

	"github.com/ledgerd/ledgerd/internal/ledger"
)

// Disaster recovery (ledgerd --recover; docs/architecture.md, "Disaster
// recovery"). A recovered service continues the previous service's ledger:
// seqnos 1..PreviousEnd are the previous service's (signed by its nodes,
// encrypted with its ledger secrets), the new service's transactions follow
// with a new ledger secret. The previous secrets are unknown until the
// recovery members' shares are in; then they are recorded wrapped for the
// new service key (RecoveredLedgerSecretsMap), so that every later start
// finds them in the ledger.
const (
	// ServiceStatusWaitingForShares is CCF's WaitingForRecoveryShares: a
	// recovering service whose members accepted the recovery
	// (transition_service_to_open) and that waits for their shares.
	ServiceWaitingForShares = "WaitingForRecoveryShares"
	// PreviousServiceIdentityMap is CCF's
	// public:ccf.internal.previous_service_identity: key SingletonKey,
	// value the previous service certificate (PEM), written by the
	// recovery transaction.
	PreviousServiceIdentityMap = "public:ccf.internal.previous_service_identity"
	// ServiceEndorsementsMap (ledgerd's): key = decimal last seqno of a
	// previous service, value = that service's certificate endorsed by
	// the service that recovered it (PEM: the previous certificate's
	// subject and key, issued and signed by the next service key). A
	// receipt of a transaction at or before the key carries it in
	// serviceEndorsements.
	ServiceEndorsementsMap = "public:ledgerd.internal.service_endorsements"
	// RecoveredLedgerSecretsMap (ledgerd's): key SingletonKey, value
	// RecoveredLedgerSecrets: the previous service's ledger secrets,
	// recovered from the members' shares, wrapped with the new service's
	// wrapping key (SecretWrappingKey).
	RecoveredLedgerSecretsMap = "public:ledgerd.internal.recovered_ledger_secrets"
	// EncryptedSubmittedSharesMap is CCF's
	// public:ccf.internal.encrypted_submitted_shares: key = member id,
	// value = the share it submitted, AES-256-GCM under the service's
	// latest ledger secret (never in clear). Cleared once the secrets are
	// recovered.
	EncryptedSubmittedSharesMap = "public:ccf.internal.encrypted_submitted_shares"
)

// ErrNotRecovered: the seqno is the previous service's and its ledger
// secrets are not recovered yet.
var ErrNotRecovered = errors.New("tables: the previous service's ledger secrets are not recovered yet")

// SeqSecret is a ledger secret and the seqno from which it applies.
type SeqSecret struct {
	From   uint64
	Secret []byte
}

// RecoveredLedgerSecrets is the value of RecoveredLedgerSecretsMap.
type RecoveredLedgerSecrets struct {
	PreviousEnd uint64                  `json:"previous_end"`
	Secrets     []RecoveredLedgerSecret `json:"secrets"`
}

// RecoveredLedgerSecret is one recovered secret, wrapped.
type RecoveredLedgerSecret struct {
	From            uint64 `json:"from"`
	EncryptedSecret []byte `json:"encrypted_secret"`
}

// SetPrevious makes seqnos 1..end the previous service's (a recovered
// service): their secrets are secrets (sorted by From, the first From 1),
// or, nil, not known yet (ErrNotRecovered). Rekeys at or before end are
// the previous service's and are ignored for later seqnos.
func (k *Keyring) SetPrevious(end uint64, secrets []SeqSecret) error {
	var ps []ringPrev
	for _, s := range secrets {
		a, err := newGCM(s.Secret)
		if err != nil {
			return err
		}
		ps = append(ps, ringPrev{from: s.From, secret: append([]byte(nil), s.Secret...), aead: a})
	}
	sort.Slice(ps, func(i, j int) bool { return ps[i].from < ps[j].from })
	if len(ps) > 0 && ps[0].from != 1 {
		return fmt.Errorf("tables: the recovered secrets start at seqno %d, not 1", ps[0].from)
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	k.prevEnd, k.prev = end, ps
	return nil
}

type ringPrev struct {
	from   uint64
	secret []byte
	aead   cipher.AEAD
}

// Previous returns the previous service's last seqno (0: not a recovered
// service) and whether its secrets are known.
func (k *Keyring) Previous() (end uint64, recovered bool) {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.prevEnd, len(k.prev) > 0
}

// previousAt returns the previous service's secret of seqno (≤ prevEnd).
func (k *Keyring) previousAt(seqno uint64) (*ringPrev, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	for i := len(k.prev) - 1; i >= 0; i-- {
		if k.prev[i].from <= seqno {
			return &k.prev[i], nil
		}
	}
	return nil, fmt.Errorf("%w (seqno %d)", ErrNotRecovered, seqno)
}

// own returns the rekeys of this service: those after the previous
// service's end.
func (k *Keyring) own(rekeys []Rekey) []Rekey {
	k.mu.Lock()
	end := k.prevEnd
	k.mu.Unlock()
	i := 0
	for i < len(rekeys) && rekeys[i].Seqno <= end {
		i++
	}
	return rekeys[i:]
}

func (k *Keyring) isPrevious(seqno uint64) bool {
	k.mu.Lock()
	defer k.mu.Unlock()
	return seqno <= k.prevEnd
}

// RecoveredWrites returns the write that records the previous service's
// secrets, wrapped for this service's wrapping key.
func (k *Keyring) RecoveredWrites(end uint64, secrets []SeqSecret, rnd io.Reader) ([]ledger.MapWrites, error) {
	if k.wrap == nil {
		return nil, ErrNoWrappingKey
	}
	if rnd == nil {
		rnd = rand.Reader
	}
	v := RecoveredLedgerSecrets{PreviousEnd: end}
	for _, s := range secrets {
		w, err := seal(k.wrap, s.Secret, rnd)
		if err != nil {
			return nil, err
		}
		v.Secrets = append(v.Secrets, RecoveredLedgerSecret{From: s.From, EncryptedSecret: w})
	}
	return []ledger.MapWrites{{Name: RecoveredLedgerSecretsMap, Writes: []ledger.KV{{Key: SingletonKey, Value: Value(v)}}}}, nil
}

// OpenRecovered unwraps a RecoveredLedgerSecretsMap value.
func (k *Keyring) OpenRecovered(value []byte) (uint64, []SeqSecret, error) {
	if k.wrap == nil {
		return 0, nil, ErrNoWrappingKey
	}
	var v RecoveredLedgerSecrets
	if err := json.Unmarshal(value, &v); err != nil {
		return 0, nil, fmt.Errorf("tables: unreadable %s value: %w", RecoveredLedgerSecretsMap, err)
	}
	var out []SeqSecret
	for _, s := range v.Secrets {
		secret, err := open(k.wrap, s.EncryptedSecret)
		if err != nil || len(secret) != 32 {
			return 0, nil, fmt.Errorf("tables: couldn't unwrap the recovered ledger secret of seqno %d (is service.key this service's key?)", s.From)
		}
		out = append(out, SeqSecret{From: s.From, Secret: secret})
	}
	return v.PreviousEnd, out, nil
}

// SealWith encrypts plain with AES-256-GCM under secret (tag || IV ||
// ciphertext): a submitted recovery share under the latest ledger secret.
func SealWith(secret, plain []byte) ([]byte, error) {
	a, err := newGCM(secret)
	if err != nil {
		return nil, err
	}
	return seal(a, plain, rand.Reader)
}

// OpenWith reverses SealWith.
func OpenWith(secret, sealed []byte) ([]byte, error) {
	a, err := newGCM(secret)
	if err != nil {
		return nil, err
	}
	return open(a, sealed)
}

// EndorsementKey is the key of ServiceEndorsementsMap for a previous
// service whose last seqno is end.
func EndorsementKey(end uint64) []byte { return []byte(strconv.FormatUint(end, 10)) }

// EndorsePreviousService returns the previous service certificate
// endorsed by the next service (CCF's endorsement of the previous service
// identity): a CA certificate with the previous certificate's subject,
// public key and subject key id, issued by next and signed with nextKey.
func EndorsePreviousService(previousPEM []byte, next *x509.Certificate, nextKey *ecdsa.PrivateKey) ([]byte, error) {
	b, _ := pem.Decode(previousPEM)
	if b == nil || b.Type != "CERTIFICATE" {
		return nil, errors.New("the previous service identity is not a PEM certificate")
	}
	prev, err := x509.ParseCertificate(b.Bytes)
	if err != nil {
		return nil, fmt.Errorf("couldn't parse the previous service identity: %w", err)
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, err
	}
	now := time.Now().Add(-time.Hour).UTC()
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               prev.Subject,
		NotBefore:             now,
		NotAfter:              now.AddDate(10, 0, 0),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
		SubjectKeyId:          prev.SubjectKeyId,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, next, prev.PublicKey, nextKey)
	if err != nil {
		return nil, fmt.Errorf("couldn't endorse the previous service identity: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), nil
}

// OwnFirst returns a copy of this service's first ledger secret (the one
// the keyring was made with), which keys node-local derivations (the
// checkpoint's MAC, commit evidence), whatever the previous service's.
func (k *Keyring) OwnFirst() []byte { return append([]byte(nil), k.first...) }

// PreviousService is a previous service identity as a recovery transaction
// records it (CCF's public:ccf.internal.previous_service_identity and the
// service record's previous_service_identity_version): the seqnos up to End
// were signed by the nodes of the service whose certificate is Cert.
type PreviousService struct {
	// End is the previous service's last seqno (its last signature).
	End uint64 `json:"end"`
	// Cert is its service certificate (PEM).
	Cert string `json:"cert"`
	// At is the seqno of the recovery transaction that recorded it (0: not
	// known from the ledger, e.g. recovery.json before the transaction).
	At uint64 `json:"at,omitempty"`
}

// previousIdentityName is what a raw ledger entry that records a previous
// service identity contains (the public domain is in clear): a cheap filter
// before parsing.
var previousIdentityName = []byte(PreviousServiceIdentityMap)

// MayRecordPreviousService reports whether a raw ledger entry may be a
// recovery transaction (it names PreviousServiceIdentityMap); false is
// certain, true needs PreviousServiceOf.
func MayRecordPreviousService(raw []byte) bool { return bytes.Contains(raw, previousIdentityName) }

// PreviousServiceOf returns the previous service identity a write set
// records, if it is a recovery transaction: its
// PreviousServiceIdentityMap certificate, and its ServiceInfoMap's
// previous_service_identity_version as the previous service's last seqno.
func PreviousServiceOf(maps []ledger.MapWrites) (PreviousService, bool, error) {
	var p PreviousService
	var found, end bool
	for _, m := range maps {
		for _, w := range m.Writes {
			if string(w.Key) != string(SingletonKey) {
				continue
			}
			switch m.Name {
			case PreviousServiceIdentityMap:
				p.Cert, found = string(w.Value), true
			case ServiceInfoMap:
				var v struct {
					Version *uint64 `json:"previous_service_identity_version"`
				}
				if json.Unmarshal(w.Value, &v) == nil && v.Version != nil {
					p.End, end = *v.Version, true
				}
			}
		}
	}
	if !found {
		return PreviousService{}, false, nil
	}
	if !end || p.End == 0 {
		return PreviousService{}, false, errors.New("tables: a recovery transaction without the previous service's last seqno (previous_service_identity_version)")
	}
	return p, true, nil
}

// PreviousLinkWrites returns the write that links this service's secrets
// to the previous service's, once they are recovered (CCF's
// issue_recovery_shares at the end of a recovery: the penultimate ledger
// secret, now the previous service's latest, encrypted with the latest in
// ENCRYPTED_PAST_LEDGER_SECRET): a HistoricalLedgerSecretMap value, in a
// transaction that is not a rekey, holding the previous service's latest
// secret encrypted with latest (this service's latest secret), its version
// the seqno from which it applied. A later recovery walks back from this
// service's secrets through it to the previous service's.
func (k *Keyring) PreviousLinkWrites(latest []byte, rnd io.Reader) ([]ledger.MapWrites, error) {
	k.mu.Lock()
	var prev *ringPrev
	if len(k.prev) > 0 {
		prev = &k.prev[len(k.prev)-1]
	}
	k.mu.Unlock()
	if prev == nil {
		return nil, ErrNotRecovered
	}
	if rnd == nil {
		rnd = rand.Reader
	}
	a, err := newGCM(latest)
	if err != nil {
		return nil, err
	}
	enc, err := seal(a, prev.secret, rnd)
	if err != nil {
		return nil, err
	}
	info := EncryptedLedgerSecretInfo{PreviousLedgerSecret: &PreviousLedgerSecretInfo{EncryptedData: enc, Version: int64(prev.from)}}
	return []ledger.MapWrites{{Name: HistoricalLedgerSecretMap, Writes: []ledger.KV{{Key: SingletonKey, Value: Value(info)}}}}, nil
}

// historicalName is what a raw entry that writes HistoricalLedgerSecretMap
// contains: a cheap filter before parsing.
var historicalName = []byte(HistoricalLedgerSecretMap)

// MayLinkPreviousSecret reports whether a raw ledger entry may write
// HistoricalLedgerSecretMap (a rekey, or the link of PreviousLinkWrites).
func MayLinkPreviousSecret(raw []byte) bool { return bytes.Contains(raw, historicalName) }
