package tables

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/ecdsa"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"sync"

	"github.com/ledgerd/ledgerd/internal/ledger"
)

// Ledger rekey (CCF's trigger_ledger_rekey): a rekey transaction at seqno R
// writes a fresh 32-byte ledger secret, wrapped, to EncryptedLedgerSecretsMap;
// every transaction after it (R+1 on, CCF's "version + 1") is encrypted with
// that secret. The same transaction writes HistoricalLedgerSecretMap: the
// secret it replaces encrypted with the new one (CCF's encrypted past ledger
// secret), so whoever holds the latest secret can walk back to every earlier
// one. Neither value holds a secret in plaintext. See docs/architecture.md,
// "Ledger rekey".
const (
	// EncryptedLedgerSecretsMap is CCF's ENCRYPTED_LEDGER_SECRETS: key =
	// SingletonKey, value = EncryptedLedgerSecrets (JSON).
	EncryptedLedgerSecretsMap = "public:ccf.internal.encrypted_ledger_secrets"
	// HistoricalLedgerSecretMap is CCF's ENCRYPTED_PAST_LEDGER_SECRET: key =
	// SingletonKey, value = EncryptedLedgerSecretInfo (JSON).
	HistoricalLedgerSecretMap = "public:ccf.internal.historical_encrypted_ledger_secret"
)

// EncryptedLedgerSecret is one wrapped ledger secret (CCF's
// EncryptedLedgerSecret). Version is omitted: a rekey's secret applies from
// the seqno after the transaction that writes it.
type EncryptedLedgerSecret struct {
	Version *int64 `json:"version,omitempty"`
	// EncryptedSecret is the secret under the wrapping key (WrapSecret).
	EncryptedSecret []byte `json:"encrypted_secret"`
	// PreviousSecretStoredVersion is the seqno of the rekey that stored the
	// secret this one replaces (absent when it replaces the first secret).
	PreviousSecretStoredVersion *int64 `json:"previous_secret_stored_version,omitempty"`
}

// EncryptedLedgerSecrets is the value of EncryptedLedgerSecretsMap (CCF's
// LedgerSecretsForNodes): for each recipient, its wrapped secrets. ledgerd
// has one recipient, the service's wrapping key (WrappingKeyID).
type EncryptedLedgerSecrets map[string][]EncryptedLedgerSecret

// PreviousLedgerSecretInfo is CCF's PreviousLedgerSecretInfo: the secret a
// rekey replaces, encrypted with the new secret.
type PreviousLedgerSecretInfo struct {
	// EncryptedData is tag(16) || IV(12) || ciphertext, AES-256-GCM under the
	// new secret, no AAD (CCF's GcmCipher layout).
	EncryptedData []byte `json:"encrypted_data"`
	// Version is the seqno from which the previous secret applies (1 for the
	// service's first secret).
	Version int64 `json:"version"`
	// PreviousSecretStoredVersion is the seqno of the rekey that stored the
	// secret before the previous one, where the chain continues (absent when
	// the previous secret is the first).
	PreviousSecretStoredVersion *int64 `json:"previous_secret_stored_version,omitempty"`
}

// EncryptedLedgerSecretInfo is the value of HistoricalLedgerSecretMap.
type EncryptedLedgerSecretInfo struct {
	PreviousLedgerSecret *PreviousLedgerSecretInfo `json:"previous_ledger_secret,omitempty"`
	NextVersion          *int64                    `json:"next_version,omitempty"`
}

// Rekey is a rekey transaction as a node's state keeps it: its seqno and
// the value it wrote to EncryptedLedgerSecretsMap.
type Rekey struct {
	Seqno uint64 `json:"seqno"`
	Value []byte `json:"value"`
}

// RekeyOf returns the EncryptedLedgerSecretsMap value a write set writes,
// if it is a rekey.
func RekeyOf(maps []ledger.MapWrites) ([]byte, bool) {
	for _, m := range maps {
		if m.Name == EncryptedLedgerSecretsMap {
			for _, w := range m.Writes {
				if string(w.Key) == string(SingletonKey) {
					return w.Value, true
				}
			}
		}
	}
	return nil, false
}

