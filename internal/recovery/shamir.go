package recovery

import (
	"errors"
	"fmt"
	"io"
)

// Shamir's secret sharing over GF(2^8) (the AES field, x^8+x^4+x^3+x+1),
// byte by byte: byte i of the secret is the constant term of a random
// polynomial of degree k-1, and share j holds the evaluations of every
// polynomial at x = j. Any k shares determine the polynomials (Lagrange
// interpolation at 0); k-1 shares are consistent with every secret.
//
// A share is x (one byte, 1..255) followed by one byte per secret byte:
// every share of a secret has the same size, len(secret)+1.

// MaxShares is the most shares a secret may be split into: the non-zero
// elements of GF(2^8).
const MaxShares = 255

// MaxSecretSize bounds the secret Split accepts and so the share Combine
// accepts (MaxSecretSize+1 bytes).
const MaxSecretSize = 64

// Errors of Split and Combine.
var (
	// ErrShares: the shares given to Combine are malformed or inconsistent.
	ErrShares = errors.New("recovery: invalid shares")
)

// gfMul multiplies in GF(2^8) without branches or tables that depend on
// the operands (the operands are secret).
func gfMul(a, b byte) byte {
	var p byte
	for i := 0; i < 8; i++ {
		p ^= a & -(b & 1)
		hi := a >> 7
		a = a<<1 ^ 0x1b&-hi
		b >>= 1
	}
	return p
}

// gfInv returns a^-1 = a^254 (0 for 0), in constant time.
func gfInv(a byte) byte {
	// a^254 = a^(2+4+8+16+32+64+128)
	r := byte(1)
	x := a
	for i := 0; i < 7; i++ {
		x = gfMul(x, x) // a^(2^(i+1))
		r = gfMul(r, x)
	}
	return r
}

// Split splits secret into n shares of which any k reconstruct it and any
// k-1 reveal nothing about it. rnd supplies the polynomials' coefficients
// (crypto/rand.Reader in production).
func Split(secret []byte, n, k int, rnd io.Reader) ([][]byte, error) {
	switch {
	case len(secret) == 0 || len(secret) > MaxSecretSize:
		return nil, fmt.Errorf("recovery: a secret to split must be 1..%d bytes, not %d", MaxSecretSize, len(secret))
	case n < 1 || n > MaxShares:
		return nil, fmt.Errorf("recovery: cannot split into %d shares (1..%d)", n, MaxShares)
	case k < 1 || k > n:
		return nil, fmt.Errorf("recovery: threshold %d must be between 1 and the number of shares %d", k, n)
	}
	// coeffs[i*(k-1)+d] is the coefficient of x^(d+1) for secret byte i.
	coeffs := make([]byte, len(secret)*(k-1))
	if _, err := io.ReadFull(rnd, coeffs); err != nil {
		return nil, fmt.Errorf("recovery: couldn't draw the polynomials: %w", err)
	}
	defer clear(coeffs)
	shares := make([][]byte, n)
	for j := range shares {
		x := byte(j + 1)
		s := make([]byte, 1+len(secret))
		s[0] = x
		for i, c0 := range secret {
			// Horner: ((a_{k-1} x + a_{k-2}) x + ... + a_1) x + a_0
			var y byte
			for d := k - 2; d >= 0; d-- {
				y = gfMul(y, x) ^ coeffs[i*(k-1)+d]
			}
			s[1+i] = gfMul(y, x) ^ c0
		}
		shares[j] = s
	}
	return shares, nil
}

// checkShares validates shares for Combine before anything is allocated:
// 1..MaxShares shares, all of one size in 2..MaxSecretSize+1, with distinct
// non-zero x.
func checkShares(shares [][]byte) error {
	if len(shares) == 0 || len(shares) > MaxShares {
		return fmt.Errorf("%w: %d shares given (1..%d)", ErrShares, len(shares), MaxShares)
	}
	size := len(shares[0])
	if size < 2 || size > MaxSecretSize+1 {
		return fmt.Errorf("%w: a share is %d bytes (2..%d)", ErrShares, size, MaxSecretSize+1)
	}
	var seen [256]bool
	for i, s := range shares {
		if len(s) != size {
			return fmt.Errorf("%w: share %d is %d bytes, share 0 is %d", ErrShares, i, len(s), size)
		}
		if s[0] == 0 {
			return fmt.Errorf("%w: share %d has index 0", ErrShares, i)
		}
		if seen[s[0]] {
			return fmt.Errorf("%w: share %d repeats index %d", ErrShares, i, s[0])
		}
		seen[s[0]] = true
	}
	return nil
}

// Combine interpolates shares at 0: given at least the threshold of shares
// of one Split, it returns the secret. Fewer shares, or shares of different
// splits, give a different value of the same size, not an error: Shamir's
// scheme cannot tell. Callers that must know authenticate the result, as
// Recover does by unwrapping the ledger secret with it.
func Combine(shares [][]byte) ([]byte, error) {
	if err := checkShares(shares); err != nil {
		return nil, err
	}
	secret := make([]byte, len(shares[0])-1)
	for j, sj := range shares {
		// Lagrange basis at 0: l_j = prod_{m != j} x_m / (x_m - x_j);
		// subtraction is XOR in GF(2^8).
		l := byte(1)
		for m, sm := range shares {
			if m != j {
				l = gfMul(l, gfMul(sm[0], gfInv(sm[0]^sj[0])))
			}
		}
		for i := range secret {
			secret[i] ^= gfMul(l, sj[1+i])
		}
	}
	return secret, nil
}
