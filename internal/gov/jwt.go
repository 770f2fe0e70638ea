package gov

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"

	"github.com/ledgerd/ledgerd/internal/auth"
	"github.com/ledgerd/ledgerd/internal/ledger"
	"github.com/ledgerd/ledgerd/internal/tables"
)

// JWT issuers are governed state, as in CCF: public:ccf.gov.jwt.issuers
// (tables.JWTIssuersMap) names the trusted issuers with their metadata,
// public:ccf.gov.jwt.public_signing_keys_metadata_v2
// (tables.JWTPublicSigningKeysMap) holds their keys. The constitution
// writes the issuers table itself; the keys are written by the node's side
// of its effects, SetJWTKeysWrites and RemoveJWTKeysWrites.

// defaultAudiences are the audiences of an issuer whose metadata names
// none: ACL's, with or without a trailing slash, as ACL accepts them.
var defaultAudiences = []string{auth.AzureADAudience, auth.AzureADAudience + "/"}

// JWTIssuer is a trusted JWT issuer as a genesis sets it.
type JWTIssuer struct {
	// Issuer is the iss claim of the issuer's tokens.
	Issuer string
	// Audiences are the accepted audiences; empty means ACL's.
	Audiences []string
	// Namespace prefixes the issuer's user ids; "" is the default
	// namespace.
	Namespace string
	// JWKSURI is a JWK Set URL the nodes fetch keys from (not governed
	// keys). At most one of JWKSURI and JWKS.
	JWKSURI string
	// JWKS is a JSON JWK Set whose keys are written in the ledger
	// (governed keys).
	JWKS []byte
}

func (j JWTIssuer) metadata() tables.JWTIssuerMetadata {
	return tables.JWTIssuerMetadata{Issuer: j.Issuer, Audience: j.Audiences, Namespace: j.Namespace, JWKSURI: j.JWKSURI}
}

// jwtIssuersWrites returns the genesis writes of issuers: their metadata
// and governed keys. The issuers are checked as --jwt-issuer's are
// (auth.ValidateIssuers): complete, listed once, no shared namespace.
func jwtIssuersWrites(issuers []JWTIssuer) ([]ledger.MapWrites, error) {
	if len(issuers) == 0 {
		return nil, nil
	}
	configs := make([]auth.IssuerConfig, len(issuers))
	for i, j := range issuers {
		c := auth.IssuerConfig{Issuer: j.Issuer, Namespace: j.Namespace, JWKSURL: j.JWKSURI}
		if len(j.Audiences) > 0 {
			c.Audience, c.Audiences = j.Audiences[0], j.Audiences[1:]
		} else {
			c.Audience, c.Audiences = defaultAudiences[0], defaultAudiences[1:]
		}
		if len(j.JWKS) > 0 {
			c.JWKSFile = "(inline JWKS)" // only its presence is checked
		}
		configs[i] = c
	}
	if err := auth.ValidateIssuers(configs); err != nil {
		return nil, fmt.Errorf("gov: %s", strings.TrimPrefix(err.Error(), "auth: "))
	}
	st := memState{}
	for _, j := range issuers {
		st.apply([]ledger.MapWrites{{Name: tables.JWTIssuersMap,
			Writes: []ledger.KV{{Key: []byte(j.Issuer), Value: tables.Value(j.metadata())}}}})
		if len(j.JWKS) == 0 {
			continue
		}
		ws, err := SetJWTKeysWrites(st, j.Issuer, nil, json.RawMessage(j.JWKS))
		if err != nil {
			return nil, fmt.Errorf("gov: JWT issuer %q: %w", j.Issuer, err)
		}
		st.apply(ws)
	}
	return st.writes(tables.JWTIssuersMap, tables.JWTPublicSigningKeysMap), nil
}

