package jsrt

import (
	"fmt"
	"regexp"
	"strings"
)

// ModuleOptions says what ModuleScript accepts beyond named exports of
// declarations. The zero value is a constitution's or ballot's dialect.
type ModuleOptions struct {
	// Imports allows import declarations (turned into calls of the
	// wrapper's __import parameter) and export default; without it both
	// are refused.
	Imports bool
	// What names the kind of module in error messages ("a constitution or
	// ballot" when empty).
	What string
	// Extra, with Imports, is an expression evaluated after the module's
	// code, in its scope: the wrapper then returns [exports, Extra]
	// instead of the exports object (appjs uses it to read the module's
	// top-level bindings, see appjs/kept.go).
	Extra string
}

// ModuleScript turns ES module text into a script, because goja runs
// scripts, not ES modules: CCF concatenates a constitution's files into one
// module and looks up its named exports, and a CCF application bundle's
// modules import each other. The transform is deterministic and line by
// line, so that the same text always gives the same script and line
// numbers in errors are the module's own:
//
//   - A line that starts (in column 0) with "export " followed by a
//     declaration (function, function*, async function, class, const, let,
//     var NAME) loses the "export " and NAME is recorded as an export.
//   - A line "export { a, b as c };" is removed and records a as a and b
//     as c (the names are declared elsewhere in the module).
//   - With Imports: "export default function NAME" and "export default
//     class NAME" lose "export default " and record NAME as default;
//     "export default EXPR" becomes "const __default = EXPR". An import
//     declaration in column 0 (possibly over several lines, up to its
//     from "specifier") becomes one statement on its first line:
//     import { a, b as c } from "m"  ->  const { a: a, b: c } = __import("m");
//     import * as ns from "m"        ->  const ns = __import("m");
//     import d from "m"              ->  const d = __import("m").default;
//     import "m"                     ->  __import("m");
//     (bindings are constants taken when the import runs, not live).
//   - Any other "export" in column 0 is refused (re-exports "export ...
//     from" among them), and so is every import without Imports.
//   - The text is wrapped in a strict-mode function of __import, so that
//     its top-level declarations stay private to it as a module's do, and
//     the function returns an object whose getters read the recorded
//     exports (so a later assignment to an exported let is seen). Without
//     Imports the wrapper is called at once, so the script's value is the
//     exports object; with Imports the script's value is the function,
//     for the caller to call with its __import.
//
// Only column 0 is looked at, so an indented "export" in a template
// literal is left alone; one in column 0 of a multi-line template literal
// would be transformed (no module we know does that).
func ModuleScript(src string, opts ModuleOptions) (string, error) {
	what := opts.What
	if what == "" {
		what = "a constitution or ballot"
	}
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
	for i := 0; i < len(lines); i++ {
		l := lines[i]
		n := i + 1
		switch {
		case importLine.MatchString(l):
			if !opts.Imports {
				return "", fmt.Errorf("line %d: import is not supported in %s", n, what)
			}
			// Gather the declaration's lines up to its specifier.
			decl := l
			j := i
			for !importEnd.MatchString(decl) && j+1 < len(lines) && j-i < maxImportLines {
				j++
				decl += " " + lines[j]
			}
			stmt, err := importStatement(decl)
			if err != nil {
				return "", fmt.Errorf("line %d: %w", n, err)
			}
			lines[i] = stmt
			for k := i + 1; k <= j; k++ {
				lines[k] = ""
			}
			i = j
		case !strings.HasPrefix(l, "export"):
			continue
		case opts.Imports && exportDefaultDecl.MatchString(l):
			m := exportDefaultDecl.FindStringSubmatch(l)
			if err := add("default", m[2], n); err != nil {
				return "", err
			}
			lines[i] = strings.TrimLeft(l[strings.Index(l, "default")+len("default"):], " \t")
		case opts.Imports && exportDefault.MatchString(l):
			if err := add("default", "__default", n); err != nil {
				return "", err
			}
			lines[i] = "const __default = " + strings.TrimLeft(l[len(exportDefault.FindString(l)):], " \t")
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
	if opts.Imports {
		b.WriteString(`(function (__import) { "use strict"; `)
	} else {
		b.WriteString(`(function () { "use strict"; `)
	}
	b.WriteString(strings.Join(lines, "\n"))
	b.WriteString("\n;return ")
	if opts.Imports && opts.Extra != "" {
		b.WriteString("[")
	}
	b.WriteString("{")
	for i, e := range exports {
		if i > 0 {
			b.WriteString(", ")
		}
		if opts.Imports {
			fmt.Fprintf(&b, "get %q() { return %s; }", e[0], e[1])
		} else {
			fmt.Fprintf(&b, "%q: %s", e[0], e[1])
		}
	}
	switch {
	case opts.Imports && opts.Extra != "":
		b.WriteString("}, (")
		b.WriteString(opts.Extra)
		b.WriteString(")];\n})")
	case opts.Imports:
		b.WriteString("};\n})")
	default:
		b.WriteString("};\n})()")
	}
	return b.String(), nil
}

// maxImportLines bounds how many lines one import declaration may span.
const maxImportLines = 200

// importStatement turns one import declaration (on one line) into a
// statement calling __import, followed by whatever followed the
// declaration on its line.
func importStatement(decl string) (string, error) {
	if m := importBare.FindStringSubmatch(decl); m != nil {
		return fmt.Sprintf("__import(%q);", m[1]) + decl[len(m[0]):], nil
	}
	m := importFrom.FindStringSubmatch(decl)
	if m == nil {
		return "", fmt.Errorf("cannot read import declaration %q", clipText(decl))
	}
	clause, spec, rest := strings.TrimSpace(m[1]), m[2], decl[len(m[0]):]
	src := fmt.Sprintf("__import(%q)", spec)
	var stmts []string
	// A default binding comes first: "d", "d, {...}" or "d, * as ns".
	if dm := importDefault.FindStringSubmatch(clause); dm != nil {
		stmts = append(stmts, fmt.Sprintf("const %s = %s.default;", dm[1], src))
		clause = strings.TrimSpace(dm[2])
		clause = strings.TrimSpace(strings.TrimPrefix(clause, ","))
	}
	switch {
	case clause == "":
	case importStar.MatchString(clause):
		stmts = append(stmts, fmt.Sprintf("const %s = %s;", importStar.FindStringSubmatch(clause)[1], src))
	case strings.HasPrefix(clause, "{") && strings.HasSuffix(clause, "}"):
		var binds []string
		for _, item := range strings.Split(clause[1:len(clause)-1], ",") {
			item = strings.TrimSpace(item)
			if item == "" {
				continue
			}
			im := exportItem.FindStringSubmatch(item)
			if im == nil {
				return "", fmt.Errorf("cannot read import %q", clipText(item))
			}
			local := im[1]
			if im[2] != "" {
				local = im[2]
			}
			binds = append(binds, fmt.Sprintf("%q: %s", im[1], local))
		}
		stmts = append(stmts, fmt.Sprintf("const { %s } = %s;", strings.Join(binds, ", "), src))
	default:
		return "", fmt.Errorf("cannot read import clause %q", clipText(clause))
	}
	return strings.Join(stmts, " ") + rest, nil
}

func clipText(s string) string {
	if len(s) > 80 {
		return s[:80] + "..."
	}
	return s
}

const ident = `[A-Za-z_$][A-Za-z0-9_$]*`

var (
	importLine        = regexp.MustCompile(`^import\b`)
	importEnd         = regexp.MustCompile(`(?:\bfrom\s*|^import\s*)["'][^"']+["']`)
	importBare        = regexp.MustCompile(`^import\s*["']([^"']+)["']\s*;?`)
	importFrom        = regexp.MustCompile(`^import\s+(.*?)\s*\bfrom\s*["']([^"']+)["']\s*;?`)
	importDefault     = regexp.MustCompile(`^(` + ident + `)\s*(,.*)?$`)
	importStar        = regexp.MustCompile(`^\*\s*as\s+(` + ident + `)$`)
	exportWord        = regexp.MustCompile(`^export\b`)
	exportDecl        = regexp.MustCompile(`^export\s+(async\s+function\s*\*?|function\s*\*?|class|const|let|var)\s*(` + ident + `)`)
	exportDefaultDecl = regexp.MustCompile(`^export\s+default\s+(async\s+function\s*\*?|function\s*\*?|class)\s*(` + ident + `)`)
	exportDefault     = regexp.MustCompile(`^export\s+default\b`)
	exportList        = regexp.MustCompile(`^export\s*\{([^}]*)\}\s*;?\s*$`)
	exportItem        = regexp.MustCompile(`^(` + ident + `)(?:\s+as\s+(` + ident + `))?$`)
)
