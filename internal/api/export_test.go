package api

// FunctionRuns is how many times user-defined function code has been run
// (executions and hooks) in this process; code is its source.
func FunctionRuns(code string) uint64 {
	f, err := compileFunction([]byte(code))
	if err != nil {
		return 0
	}
	return f.runs.Load()
}

// SetHooksWrote makes f run when an append's hooks wrote, between their
// run outside the executor's lock and the entry's Exec (nil: nothing), so
// that a test can write concurrently at that point.
func SetHooksWrote(f func()) {
	if f == nil {
		hooksWrote.Store(nil)
		return
	}
	hooksWrote.Store(&f)
}