// SetJWTKeysWrites carries out the constitution's
// ccf.setJwtPublicSigningKeys(issuer, metadata, jwks) as CCF's
// set_jwt_public_signing_keys does: every key of the JWK Set jwks (the
// JSON value, or a value that marshals to it: goja's export of the
// action's argument) becomes a key of issuer, replacing the issuer's
// previous keys; other issuers' keys with the same kid are kept. Each key
// needs a kid and an RSA or EC public key or an x5c certificate, usable for
// verifying (auth.JWKPublicKeyDER); a key's "issuer" field is kept as its
// constraint, which must name the issuer's host or a parent domain of it.
// An empty set or a bad key is an error, which fails the proposal. metadata
// is not read, as in CCF.
func SetJWTKeysWrites(st State, issuer string, metadata, jwks any) ([]ledger.MapWrites, error) {
	_ = metadata
	raw, err := json.Marshal(jwks)
	if err != nil {
		return nil, fmt.Errorf("couldn't encode the JWKS: %w", err)
	}
	var set struct {
		Keys []json.RawMessage `json:"keys"`
	}
	if err := json.Unmarshal(raw, &set); err != nil {
		return nil, fmt.Errorf("the JWKS is not a JWK Set: %w", err)
	}
	if len(set.Keys) == 0 {
		return nil, errors.New("the JWKS has no keys")
	}
	fresh := map[string]tables.OpenIDJWKMetadata{}
	var kids []string
	for i, k := range set.Keys {
		kid, der, err := auth.JWKPublicKeyDER(k)
		if err != nil {
			return nil, fmt.Errorf("JWKS key %d: %w", i, err)
		}
		var c struct {
			Issuer *string `json:"issuer"`
		}
		json.Unmarshal(k, &c) // JWKPublicKeyDER decoded it already
		value := tables.OpenIDJWKMetadata{PublicKey: der, Issuer: issuer}
		if c.Issuer != nil {
			if !issuerConstraintOK(issuer, *c.Issuer) {
				return nil, fmt.Errorf("JWKS kid %s with issuer constraint %s fails validation against issuer %s", kid, *c.Issuer, issuer)
			}
			value.Constraint = *c.Issuer
		}
		if _, dup := fresh[kid]; dup {
			continue // CCF keeps the first key of a kid
		}
		fresh[kid] = value
		kids = append(kids, kid)
	}
	slices.Sort(kids)
	w := ledger.MapWrites{Name: tables.JWTPublicSigningKeysMap}
	for _, kid := range kids {
		cur, err := keyEntries(st, kid)
		if err != nil {
			return nil, err
		}
		next := slices.Clone(cur)
		i := slices.IndexFunc(next, func(m tables.OpenIDJWKMetadata) bool { return m.Issuer == issuer })
		switch {
		case i < 0:
			next = append(next, fresh[kid])
		case sameKey(next[i], fresh[kid]):
			continue // no redundant write, as in CCF
		default:
			next[i] = fresh[kid]
		}
		w.Writes = append(w.Writes, ledger.KV{Key: []byte(kid), Value: tables.Value(next)})
	}
	stale, err := dropIssuerKeys(st, issuer, func(kid string) bool { _, keep := fresh[kid]; return !keep })
	if err != nil {
		return nil, err
	}
	w.Writes = append(w.Writes, stale.Writes...)
	w.Removes = stale.Removes
	if len(w.Writes) == 0 && len(w.Removes) == 0 {
		return nil, nil
	}
	return []ledger.MapWrites{w}, nil
}

// RemoveJWTKeysWrites carries out the constitution's
// ccf.removeJwtPublicSigningKeys(issuer): every key of issuer is removed;
// other issuers' keys with the same kid stay.
func RemoveJWTKeysWrites(st State, issuer string) ([]ledger.MapWrites, error) {
	w, err := dropIssuerKeys(st, issuer, func(string) bool { return true })
	if err != nil || len(w.Writes) == 0 && len(w.Removes) == 0 {
		return nil, err
	}
	return []ledger.MapWrites{w}, nil
}

