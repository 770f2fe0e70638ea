package recovery

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sort"

	"github.com/ledgerd/ledgerd/internal/ledger"
	"github.com/ledgerd/ledgerd/internal/tables"
)

// State is the read side of the governance state: gov.State, which
// *node.State implements. It is declared here so that package gov may use
// this package.
type State interface {
	// Get returns the value of key in map name.
	Get(name string, key []byte) ([]byte, bool)
	// Range calls fn for each key of map name in key order, until fn
	// returns false.
	Range(name string, fn func(key, value []byte) bool)
}

// WrappingKeySize is the size of the one-time key that wraps the ledger
// secret and is split among the recovery members (CCF's KZ_KEY_SIZE): an
// AES-256-GCM key. A share of it is WrappingKeySize+1 bytes.
const WrappingKeySize = 32

// ShareSize is the size of a decrypted recovery share.
const ShareSize = WrappingKeySize + 1

// DefaultThreshold is the recovery threshold when the service
// configuration does not set one.
const DefaultThreshold = 1

// Wrapped secrets are AES-256-GCM, laid out as CCF's GcmCipher::serialise:
// tag[16] || iv[12] || ciphertext.
const (
	gcmTagSize = 16
	gcmIVSize  = 12
)

// Errors of Recover.
var (
	// ErrTooFewShares: fewer shares than the recovery threshold.
	ErrTooFewShares = errors.New("recovery: fewer shares than the recovery threshold")
	// ErrWrongShares: the shares do not reconstruct the key that wrapped
	// the ledger secret (wrong, stale or tampered shares).
	ErrWrongShares = errors.New("recovery: the shares do not unwrap the ledger secret")
	// ErrNoShares: the state holds no recovery shares.
	ErrNoShares = errors.New("recovery: the service has no recovery shares")
)

// SharesInfo is the value of tables.RecoverySharesMap, CCF's
// RecoverySharesInfo (src/service/tables/shares.h); byte strings are
// base64 in JSON, as CCF writes them.
type SharesInfo struct {
	// WrappedLatestLedgerSecret is the latest ledger secret encrypted with
	// the wrapping key (AES-256-GCM, zero IV: the key is used once).
	WrappedLatestLedgerSecret []byte `json:"wrapped_latest_ledger_secret"`
	// EncryptedShares maps each recovery member's id to its share of the
	// wrapping key, RSA-OAEP encrypted to the member's encryption key.
	EncryptedShares map[string][]byte `json:"encrypted_shares"`
	// PreviousSecretStoredVersion is the seqno at which the ledger secret
	// before the latest was recorded (set by a rekey; kept by a refresh).
	PreviousSecretStoredVersion *uint64 `json:"previous_secret_stored_version,omitempty"`
}

// Member is a recovery member: an Active member with an encryption key
// whose recovery_role is not NonParticipant.
type Member struct {
	ID  string
	Key *rsa.PublicKey
	// Owner is a recovery owner (recovery_role "Owner"): it gets the whole
	// wrapping key, which recovers alone, instead of one of the k-of-n
	// shares the participants get (CCF's full key share).
	Owner bool
}

// memberInfo is the part of a member's info record read here.
type memberInfo struct {
	Status       string `json:"status"`
	RecoveryRole string `json:"recovery_role,omitempty"`
}

// Members returns the recovery members of st, ordered by id: the members
// with a key in tables.MembersEncryptionKeysMap whose info is Active and
// whose recovery_role is Participant (or unset) or Owner, as CCF's
// get_active_recovery_participants and get_active_recovery_owners. A key
// without member info, or that does not parse, is an error naming the
// member.
func Members(st State) ([]Member, error) {
	var members []Member
	var err error
	st.Range(tables.MembersEncryptionKeysMap, func(key, value []byte) bool {
		raw, ok := st.Get(tables.MembersInfoMap, key)
		if !ok {
			err = fmt.Errorf("recovery: recovery member %s has no member info", key)
			return false
		}
		var info memberInfo
		if e := json.Unmarshal(raw, &info); e != nil {
			err = fmt.Errorf("recovery: couldn't decode the info of member %s: %w", key, e)
			return false
		}
		if info.Status != tables.MemberActive || info.RecoveryRole == "NonParticipant" {
			return true
		}
		pub, e := ParsePublicKey(value)
		if e != nil {
			err = fmt.Errorf("recovery: member %s: %w", key, e)
			return false
		}
		members = append(members, Member{ID: string(key), Key: pub, Owner: info.RecoveryRole == "Owner"})
		return true
	})
	if err != nil {
		return nil, err
	}
	return members, nil
}