// SecretWrappingKey derives the key that wraps rekeyed ledger secrets from
// the service private key: HKDF-SHA256 over its scalar, info "ledgerd
// ledger secret wrapping". Every node of a service holds the service key
// (as it holds the first ledger secret), and only they do.
func SecretWrappingKey(service *ecdsa.PrivateKey) ([]byte, error) {
	if service == nil {
		return nil, errors.New("tables: no service key")
	}
	k, err := service.ECDH()
	if err != nil {
		return nil, err
	}
	return hkdf.Key(sha256.New, k.Bytes(), nil, "ledgerd ledger secret wrapping", 32)
}

// WrappingKeyID names the wrapping key derived from a service key: the
// lowercase hex SHA-256 of the service public key's DER
// SubjectPublicKeyInfo (as a node id names a node key).
func WrappingKeyID(pub *ecdsa.PublicKey) (string, error) {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256(der)
	return hex.EncodeToString(sum[:]), nil
}

func newGCM(key []byte) (cipher.AEAD, error) {
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(block)
}

// seal is AES-GCM with a random IV, laid out tag || IV || ciphertext.
func seal(aead cipher.AEAD, plain []byte, rnd io.Reader) ([]byte, error) {
	iv := make([]byte, aead.NonceSize())
	if _, err := io.ReadFull(rnd, iv); err != nil {
		return nil, err
	}
	sealed := aead.Seal(nil, iv, plain, nil)
	ct, tag := sealed[:len(plain)], sealed[len(plain):]
	out := append(append(append([]byte{}, tag...), iv...), ct...)
	return out, nil
}

func open(aead cipher.AEAD, b []byte) ([]byte, error) {
	ts, ns := aead.Overhead(), aead.NonceSize()
	if len(b) < ts+ns {
		return nil, errors.New("too short")
	}
	tag, iv, ct := b[:ts], b[ts:ts+ns], b[ts+ns:]
	return aead.Open(nil, iv, append(append([]byte{}, ct...), tag...), nil)
}

// Keyring finds the ledger secret of any seqno: the service's first secret
// (ledger.secret) up to the first rekey, then each rekey's secret, unwrapped
// with the wrapping key, from the seqno after its rekey transaction. Which
// rekeys there are is the caller's (a node's executed state, an auditor's
// walk); the keyring caches what it unwrapped. Safe for concurrent use.
type Keyring struct {
	first     []byte
	firstAEAD cipher.AEAD
	wrap      cipher.AEAD // nil: rekeyed secrets cannot be unwrapped
	recipient string

	mu    sync.Mutex
	cache map[uint64]*ringSecret // by rekey seqno

	// A recovered service (recovered.go): seqnos up to prevEnd are the
	// previous service's, with the secrets prev once recovered.
	prevEnd uint64
	prev    []ringPrev
}

type ringSecret struct {
	value  []byte // the EncryptedLedgerSecretsMap value it came from
	secret []byte
	aead   cipher.AEAD
}

// ErrNoWrappingKey: the ledger was rekeyed and the keyring has no wrapping
// key (the service key) to unwrap the new secret.
var ErrNoWrappingKey = errors.New("tables: the ledger was rekeyed, and the service key that unwraps its new secrets is not available")

// NewKeyring returns the keyring of a service whose first ledger secret is
// first. service (the service private key) may be nil: secrets of rekeys
// are then not available (ErrNoWrappingKey).
func NewKeyring(first []byte, service *ecdsa.PrivateKey) (*Keyring, error) {
	a, err := newGCM(first)
	if err != nil {
		return nil, fmt.Errorf("tables: bad ledger secret: %w", err)
	}
	k := &Keyring{first: append([]byte(nil), first...), firstAEAD: a, cache: map[uint64]*ringSecret{}}
	if service != nil {
		key, err := SecretWrappingKey(service)
		if err != nil {
			return nil, err
		}
		if k.wrap, err = newGCM(key); err != nil {
			return nil, err
		}
		if k.recipient, err = WrappingKeyID(&service.PublicKey); err != nil {
			return nil, err
		}
	}
	return k, nil
}

// First returns the AES-GCM of the service's first ledger secret.
func (k *Keyring) First() cipher.AEAD { return k.firstAEAD }

