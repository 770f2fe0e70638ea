package api

import (
	"crypto/rand"
	"errors"
	"fmt"

	"github.com/ledgerd/ledgerd/internal/gov"
	"github.com/ledgerd/ledgerd/internal/ledger"
	"github.com/ledgerd/ledgerd/internal/recovery"
	"github.com/ledgerd/ledgerd/internal/tables"
)

// govEffects returns the functions that carry out the effects a
// constitution's apply asks of the node (constitution.Effect names), with
// extra's added or replacing them. Each returns writes made in the
// proposal's own transaction. An effect with no function fails the
// proposal that asks for it, with a clear reason, and applies nothing.
func (s *Server) govEffects(extra map[string]gov.EffectFunc) map[string]gov.EffectFunc {
	effects := map[string]gov.EffectFunc{
		// A rekey, and new recovery shares of the new secret (CCF refreshes
		// the shares on every rekey).
		"node.triggerLedgerRekey": func(st gov.State, _ []any) ([]ledger.MapWrites, error) {
			ws, err := s.node.RekeyWrites()
			if err != nil {
				return nil, err
			}
			value, ok := tables.RekeyOf(ws)
			if !ok {
				return nil, errors.New("the rekey wrote no secret")
			}
			secret, err := s.node.RekeySecret(value)
			if err != nil {
				return nil, err
			}
			defer clear(secret)
			shares, err := recovery.SharesWrites(st, secret, rand.Reader)
			if err != nil {
				return nil, err
			}
			return append(ws, shares...), nil
		},
		"node.triggerRecoverySharesRefresh": func(st gov.State, _ []any) ([]ledger.MapWrites, error) {
			secret, err := s.latestSecret(st)
			if err != nil {
				return nil, err
			}
			defer clear(secret)
			return recovery.SharesWrites(st, secret, rand.Reader)
		},
		"node.transitionServiceToOpen": func(st gov.State, args []any) ([]ledger.MapWrites, error) {
			var previous, next []byte
			if len(args) > 0 {
				previous, _ = args[0].([]byte)
			}
			if len(args) > 1 {
				next, _ = args[1].([]byte)
			}
			recovering := gov.ServiceStatus(st) == tables.ServiceRecovering
			ws, err := gov.OpenServiceWrites(st, previous, next)
			if err != nil || !recovering {
				return ws, err
			}
			// A recovered service: the new service key endorses the
			// previous service certificate, so that receipts of the
			// previous service's transactions verify against the new one.
			endorsement, err := s.node.EndorsePreviousWrites(previous)
			if err != nil {
				return nil, err
			}
			return append(ws, endorsement...), nil
		},
		// ccf.setJwtPublicSigningKeys(issuer, metadata, jwks) and
		// ccf.removeJwtPublicSigningKeys(issuer): the governed JWT keys.
		"setJwtPublicSigningKeys": func(st gov.State, args []any) ([]ledger.MapWrites, error) {
			if len(args) != 3 {
				return nil, fmt.Errorf("setJwtPublicSigningKeys takes 3 arguments, got %d", len(args))
			}
			issuer, ok := args[0].(string)
			if !ok {
				return nil, errors.New("setJwtPublicSigningKeys: the issuer is not a string")
			}
			return gov.SetJWTKeysWrites(st, issuer, args[1], args[2])
		},
		"removeJwtPublicSigningKeys": func(st gov.State, args []any) ([]ledger.MapWrites, error) {
			issuer, ok := any(nil), false
			if len(args) == 1 {
				issuer, ok = args[0], true
			}
			name, isString := issuer.(string)
			if !ok || !isString {
				return nil, errors.New("removeJwtPublicSigningKeys takes the issuer, a string")
			}
			return gov.RemoveJWTKeysWrites(st, name)
		},
		// The chunk file ends after the next signature.
		"node.triggerLedgerChunk": func(gov.State, []any) ([]ledger.MapWrites, error) {
			s.node.RequestLedgerChunk()
			return nil, nil
		},
		// A snapshot is taken at the next signature, by every node: the
		// transaction records the trigger (CCF's trigger_snapshot; see
		// node/snapshot.go), and the primary ends its chunk there.
		"node.triggerSnapshot": func(gov.State, []any) ([]ledger.MapWrites, error) {
			s.node.RequestSnapshot()
			return tables.SnapshotTriggerWrites(), nil
		},
	}
	for name, f := range extra {
		effects[name] = f
	}
	return effects
}

// latestSecret is the ledger secret of the transactions after st: the one
// the latest rekey in st wrapped (a rekey earlier in the same proposal
// included), or the node's latest.
func (s *Server) latestSecret(st gov.State) ([]byte, error) {
	if value, ok := st.Get(tables.EncryptedLedgerSecretsMap, tables.SingletonKey); ok {
		return s.node.RekeySecret(value)
	}
	secret := s.reads.LatestLedgerSecret()
	if secret == nil {
		return nil, fmt.Errorf("the latest ledger secret is not available")
	}
	return secret, nil
}