// dropIssuerKeys returns the writes that remove issuer's entry from every
// kid for which drop is true.
func dropIssuerKeys(st State, issuer string, drop func(kid string) bool) (ledger.MapWrites, error) {
	w := ledger.MapWrites{Name: tables.JWTPublicSigningKeysMap}
	var err error
	st.Range(tables.JWTPublicSigningKeysMap, func(key, value []byte) bool {
		kid := string(key)
		if !drop(kid) {
			return true
		}
		var entries []tables.OpenIDJWKMetadata
		if e := json.Unmarshal(value, &entries); e != nil {
			err = fmt.Errorf("couldn't decode the signing keys of kid %q: %w", kid, e)
			return false
		}
		kept := slices.DeleteFunc(slices.Clone(entries), func(m tables.OpenIDJWKMetadata) bool { return m.Issuer == issuer })
		switch {
		case len(kept) == len(entries):
		case len(kept) == 0:
			w.Removes = append(w.Removes, []byte(kid))
		default:
			w.Writes = append(w.Writes, ledger.KV{Key: []byte(kid), Value: tables.Value(kept)})
		}
		return true
	})
	return w, err
}

func keyEntries(st State, kid string) ([]tables.OpenIDJWKMetadata, error) {
	raw, ok := st.Get(tables.JWTPublicSigningKeysMap, []byte(kid))
	if !ok {
		return nil, nil
	}
	var entries []tables.OpenIDJWKMetadata
	if err := json.Unmarshal(raw, &entries); err != nil {
		return nil, fmt.Errorf("couldn't decode the signing keys of kid %q: %w", kid, err)
	}
	return entries, nil
}

func sameKey(a, b tables.OpenIDJWKMetadata) bool {
	return bytes.Equal(a.PublicKey, b.PublicKey) && a.Issuer == b.Issuer && a.Constraint == b.Constraint
}

// issuerConstraintOK is CCF's check_issuer_constraint: a key's issuer
// constraint must name the issuer's host, or a domain the issuer's host is
// a subdomain of, so that one issuer's keys never vouch for another's.
func issuerConstraintOK(issuer, constraint string) bool {
	host := func(s string) string {
		if u, err := url.Parse(s); err == nil && u.Host != "" {
			return u.Hostname()
		}
		return ""
	}
	ih, ch := host(issuer), host(constraint)
	return ch != "" && (ih == ch || strings.HasSuffix(ih, "."+ch))
}

// JWTRegistry is an auth.IssuerRegistry backed by the JWT tables of the
// state. It reads the state on every call, so that a governance change is
// seen by the next request. A record that does not decode trusts nothing.
type JWTRegistry struct {
	State State
}

// JWTIssuer implements auth.IssuerRegistry.
func (r JWTRegistry) JWTIssuer(iss string) (auth.IssuerPolicy, bool) {
	raw, ok := r.State.Get(tables.JWTIssuersMap, []byte(iss))
	if !ok {
		return auth.IssuerPolicy{}, false
	}
	var m tables.JWTIssuerMetadata
	if json.Unmarshal(raw, &m) != nil {
		return auth.IssuerPolicy{}, false
	}
	p := auth.IssuerPolicy{Audiences: m.Audience, Namespace: m.Namespace, JWKSURL: m.JWKSURI}
	if len(p.Audiences) == 0 {
		p.Audiences = defaultAudiences
	}
	return p, true
}

// JWTKey implements auth.IssuerRegistry.
func (r JWTRegistry) JWTKey(iss, kid string) ([]byte, bool) {
	entries, err := keyEntries(r.State, kid)
	if err != nil {
		return nil, false
	}
	for _, e := range entries {
		if e.Issuer == iss {
			return e.PublicKey, true
		}
	}
	return nil, false
}

