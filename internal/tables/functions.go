package tables

const (
	// UserFunctionsMap holds the user-defined functions (2024-12-09-preview
	// /app/userDefinedFunctions): key the function id, value its JavaScript
	// code (UTF-8). Public, so that the audit and every auditor see the code
	// that hooks and executions ran.
	UserFunctionsMap = "public:ledgerd.app.functions"
)
