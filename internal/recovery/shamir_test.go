package recovery

import (
	"bytes"
	"crypto/rand"
	"errors"
	mrand "math/rand/v2"
	"testing"
)

// mulRef multiplies in GF(2^8) modulo x^8+x^4+x^3+x+1 by carry-less
// multiplication then reduction: a different algorithm from gfMul's.
func mulRef(a, b byte) byte {
	var p uint16
	for i := 0; i < 8; i++ {
		if b>>i&1 == 1 {
			p ^= uint16(a) << i
		}
	}
	for i := 15; i >= 8; i-- {
		if p>>i&1 == 1 {
			p ^= 0x11b << (i - 8)
		}
	}
	return byte(p)
}

func TestField(t *testing.T) {
	for a := 0; a < 256; a++ {
		for b := 0; b < 256; b++ {
			if got, want := gfMul(byte(a), byte(b)), mulRef(byte(a), byte(b)); got != want {
				t.Fatalf("gfMul(%d, %d) = %d, want %d", a, b, got, want)
			}
		}
		if a != 0 && gfMul(byte(a), gfInv(byte(a))) != 1 {
			t.Fatalf("gfInv(%d) = %d is not its inverse", a, gfInv(byte(a)))
		}
	}
	if gfMul(0x57, 0x83) != 0xc1 { // FIPS-197 §4.2
		t.Fatalf("{57}*{83} = %#x, want 0xc1", gfMul(0x57, 0x83))
	}
}

// subsets calls fn with every subset of size k of shares.
func subsets(shares [][]byte, k int, fn func([][]byte)) {
	var rec func(start int, chosen [][]byte)
	rec = func(start int, chosen [][]byte) {
		if len(chosen) == k {
			fn(append([][]byte(nil), chosen...))
			return
		}
		for i := start; i < len(shares); i++ {
			rec(i+1, append(chosen, shares[i]))
		}
	}
	rec(0, nil)
}

func secret32(t *testing.T) []byte {
	t.Helper()
	s := make([]byte, 32)
	if _, err := rand.Read(s); err != nil {
		t.Fatal(err)
	}
	return s
}