// Threshold returns the recovery threshold of st's service configuration
// (tables.ServiceConfigMap's recovery_threshold), DefaultThreshold if the
// configuration or the field is absent.
func Threshold(st State) (int, error) {
	raw, ok := st.Get(tables.ServiceConfigMap, tables.SingletonKey)
	if !ok {
		return DefaultThreshold, nil
	}
	var config struct {
		RecoveryThreshold *int `json:"recovery_threshold"`
	}
	if err := json.Unmarshal(raw, &config); err != nil {
		return 0, fmt.Errorf("recovery: couldn't decode the service configuration: %w", err)
	}
	switch t := config.RecoveryThreshold; {
	case t == nil:
		return DefaultThreshold, nil
	case *t < 1 || *t > MaxShares:
		return 0, fmt.Errorf("recovery: the service configuration's recovery threshold %d is not in 1..%d", *t, MaxShares)
	default:
		return *t, nil
	}
}

// Info returns the recovery shares recorded in st, ok=false if none.
func Info(st State) (*SharesInfo, bool, error) {
	raw, ok := st.Get(tables.RecoverySharesMap, tables.SingletonKey)
	if !ok {
		return nil, false, nil
	}
	info := new(SharesInfo)
	if err := json.Unmarshal(raw, info); err != nil {
		return nil, true, fmt.Errorf("recovery: couldn't decode the recovery shares: %w", err)
	}
	return info, true, nil
}

// EncryptedShare returns member id's encrypted share, ok=false if the
// member has none.
func EncryptedShare(st State, id string) ([]byte, bool, error) {
	info, ok, err := Info(st)
	if !ok || err != nil {
		return nil, false, err
	}
	share, ok := info.EncryptedShares[id]
	return share, ok, nil
}

// SharesWrites issues new recovery shares of secret (the latest ledger
// secret) to the recovery members of st, as CCF's shuffle_recovery_shares:
// a fresh wrapping key from rnd wraps secret and is split among the
// participants with st's threshold, each share encrypted to its member;
// each owner gets the whole key (a full share, index 0). It returns the
// write to tables.RecoverySharesMap, to be made in the same transaction as
// the change that called for it (genesis, a member's ack, a membership or
// threshold change, a rekey). With no recovery member it returns no writes
// and no error; a threshold above the number of participants (or above 1
// with owners only) is an error, as in CCF.
func SharesWrites(st State, secret []byte, rnd io.Reader) ([]ledger.MapWrites, error) {
	if len(secret) == 0 {
		return nil, errors.New("recovery: no ledger secret to share")
	}
	members, err := Members(st)
	if err != nil || len(members) == 0 {
		return nil, err
	}
	k, err := Threshold(st)
	if err != nil {
		return nil, err
	}
	var participants, owners []Member
	for _, m := range members {
		if m.Owner {
			owners = append(owners, m)
		} else {
			participants = append(participants, m)
		}
	}
	n := len(participants)
	switch {
	case n == 0 && k > 1:
		return nil, fmt.Errorf("recovery: the recovery threshold %d cannot exceed 1 when the recovery members are %d owners only", k, len(owners))
	case n == 0:
		n = 1 // a share no one holds: the owners' full key recovers
	case k > n:
		return nil, fmt.Errorf("recovery: the recovery threshold %d exceeds the %d active recovery participants", k, n)
	case n > MaxShares:
		return nil, fmt.Errorf("recovery: %d active recovery participants; at most %d can hold shares", n, MaxShares)
	}
	key := make([]byte, WrappingKeySize)
	defer clear(key)
	if _, err := io.ReadFull(rnd, key); err != nil {
		return nil, fmt.Errorf("recovery: couldn't draw the wrapping key: %w", err)
	}
	wrapped, err := wrap(key, secret)
	if err != nil {
		return nil, err
	}
	shares, err := Split(key, n, k, rnd)
	if err != nil {
		return nil, err
	}
	defer func() {
		for _, s := range shares {
			clear(s)
		}
	}()
	full := append([]byte{0}, key...) // the polynomials at x = 0
	defer clear(full)
	info := SharesInfo{WrappedLatestLedgerSecret: wrapped, EncryptedShares: make(map[string][]byte, len(members))}
	for i, m := range participants {
		if info.EncryptedShares[m.ID], err = EncryptShare(m.Key, shares[i], rnd); err != nil {
			return nil, fmt.Errorf("recovery: couldn't encrypt the share of member %s: %w", m.ID, err)
		}
	}
	for _, m := range owners {
		if info.EncryptedShares[m.ID], err = EncryptShare(m.Key, full, rnd); err != nil {
			return nil, fmt.Errorf("recovery: couldn't encrypt the share of member %s: %w", m.ID, err)
		}
	}
	if old, ok, err := Info(st); err != nil {
		return nil, err
	} else if ok {
		info.PreviousSecretStoredVersion = old.PreviousSecretStoredVersion
	}
	value, err := json.Marshal(info)
	if err != nil {
		return nil, err
	}
	return []ledger.MapWrites{{Name: tables.RecoverySharesMap,
		Writes: []ledger.KV{{Key: tables.SingletonKey, Value: value}}}}, nil
}

