package constitution

import (
	"fmt"
	"regexp"
	"strings"
)

// goja runs scripts, not ES modules, while a CCF constitution (and a
// ballot) is ES module text: CCF concatenates the constitution's files
// into one module and looks up its named exports validate, resolve and
// apply (a ballot's: vote). moduleScript turns such module text into a
// script deterministically, line by line, so that the same text always
// gives the same script:
//
//   - A line that starts (in column 0) with "export " followed by a
//     declaration (function, function*, async function, class, const, let,
//     var NAME) loses the "export " and NAME is recorded as an export.
//   - A line "export { a, b as c };" is removed and records a as a and b
//     as c (the names are declared elsewhere in the module).
//   - "export default", any other "export" in column 0, and every "import"
//     in column 0 are refused: a constitution has no module to import from
//     and CCF looks up named exports only.
//   - The text is wrapped in a strict-mode function, so that its top-level
//     declarations stay private to it as a module's do, and the wrapper
//     returns an object of the recorded exports. The wrapper's head goes
//     on the module's first line, so line numbers in errors are the
//     module's own.
//
// Only column 0 is looked at, so an indented "export" in a template
// literal is left alone; one in column 0 of a multi-line template literal
// would be transformed (no constitution we know does that).
func moduleScript(src string) (string, error) {
	lines := strings.Split(src, "\n")
	var exports [][2]string // exported name, local name
	seen := map[string]bool{}
	add := func(exported, local string, line int) error {
		if seen[exported] {
			return fmt.Errorf("line %d: %q exported twice", line, exported)
		}
		seen[exported] = true
		exports = append(exports, [2]string{exported, local})
		return nil
	}
	for i, l := range lines {
		n := i + 1
		switch {
		case importLine.MatchString(l):
			return "", fmt.Errorf("line %d: import is not supported in a constitution or ballot", n)
		case !strings.HasPrefix(l, "export"):
			continue
		case exportDecl.MatchString(l):
			m := exportDecl.FindStringSubmatch(l)
			if err := add(m[2], m[2], n); err != nil {
				return "", err
			}
			lines[i] = strings.TrimLeft(l[len("export"):], " \t")
		case exportList.MatchString(l):
			for _, item := range strings.Split(exportList.FindStringSubmatch(l)[1], ",") {
				item = strings.TrimSpace(item)
				if item == "" {
					continue
				}
				m := exportItem.FindStringSubmatch(item)
				if m == nil {
					return "", fmt.Errorf("line %d: cannot read export %q", n, item)
				}
				exported := m[1]
				if m[2] != "" {
					exported = m[2]
				}
				if err := add(exported, m[1], n); err != nil {
					return "", err
				}
			}
			lines[i] = ""
		case exportWord.MatchString(l):
			return "", fmt.Errorf("line %d: only named exports of declarations are supported", n)
		}
	}
	var b strings.Builder
	b.WriteString(`(function () { "use strict"; `)
	b.WriteString(strings.Join(lines, "\n"))
	b.WriteString("\n;return {")
	for i, e := range exports {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "%q: %s", e[0], e[1])
	}
	b.WriteString("};\n})()")
	return b.String(), nil
}

const ident = `[A-Za-z_$][A-Za-z0-9_$]*`

var (
	importLine = regexp.MustCompile(`^import\b`)
	exportWord = regexp.MustCompile(`^export\b`)
	exportDecl = regexp.MustCompile(`^export\s+(async\s+function\s*\*?|function\s*\*?|class|const|let|var)\s*(` + ident + `)`)
	exportList = regexp.MustCompile(`^export\s*\{([^}]*)\}\s*;?\s*$`)
	exportItem = regexp.MustCompile(`^(` + ident + `)(?:\s+as\s+(` + ident + `))?$`)
)
