package tables

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"errors"
	"math"
	"testing"
)

// TestKeyringChain: three rekeys at seqnos 10, 20, 30. Each seqno gets the
// secret of the last rekey before it; from the latest secret alone, the
// historical values walk back to every earlier secret with the seqnos they
// applied from; a keyring without the service key, or with another one,
// cannot unwrap; a rekey decided against another latest secret is refused.
func TestKeyringChain(t *testing.T) {
	first := make([]byte, 32)
	rand.Read(first)
	svc, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	k, err := NewKeyring(first, svc)
	if err != nil {
		t.Fatal(err)
	}
	var rekeys []Rekey
	var hist [][]byte
	for i := 1; i <= 3; i++ {
		w, err := k.RekeyWrites(rekeys, nil)
		if err != nil {
			t.Fatal(err)
		}
		latest, _ := k.Secret(rekeys, math.MaxUint64)
		if _, err := k.CheckRekey(latest, w); err != nil {
			t.Fatalf("rekey %d: %v", i, err)
		}
		if _, err := k.CheckRekey(first[:32:32], w); i > 1 && err == nil {
			t.Fatalf("rekey %d accepted against the first secret", i)
		}
		value, ok := RekeyOf(w)
		if !ok || bytes.Contains(value, latest) {
			t.Fatal("no rekey value, or the latest secret in plaintext")
		}
		hist = append(hist, w[1].Writes[0].Value)
		rekeys = append(rekeys, Rekey{Seqno: uint64(10 * i), Value: value})
	}
	secretAt := func(s uint64) []byte {
		b, err := k.Secret(rekeys, s)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	if !bytes.Equal(secretAt(10), first) || bytes.Equal(secretAt(11), first) || !bytes.Equal(secretAt(11), secretAt(20)) || bytes.Equal(secretAt(21), secretAt(20)) {
		t.Fatal("secrets do not switch at the seqno after each rekey")
	}
	cur := secretAt(math.MaxUint64)
	wantFrom := []int64{21, 11, 1}
	for i := 2; i >= 0; i-- {
		info, prev, err := PreviousSecret(hist[i], cur)
		if err != nil {
			t.Fatal(err)
		}
		if from := wantFrom[2-i]; info.Version != from || !bytes.Equal(prev, secretAt(uint64(from))) {
			t.Fatalf("walk step %d: version %d, want %d, or the wrong secret", 2-i, info.Version, from)
		}
		if stored := info.PreviousSecretStoredVersion; (i >= 2) != (stored != nil) || (stored != nil && *stored != int64(10*(i-1))) {
			t.Fatalf("walk step %d: previous_secret_stored_version %v", 2-i, stored)
		}
		cur = prev
	}
	noKey, _ := NewKeyring(first, nil)
	if _, err := noKey.AEAD(rekeys, 11); !errors.Is(err, ErrNoWrappingKey) {
		t.Fatalf("without the service key: %v", err)
	}
	if _, err := noKey.UnwrapValue(rekeys[0].Value); !errors.Is(err, ErrNoWrappingKey) {
		t.Fatalf("UnwrapValue without the service key: %v", err)
	}
	if _, err := noKey.AEAD(rekeys, 10); err != nil {
		t.Fatalf("without the service key, up to the first rekey: %v", err)
	}
	other, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	wrong, _ := NewKeyring(first, other)
	if _, err := wrong.AEAD(rekeys, 11); err == nil {
		t.Fatal("another service key unwrapped the secret")
	}
}
