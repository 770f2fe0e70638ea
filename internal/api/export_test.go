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
