package gov

// State is the read side of the state that this package needs: the node's
// latest executed state, as CCF's endpoints see it. *node.State implements it.
type State interface {
	// Get returns the value of key in map name.
	Get(name string, key []byte) ([]byte, bool)
	// Range calls fn for each key of map name in key order, until fn
	// returns false.
	Range(name string, fn func(key, value []byte) bool)
}
