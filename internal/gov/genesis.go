package gov

import (
	"crypto/rand"
	"errors"
	"fmt"

	"github.com/ledgerd/ledgerd/internal/auth"
	"github.com/ledgerd/ledgerd/internal/ledger"
	"github.com/ledgerd/ledgerd/internal/recovery"
	"github.com/ledgerd/ledgerd/internal/tables"
)

// Genesis is the initial governance of a new service, written in its
// genesis transaction (node.Config.Genesis).
type Genesis struct {
	// Members are the PEM certificates of the initial consortium members;
	// they start Active. At least one is required: a service without
	// members can never be governed.
	Members [][]byte
	// Users are the initial ledger users. Ids must be unique.
	Users []User
	// Constitution is the JavaScript constitution; "" means
	// DefaultConstitution.
	Constitution string
	// ServiceConfig is the service configuration (public:ccf.gov.service.config);
	// nil means tables.DefaultServiceConfig().
	ServiceConfig *tables.ServiceConfig
	// EncryptionKeys are the recovery encryption public keys (PEM PUBLIC
	// KEY, RSA) of the members, in the order of Members: a member with one
	// is a recovery member. It may be shorter than Members; a nil entry is
	// a member without a key.
	EncryptionKeys [][]byte
	// LedgerSecret is the service's ledger secret, shared among the
	// recovery members in the genesis transaction (package recovery).
	// Required when a member has an encryption key.
	LedgerSecret []byte
	// JWTIssuers are the initial trusted JWT issuers (with their keys, for
	// a JWKS given inline); see jwt.go.
	JWTIssuers []JWTIssuer
	// JoinMeasurements are the virtual measurements the join policy allows
	// from the start (public:ccf.gov.nodes.virtual.measurements): the first
	// node's own, as CCF records the first node's, so that nodes running the
	// same binary can join.
	JoinMeasurements []string
}

// Writes validates g and returns its writes: members (certificates, info
// and encryption keys), users, the constitution, the service configuration,
// the recovery members' shares of the ledger secret and the JWT issuers.
func (g Genesis) Writes() ([]ledger.MapWrites, error) {
	if len(g.Members) == 0 {
		return nil, errors.New("gov: genesis needs at least one member")
	}
	certs := ledger.MapWrites{Name: tables.MembersCertsMap}
	infos := ledger.MapWrites{Name: tables.MembersInfoMap}
	encKeys := ledger.MapWrites{Name: tables.MembersEncryptionKeysMap}
	seen := map[string]bool{}
	active := tables.Value(tables.MemberInfo{Status: tables.MemberActive})
	for i, p := range g.Members {
		der, err := certDER(p)
		if err != nil {
			return nil, fmt.Errorf("gov: member %d: %w", i, err)
		}
		id := MemberID(der)
		if seen[id] {
			return nil, fmt.Errorf("gov: member %d (%s) is listed twice", i, id)
		}
		seen[id] = true
		certs.Writes = append(certs.Writes, ledger.KV{Key: []byte(id), Value: p})
		infos.Writes = append(infos.Writes, ledger.KV{Key: []byte(id), Value: active})
		if i < len(g.EncryptionKeys) && g.EncryptionKeys[i] != nil {
			if _, err := recovery.ParsePublicKey(g.EncryptionKeys[i]); err != nil {
				return nil, fmt.Errorf("gov: member %d (%s): %w", i, id, err)
			}
			encKeys.Writes = append(encKeys.Writes, ledger.KV{Key: []byte(id), Value: g.EncryptionKeys[i]})
		}
	}
	if len(g.EncryptionKeys) > len(g.Members) {
		return nil, fmt.Errorf("gov: %d encryption keys for %d members", len(g.EncryptionKeys), len(g.Members))
	}
	users := ledger.MapWrites{Name: tables.UsersMap}
	seen = map[string]bool{}
	for _, u := range g.Users {
		roles := u.Roles
		if len(roles) == 0 && u.Role.Valid() {
			roles = []string{u.Role.String()}
		}
		switch {
		case u.ID == "":
			return nil, errors.New("gov: genesis user with an empty id")
		case len(roles) == 0:
			return nil, fmt.Errorf("gov: genesis user %q has no valid role (%v)", u.ID, u.Role)
		case seen[u.ID]:
			return nil, fmt.Errorf("gov: genesis user %q is listed twice", u.ID)
		}
		for _, name := range roles {
			// A genesis has no user-defined roles yet.
			if _, ok := auth.BuiltinRole(name); !ok {
				return nil, fmt.Errorf("gov: genesis user %q has role %q, which is not a built-in role", u.ID, name)
			}
		}
		seen[u.ID] = true
		users.Writes = append(users.Writes, SetUser(u.ID, roles...).Writes...)
	}
	if c := g.ServiceConfig; c != nil && (c.RecoveryThreshold < 1 || c.RecoveryThreshold > 254) {
		return nil, fmt.Errorf("gov: genesis recovery threshold %d is not between 1 and 254", c.RecoveryThreshold)
	}
	script := g.Constitution
	if script == "" {
		script = DefaultConstitution
	}
	constitution := ledger.MapWrites{Name: tables.ConstitutionMap,
		Writes: []ledger.KV{{Key: tables.SingletonKey, Value: []byte(script)}}}
	writes := []ledger.MapWrites{certs, infos, constitution, serviceConfigWrite(g.ServiceConfig)}
	if len(users.Writes) > 0 {
		writes = append(writes, users)
	}
	if len(encKeys.Writes) > 0 {
		if len(g.LedgerSecret) == 0 {
			return nil, errors.New("gov: genesis has recovery members but no ledger secret to share among them")
		}
		writes = append(writes, encKeys)
		// The initial recovery shares, over everything genesis writes (its
		// recovery members and its service configuration's threshold).
		shares, err := recovery.SharesWrites(recovery.WriteSetState(writes), g.LedgerSecret, rand.Reader)
		if err != nil {
			return nil, fmt.Errorf("gov: genesis recovery shares: %w", err)
		}
		writes = append(writes, shares...)
	}
	jwt, err := jwtIssuersWrites(g.JWTIssuers)
	if err != nil {
		return nil, err
	}
	writes = append(writes, jwt...)
	if len(g.JoinMeasurements) > 0 {
		policy := ledger.MapWrites{Name: tables.VirtualMeasurementsMap}
		for _, m := range g.JoinMeasurements {
			policy.Writes = append(policy.Writes, ledger.KV{Key: []byte(m), Value: tables.Value("AllowedToJoin")})
		}
		writes = append(writes, policy)
	}
	return writes, nil
}
