package constitution

import "github.com/ledgerd/ledgerd/internal/jsrt"

// The KV types are shared with the application sandbox (internal/appjs);
// they live in internal/jsrt.
type (
	// KV is the governance state a constitution or ballot reads and, in
	// apply, writes (see jsrt.KV).
	KV = jsrt.KV
	// MemKV is a KV held in memory (see jsrt.MemKV).
	MemKV = jsrt.MemKV
	// Tx buffers writes over a KV (see jsrt.Tx). Apply runs every
	// constitution call in its own Tx and commits it only when the call
	// succeeds.
	Tx = jsrt.Tx
	// Write is one buffered write of a Tx.
	Write = jsrt.Write
)

// NewMemKV returns an empty MemKV.
func NewMemKV() MemKV { return jsrt.NewMemKV() }

// NewTx returns a transaction over base.
func NewTx(base KV) *Tx { return jsrt.NewTx(base) }