// TestThreshold: every k of n shares reconstruct the secret; every k-1 do
// not.
func TestThreshold(t *testing.T) {
	for _, c := range []struct{ n, k int }{{1, 1}, {2, 1}, {2, 2}, {3, 2}, {5, 3}, {6, 6}, {7, 4}} {
		secret := secret32(t)
		shares, err := Split(secret, c.n, c.k, rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		if len(shares) != c.n {
			t.Fatalf("%d of %d: %d shares", c.k, c.n, len(shares))
		}
		for _, s := range shares {
			if len(s) != len(secret)+1 {
				t.Fatalf("share of %d bytes for a %d-byte secret", len(s), len(secret))
			}
		}
		for size := c.k; size <= c.n; size++ {
			subsets(shares, size, func(sub [][]byte) {
				got, err := Combine(sub)
				if err != nil || !bytes.Equal(got, secret) {
					t.Fatalf("%d of %d (threshold %d): got %x, %v; want the secret", size, c.n, c.k, got, err)
				}
			})
		}
		if c.k > 1 {
			subsets(shares, c.k-1, func(sub [][]byte) {
				got, err := Combine(sub)
				if err != nil {
					t.Fatal(err)
				}
				if bytes.Equal(got, secret) {
					t.Fatalf("%d shares of a %d-of-%d split reconstruct the secret", c.k-1, c.k, c.n)
				}
			})
		}
	}
}

// TestBelowThresholdRevealsNothing: k-1 shares are equally consistent with
// every secret. For k = 2, a single share (x, y) of secret s has y = a*x + s
// with a uniform, so y is uniform whatever s: over many splits of two
// different secrets, the share values seen are the same set.
func TestBelowThresholdRevealsNothing(t *testing.T) {
	seen := func(secret byte) [256]bool {
		var ys [256]bool
		for a := 0; a < 256; a++ {
			shares, err := Split([]byte{secret}, 3, 2, bytes.NewReader([]byte{byte(a)}))
			if err != nil {
				t.Fatal(err)
			}
			ys[shares[1][1]] = true // the share at x = 2
		}
		return ys
	}
	zero, other := seen(0), seen(0xa5)
	for y := range zero {
		if !zero[y] || !other[y] {
			t.Fatalf("share value %d is not reached by every secret", y)
		}
	}
}

// TestWrongSharesGiveAnotherSecret: shares of another split, or a changed
// share, never combine to the right secret.
func TestWrongSharesGiveAnotherSecret(t *testing.T) {
	secret := secret32(t)
	a, err := Split(secret, 3, 2, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	b, err := Split(secret, 3, 2, rand.Reader) // same secret, other polynomials
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := Combine([][]byte{a[0], b[1]}); bytes.Equal(got, secret) {
		t.Fatal("shares of two splits combined to the secret")
	}
	bad := bytes.Clone(a[1])
	bad[7] ^= 1
	got, err := Combine([][]byte{a[0], bad})
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Equal(got, secret) {
		t.Fatal("a changed share combined to the secret")
	}
	// Only the byte of the changed share's position differs.
	for i := range got {
		if (got[i] != secret[i]) != (i == 6) {
			t.Fatalf("byte %d: got %#x, secret %#x", i, got[i], secret[i])
		}
	}
}

func TestSplitArguments(t *testing.T) {
	for name, c := range map[string]struct {
		secret []byte
		n, k   int
	}{
		"empty secret":    {nil, 3, 2},
		"long secret":     {make([]byte, MaxSecretSize+1), 3, 2},
		"no shares":       {[]byte{1}, 0, 1},
		"too many shares": {[]byte{1}, MaxShares + 1, 2},
		"zero threshold":  {[]byte{1}, 3, 0},
		"threshold above": {[]byte{1}, 3, 4},
	} {
		if _, err := Split(c.secret, c.n, c.k, rand.Reader); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
	if _, err := Split([]byte{1}, 3, 2, bytes.NewReader(nil)); err == nil {
		t.Error("no error when the random source is empty")
	}
	if shares, err := Split(make([]byte, MaxSecretSize), MaxShares, MaxShares, rand.Reader); err != nil {
		t.Error(err)
	} else if got, err := Combine(shares); err != nil || !bytes.Equal(got, make([]byte, MaxSecretSize)) {
		t.Errorf("%d of %d: %x, %v", MaxShares, MaxShares, got, err)
	}
}

func TestCombineRefusesMalformedShares(t *testing.T) {
	s := func(b ...byte) []byte { return b }
	for name, shares := range map[string][][]byte{
		"none":           nil,
		"too many":       make([][]byte, MaxShares+1),
		"too short":      {s(1)},
		"too long":       {make([]byte, MaxSecretSize+2)},
		"sizes differ":   {s(1, 2, 3), s(2, 3)},
		"index zero":     {s(0, 1)},
		"repeated index": {s(1, 5), s(2, 6), s(1, 7)},
	} {
		if _, err := Combine(shares); !errors.Is(err, ErrShares) {
			t.Errorf("%s: %v, want ErrShares", name, err)
		}
	}
}

// FuzzCombine feeds arbitrary share sets to Combine: it never panics, and
// what it accepts is well-formed; shares it makes itself round-trip.
func FuzzCombine(f *testing.F) {
	shares, _ := Split([]byte("0123456789abcdef0123456789abcdef"), 3, 2, rand.Reader)
	f.Add(bytes.Join(shares, nil), uint8(3))
	f.Add([]byte{1, 2, 1, 3}, uint8(2))
	f.Add([]byte{}, uint8(0))
	f.Fuzz(func(t *testing.T, data []byte, n uint8) {
		var in [][]byte
		if n > 0 {
			size := len(data) / int(n)
			for i := 0; i < int(n) && size > 0; i++ {
				in = append(in, data[i*size:(i+1)*size])
			}
		}
		got, err := Combine(in)
		if err != nil {
			if !errors.Is(err, ErrShares) {
				t.Fatalf("error %v is not ErrShares", err)
			}
			return
		}
		if len(got) != len(in[0])-1 {
			t.Fatalf("%d-byte secret from %d-byte shares", len(got), len(in[0]))
		}
		// Split what came out, with a threshold of what went in: it
		// round-trips.
		k := len(in)
		again, err := Split(got, k, k, rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		mrand.Shuffle(len(again), func(i, j int) { again[i], again[j] = again[j], again[i] })
		if back, err := Combine(again); err != nil || !bytes.Equal(back, got) {
			t.Fatalf("round trip: %x, %v; want %x", back, err, got)
		}
	})
}