// JWTNamespaces implements auth.IssuerRegistry.
func (r JWTRegistry) JWTNamespaces() []string {
	var ns []string
	r.State.Range(tables.JWTIssuersMap, func(_, value []byte) bool {
		var m tables.JWTIssuerMetadata
		if json.Unmarshal(value, &m) == nil && m.Namespace != "" {
			ns = append(ns, m.Namespace)
		}
		return true
	})
	return ns
}

// JWTIssuerDiff says how the governed issuer j.Issuer differs from j: ""
// if the state trusts it with the same audiences, namespace, JWKS URL and,
// if j has a JWKS, exactly its keys. ledgerd uses it to warn that start
// flags disagree with the governed state, which decides.
func JWTIssuerDiff(st State, j JWTIssuer) string {
	raw, ok := st.Get(tables.JWTIssuersMap, []byte(j.Issuer))
	if !ok {
		return "it is not a trusted issuer"
	}
	var m tables.JWTIssuerMetadata
	if err := json.Unmarshal(raw, &m); err != nil {
		return "its record does not decode"
	}
	want, have := j.Audiences, []string(m.Audience)
	if len(want) == 0 {
		want = defaultAudiences
	}
	if len(have) == 0 {
		have = defaultAudiences
	}
	switch {
	case !slices.Equal(want, have):
		return fmt.Sprintf("its audiences are %q", have)
	case j.Namespace != m.Namespace:
		return fmt.Sprintf("its namespace is %q", m.Namespace)
	case j.JWKSURI != m.JWKSURI:
		return fmt.Sprintf("its JWKS URL is %q", m.JWKSURI)
	case len(j.JWKS) == 0:
		return ""
	}
	expect := memState{}
	ws, err := SetJWTKeysWrites(expect, j.Issuer, nil, json.RawMessage(j.JWKS))
	if err != nil {
		return "the JWKS given is not valid: " + err.Error()
	}
	expect.apply(ws)
	if !maps2Equal(issuerKeys(expect, j.Issuer), issuerKeys(st, j.Issuer)) {
		return "its governed signing keys are not the JWKS given"
	}
	return ""
}

// issuerKeys returns issuer's keys in st: kid -> DER.
func issuerKeys(st State, issuer string) map[string]string {
	keys := map[string]string{}
	st.Range(tables.JWTPublicSigningKeysMap, func(key, value []byte) bool {
		var entries []tables.OpenIDJWKMetadata
		if json.Unmarshal(value, &entries) == nil {
			for _, e := range entries {
				if e.Issuer == issuer {
					keys[string(key)] = string(e.PublicKey)
				}
			}
		}
		return true
	})
	return keys
}

func maps2Equal(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

// memState is a State held in memory, for assembling write sets.
type memState map[string]map[string][]byte

func (s memState) Get(name string, key []byte) ([]byte, bool) {
	v, ok := s[name][string(key)]
	return v, ok
}

func (s memState) Range(name string, fn func(key, value []byte) bool) {
	keys := make([]string, 0, len(s[name]))
	for k := range s[name] {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		if !fn([]byte(k), s[name][k]) {
			return
		}
	}
}

func (s memState) apply(ws []ledger.MapWrites) {
	for _, w := range ws {
		if s[w.Name] == nil {
			s[w.Name] = map[string][]byte{}
		}
		for _, kv := range w.Writes {
			s[w.Name][string(kv.Key)] = kv.Value
		}
		for _, k := range w.Removes {
			delete(s[w.Name], string(k))
		}
	}
}

// writes returns the contents of maps names as writes, in key order.
func (s memState) writes(names ...string) []ledger.MapWrites {
	var ws []ledger.MapWrites
	for _, name := range names {
		w := ledger.MapWrites{Name: name}
		s.Range(name, func(key, value []byte) bool {
			w.Writes = append(w.Writes, ledger.KV{Key: key, Value: value})
			return true
		})
		if len(w.Writes) > 0 {
			ws = append(ws, w)
		}
	}
	return ws
}
