package gov

import (
	"errors"
	"fmt"

	"github.com/ledgerd/ledgerd/internal/ledger"
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
}

// Writes validates g and returns its writes: members (certificates and
// info), users, the constitution and the service configuration.
func (g Genesis) Writes() ([]ledger.MapWrites, error) {
	if len(g.Members) == 0 {
		return nil, errors.New("gov: genesis needs at least one member")
	}
	certs := ledger.MapWrites{Name: tables.MembersCertsMap}
	infos := ledger.MapWrites{Name: tables.MembersInfoMap}
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
	}
	users := ledger.MapWrites{Name: tables.UsersMap}
	seen = map[string]bool{}
	for _, u := range g.Users {
		switch {
		case u.ID == "":
			return nil, errors.New("gov: genesis user with an empty id")
		case !u.Role.Valid():
			return nil, fmt.Errorf("gov: genesis user %q has no valid role (%v)", u.ID, u.Role)
		case seen[u.ID]:
			return nil, fmt.Errorf("gov: genesis user %q is listed twice", u.ID)
		}
		seen[u.ID] = true
		users.Writes = append(users.Writes, SetUser(u.ID, u.Role).Writes...)
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
	return writes, nil
}