// CanUnwrap reports whether the keyring has the wrapping key.
func (k *Keyring) CanUnwrap() bool { return k.wrap != nil }

// last returns the index of the rekey whose secret applies at seqno, or -1
// for the first secret. rekeys are in seqno order.
func last(rekeys []Rekey, seqno uint64) int {
	i := len(rekeys) - 1
	for i >= 0 && rekeys[i].Seqno >= seqno {
		i--
	}
	return i
}

// AEAD returns the AES-256-GCM of the ledger secret that applies at seqno,
// given the rekeys before it (in seqno order).
func (k *Keyring) AEAD(rekeys []Rekey, seqno uint64) (cipher.AEAD, error) {
	if k.isPrevious(seqno) {
		p, err := k.previousAt(seqno)
		if err != nil {
			return nil, err
		}
		return p.aead, nil
	}
	rekeys = k.own(rekeys)
	i := last(rekeys, seqno)
	if i < 0 {
		return k.firstAEAD, nil
	}
	s, err := k.unwrap(rekeys[i])
	if err != nil {
		return nil, err
	}
	return s.aead, nil
}

// Secret returns a copy of the ledger secret that applies at seqno.
func (k *Keyring) Secret(rekeys []Rekey, seqno uint64) ([]byte, error) {
	if k.isPrevious(seqno) {
		p, err := k.previousAt(seqno)
		if err != nil {
			return nil, err
		}
		return append([]byte(nil), p.secret...), nil
	}
	rekeys = k.own(rekeys)
	i := last(rekeys, seqno)
	if i < 0 {
		return append([]byte(nil), k.first...), nil
	}
	s, err := k.unwrap(rekeys[i])
	if err != nil {
		return nil, err
	}
	return append([]byte(nil), s.secret...), nil
}

func (k *Keyring) unwrap(r Rekey) (*ringSecret, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if s := k.cache[r.Seqno]; s != nil && string(s.value) == string(r.Value) {
		return s, nil
	}
	if k.wrap == nil {
		return nil, fmt.Errorf("%w (rekey at seqno %d)", ErrNoWrappingKey, r.Seqno)
	}
	secret, err := k.unwrapValue(r.Value)
	if err != nil {
		return nil, fmt.Errorf("tables: the ledger secret of the rekey at seqno %d: %w", r.Seqno, err)
	}
	a, err := newGCM(secret)
	if err != nil {
		return nil, err
	}
	s := &ringSecret{value: r.Value, secret: secret, aead: a}
	k.cache[r.Seqno] = s
	return s, nil
}

// UnwrapValue returns the secret an EncryptedLedgerSecretsMap value wraps
// for this service.
func (k *Keyring) UnwrapValue(value []byte) ([]byte, error) { return k.unwrapValue(value) }

func (k *Keyring) unwrapValue(value []byte) ([]byte, error) {
	if k.wrap == nil {
		return nil, ErrNoWrappingKey
	}
	var v EncryptedLedgerSecrets
	if err := json.Unmarshal(value, &v); err != nil {
		return nil, fmt.Errorf("unreadable %s value: %w", EncryptedLedgerSecretsMap, err)
	}
	ws := v[k.recipient]
	if len(ws) == 0 {
		return nil, fmt.Errorf("no secret wrapped for this service's key %s (is service.key this service's key?)", k.recipient)
	}
	secret, err := open(k.wrap, ws[len(ws)-1].EncryptedSecret)
	if err != nil {
		return nil, fmt.Errorf("couldn't unwrap it (is service.key this service's key?): %w", err)
	}
	if len(secret) != 32 {
		return nil, fmt.Errorf("unwrapped secret is %d bytes, want 32", len(secret))
	}
	return secret, nil
}

