package constitution

import (
	"embed"
	"strings"
)

//go:embed default/*.js
var defaultFS embed.FS

// DefaultFiles are the files of the default constitution, in the order
// they are concatenated (CCF concatenates a constitution's files into one
// module; the order only has to put nothing before use at call time).
var DefaultFiles = []string{"actions.js", "validate.js", "resolve.js", "apply.js"}

// Default returns the default constitution: DefaultFiles concatenated,
// each followed by a newline. internal/gov installs it at first start.
func Default() string {
	var b strings.Builder
	for _, f := range DefaultFiles {
		src, err := defaultFS.ReadFile("default/" + f)
		if err != nil {
			panic("constitution: embedded " + f + ": " + err.Error())
		}
		b.Write(src)
		if len(src) > 0 && src[len(src)-1] != '\n' {
			b.WriteByte('\n')
		}
	}
	return b.String()
}
