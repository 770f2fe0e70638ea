package constitution

import "github.com/ledgerd/ledgerd/internal/jsrt"

// moduleScript turns a constitution's or ballot's module text into a
// script (jsrt.ModuleScript in its constitution dialect: named exports of
// declarations only, no import, no export default).
func moduleScript(src string) (string, error) {
	return jsrt.ModuleScript(src, jsrt.ModuleOptions{})
}
