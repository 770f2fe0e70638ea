package tables

// User-defined endpoints (PUT /app/userDefinedEndpoints, internal/appbundle).
// Both maps are public, so that the ledger, its receipts and the audit
// cover the code that served the application's endpoints.
const (
	// AppBundleMap holds the installed JavaScript application bundle: key
	// AppBundleKey, value = the bundle's canonical JSON
	// (appbundle.Bundle.Encode). Installing a bundle replaces it; a bundle
	// with no endpoints and no modules uninstalls.
	AppBundleMap = "public:ledgerd.app.bundle"
	// AppRuntimeOptionsMap holds the JavaScript runtime options of the
	// endpoints: key AppRuntimeOptionsKey, value = appbundle.RuntimeOptions
	// as JSON. Absent: the defaults.
	AppRuntimeOptionsMap = "public:ledgerd.app.runtime_options"
)

// The single keys of the app maps.
const (
	AppBundleKey         = "bundle"
	AppRuntimeOptionsKey = "options"
)
