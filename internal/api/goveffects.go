package api

import (
	"github.com/ledgerd/ledgerd/internal/gov"
)

// govEffects returns the functions that carry out the effects a
// constitution's apply asks of the node (constitution.Effect names), with
// extra's added or replacing them. An effect with no function fails the
// proposal that asks for it, with a clear reason, and applies nothing.
func (s *Server) govEffects(extra map[string]gov.EffectFunc) map[string]gov.EffectFunc {
	effects := map[string]gov.EffectFunc{}
	for name, f := range extra {
		effects[name] = f
	}
	return effects
}