// RekeyWrites returns the writes of a rekey transaction that follows the
// given rekeys: a fresh secret from rnd (crypto/rand if nil), wrapped for
// the service's wrapping key, and the secret it replaces (the latest)
// encrypted with it.
func (k *Keyring) RekeyWrites(rekeys []Rekey, rnd io.Reader) ([]ledger.MapWrites, error) {
	if k.wrap == nil {
		return nil, ErrNoWrappingKey
	}
	if rnd == nil {
		rnd = rand.Reader
	}
	rekeys = k.own(rekeys)
	latest, err := k.Secret(rekeys, math.MaxUint64)
	if err != nil {
		return nil, err
	}
	fresh := make([]byte, 32)
	if _, err := io.ReadFull(rnd, fresh); err != nil {
		return nil, fmt.Errorf("tables: couldn't generate a ledger secret: %w", err)
	}
	freshAEAD, err := newGCM(fresh)
	if err != nil {
		return nil, err
	}
	wrapped, err := seal(k.wrap, fresh, rnd)
	if err != nil {
		return nil, err
	}
	prev, err := seal(freshAEAD, latest, rnd)
	if err != nil {
		return nil, err
	}
	end, _ := k.Previous()
	info := &PreviousLedgerSecretInfo{EncryptedData: prev, Version: int64(end) + 1}
	var stored *int64
	if n := len(rekeys); n > 0 {
		s := int64(rekeys[n-1].Seqno)
		stored = &s
		info.Version = s + 1
		if n > 1 {
			p := int64(rekeys[n-2].Seqno)
			info.PreviousSecretStoredVersion = &p
		}
	}
	secrets := EncryptedLedgerSecrets{k.recipient: {{EncryptedSecret: wrapped, PreviousSecretStoredVersion: stored}}}
	return []ledger.MapWrites{
		{Name: EncryptedLedgerSecretsMap, Writes: []ledger.KV{{Key: SingletonKey, Value: Value(secrets)}}},
		{Name: HistoricalLedgerSecretMap, Writes: []ledger.KV{{Key: SingletonKey, Value: Value(EncryptedLedgerSecretInfo{PreviousLedgerSecret: info})}}},
	}, nil
}

// CheckRekey checks that a rekey's write set follows the latest secret: its
// new secret unwraps and its historical entry decrypts, under the new
// secret, to latest. It returns the new secret. A rekey decided against a
// state that a rollback or another rekey has since changed fails it.
func (k *Keyring) CheckRekey(latest []byte, maps []ledger.MapWrites) ([]byte, error) {
	value, ok := RekeyOf(maps)
	if !ok {
		return nil, errors.New("tables: not a rekey")
	}
	if k.wrap == nil {
		return nil, ErrNoWrappingKey
	}
	fresh, err := k.unwrapValue(value)
	if err != nil {
		return nil, fmt.Errorf("tables: rekey: %w", err)
	}
	var info EncryptedLedgerSecretInfo
	for _, m := range maps {
		if m.Name == HistoricalLedgerSecretMap && len(m.Writes) == 1 {
			if err := json.Unmarshal(m.Writes[0].Value, &info); err != nil {
				return nil, fmt.Errorf("tables: rekey: unreadable %s value: %w", HistoricalLedgerSecretMap, err)
			}
		}
	}
	if info.PreviousLedgerSecret == nil {
		return nil, fmt.Errorf("tables: rekey without %s", HistoricalLedgerSecretMap)
	}
	a, err := newGCM(fresh)
	if err != nil {
		return nil, err
	}
	prev, err := open(a, info.PreviousLedgerSecret.EncryptedData)
	if err != nil || subtle.ConstantTimeCompare(prev, latest) != 1 {
		return nil, errors.New("tables: the rekey does not follow the latest ledger secret (another rekey or a rollback came between); retry it")
	}
	return fresh, nil
}

// PreviousSecret decrypts the secret a rekey replaced from the
// HistoricalLedgerSecretMap value it wrote, with the rekey's own secret
// (CCF's recovery walk from the latest secret back).
func PreviousSecret(historical, secret []byte) (*PreviousLedgerSecretInfo, []byte, error) {
	var info EncryptedLedgerSecretInfo
	if err := json.Unmarshal(historical, &info); err != nil || info.PreviousLedgerSecret == nil {
		return nil, nil, fmt.Errorf("tables: unreadable %s value", HistoricalLedgerSecretMap)
	}
	a, err := newGCM(secret)
	if err != nil {
		return nil, nil, err
	}
	prev, err := open(a, info.PreviousLedgerSecret.EncryptedData)
	if err != nil {
		return nil, nil, fmt.Errorf("tables: couldn't decrypt the previous ledger secret: %w", err)
	}
	return info.PreviousLedgerSecret, prev, nil
}