// IsFullKey reports whether a decrypted share is a recovery owner's full
// share (index 0), which recovers alone (CCF's is_full_key).
func IsFullKey(share []byte) bool { return len(share) == ShareSize && share[0] == 0 }

// Recover reconstructs the latest ledger secret from decrypted shares
// (what members submit) and the recovery shares and threshold of st. An
// owner's full share recovers alone; otherwise fewer shares than the
// threshold is ErrTooFewShares. Shares that do not reconstruct the wrapping
// key (wrong, stale, or from too few members under a lower threshold) are
// ErrWrongShares: GCM authenticates the result, so a wrong key is never
// taken for the right secret.
func Recover(shares [][]byte, st State) ([]byte, error) {
	for i, s := range shares {
		if len(s) != ShareSize {
			return nil, fmt.Errorf("%w: share %d is %d bytes, not %d", ErrShares, i, len(s), ShareSize)
		}
	}
	info, ok, err := Info(st)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, ErrNoShares
	}
	for _, s := range shares {
		if IsFullKey(s) {
			return unwrap(s[1:], info.WrappedLatestLedgerSecret)
		}
	}
	k, err := Threshold(st)
	if err != nil {
		return nil, err
	}
	if len(shares) < k {
		return nil, fmt.Errorf("%w: %d of %d", ErrTooFewShares, len(shares), k)
	}
	key, err := Combine(shares)
	if err != nil {
		return nil, err
	}
	defer clear(key)
	return unwrap(key, info.WrappedLatestLedgerSecret)
}

// wrap encrypts secret with the one-time key (CCF's
// LedgerSecretWrappingKey::wrap: zero IV, no additional data).
func wrap(key, secret []byte) ([]byte, error) {
	aead, err := newGCM(key)
	if err != nil {
		return nil, err
	}
	sealed := aead.Seal(nil, make([]byte, gcmIVSize), secret, nil)
	ct, tag := sealed[:len(secret)], sealed[len(secret):]
	out := make([]byte, 0, gcmTagSize+gcmIVSize+len(ct))
	out = append(out, tag...)
	out = append(out, make([]byte, gcmIVSize)...)
	return append(out, ct...), nil
}

// unwrap reverses wrap; a wrong key is ErrWrongShares.
func unwrap(key, wrapped []byte) ([]byte, error) {
	if len(wrapped) <= gcmTagSize+gcmIVSize {
		return nil, fmt.Errorf("recovery: the wrapped ledger secret is %d bytes, too short", len(wrapped))
	}
	aead, err := newGCM(key)
	if err != nil {
		return nil, err
	}
	tag, iv, ct := wrapped[:gcmTagSize], wrapped[gcmTagSize:gcmTagSize+gcmIVSize], wrapped[gcmTagSize+gcmIVSize:]
	sealed := make([]byte, 0, len(ct)+gcmTagSize)
	sealed = append(append(sealed, ct...), tag...)
	secret, err := aead.Open(nil, iv, sealed, nil)
	if err != nil {
		return nil, ErrWrongShares
	}
	return secret, nil
}

func newGCM(key []byte) (cipher.AEAD, error) {
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("recovery: %w", err)
	}
	return cipher.NewGCM(block)
}

// WriteSetState is a State over write sets, later writes winning: the
// state a transaction's writes make from nothing (the genesis transaction's
// for the initial shares).
func WriteSetState(writes []ledger.MapWrites) State {
	st := writeSetState{}
	for _, m := range writes {
		t := st[m.Name]
		if t == nil {
			t = map[string][]byte{}
			st[m.Name] = t
		}
		for _, kv := range m.Writes {
			t[string(kv.Key)] = kv.Value
		}
		for _, k := range m.Removes {
			delete(t, string(k))
		}
	}
	return st
}

type writeSetState map[string]map[string][]byte

func (s writeSetState) Get(name string, key []byte) ([]byte, bool) {
	v, ok := s[name][string(key)]
	return v, ok
}

func (s writeSetState) Range(name string, fn func(key, value []byte) bool) {
	t := s[name]
	keys := make([]string, 0, len(t))
	for k := range t {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if !fn([]byte(k), t[k]) {
			return
		}
	}
}
