package appbundle

import (
	"net/url"
	"sort"
	"strings"
)

// seg is one segment of a path template: a literal, or a parameter
// ({name}, a whole segment, as CCF's templates).
type seg struct {
	lit   string
	param string // non-empty: a parameter of this name
}

// parseTemplate parses an endpoint path: "/" followed by segments, each a
// literal or "{name}"; no empty segment (but the path "/" itself), no query
// or fragment, no parameter twice.
func parseTemplate(path string) ([]seg, error) {
	switch {
	case len(path) > MaxPathBytes:
		return nil, errorf("The path %q is %d bytes long; at most %d are allowed.", clip(path), len(path), MaxPathBytes)
	case !strings.HasPrefix(path, "/"):
		return nil, errorf("The path %q must start with \"/\" (it is served under /app).", clip(path))
	case strings.ContainsAny(path, "?#%\\ \t\r\n\x00"):
		return nil, errorf("The path %q contains a character paths may not hold (?, #, %%, backslash, space or control).", clip(path))
	case path == "/":
		return nil, nil
	}
	var segs []seg
	seen := map[string]bool{}
	for _, s := range strings.Split(path[1:], "/") {
		switch {
		case s == "":
			return nil, errorf("The path %q has an empty segment (\"//\" or a trailing \"/\").", clip(path))
		case s == "." || s == "..":
			return nil, errorf("The path %q has a %q segment.", clip(path), s)
		case strings.HasPrefix(s, "{") && strings.HasSuffix(s, "}"):
			name := s[1 : len(s)-1]
			if !paramName.MatchString(name) {
				return nil, errorf("The path %q has the parameter %q: a parameter's name is letters, digits and _.", clip(path), clip(s))
			}
			if seen[name] {
				return nil, errorf("The path %q names the parameter %q twice.", clip(path), name)
			}
			seen[name] = true
			segs = append(segs, seg{param: name})
		case strings.ContainsAny(s, "{}"):
			return nil, errorf("The path %q has the segment %q: a parameter must be a whole segment, {name}.", clip(path), clip(s))
		default:
			segs = append(segs, seg{lit: s})
		}
	}
	return segs, nil
}

// routeShape is a template with its parameter names erased: two paths of
// one shape are the same route.
func routeShape(segs []seg) string {
	var b strings.Builder
	for _, s := range segs {
		b.WriteByte('/')
		if s.param != "" {
			b.WriteString("{}")
		} else {
			b.WriteString(s.lit)
		}
	}
	return b.String()
}

// Route is one path of the bundle and its endpoints by HTTP method (upper
// case).
type Route struct {
	Path    string
	Methods map[string]*Endpoint
	segs    []seg
}

// Allowed returns the route's methods, sorted, for an Allow header.
func (r *Route) Allowed() []string {
	ms := make([]string, 0, len(r.Methods))
	for m := range r.Methods {
		ms = append(ms, m)
	}
	sort.Strings(ms)
	return ms
}

// Router finds a bundle's route of a request path.
type Router struct {
	exact     map[string]*Route
	templated []*Route // most literal first (see NewRouter)
}

// NewRouter returns the router of a validated bundle. A path without
// parameters matches exactly; among templated paths, the one whose first
// differing segment is a literal wins (/a/b/{x} before /a/{y}/c), so the
// order does not depend on the bundle's key order.
func NewRouter(b *Bundle) *Router {
	r := &Router{exact: map[string]*Route{}}
	for path, methods := range b.Metadata.Endpoints {
		segs, _ := parseTemplate(path) // validated
		rt := &Route{Path: path, Methods: make(map[string]*Endpoint, len(methods)), segs: segs}
		for m, ep := range methods {
			ep := ep
			rt.Methods[strings.ToUpper(m)] = &ep
		}
		if routeHasParams(segs) {
			r.templated = append(r.templated, rt)
		} else {
			r.exact[path] = rt
		}
	}
	sort.Slice(r.templated, func(i, j int) bool { return moreSpecific(r.templated[i].segs, r.templated[j].segs) })
	return r
}

func routeHasParams(segs []seg) bool {
	for _, s := range segs {
		if s.param != "" {
			return true
		}
	}
	return false
}

// moreSpecific orders templates: at the first segment where one has a
// literal and the other a parameter, the literal first; then more
// segments first; then by shape, for a total order.
func moreSpecific(a, b []seg) bool {
	for i := 0; i < len(a) && i < len(b); i++ {
		if (a[i].param == "") != (b[i].param == "") {
			return a[i].param == ""
		}
	}
	if len(a) != len(b) {
		return len(a) > len(b)
	}
	return routeShape(a) < routeShape(b)
}

// Match returns the route of path (the request's escaped path with the
// /app prefix removed, e.g. "/account/alice") and its parameters, decoded.
func (r *Router) Match(escapedPath string) (*Route, map[string]string, bool) {
	if rt, ok := r.exact[escapedPath]; ok {
		return rt, nil, true
	}
	// Literal segments hold no '%' (parseTemplate), so a request segment
	// matches a literal only unescaped; parameters are unescaped.
	if len(r.templated) == 0 || !strings.HasPrefix(escapedPath, "/") {
		return nil, nil, false
	}
	var parts [32]string
	n := 0
	for rest := escapedPath[1:]; ; {
		if n == len(parts) {
			return nil, nil, false // deeper than any template is likely to be
		}
		s, after, more := strings.Cut(rest, "/")
		parts[n] = s
		n++
		if !more {
			break
		}
		rest = after
	}
	for _, rt := range r.templated {
		if len(rt.segs) != n {
			continue
		}
		ok := true
		for i, s := range rt.segs {
			if s.param == "" && s.lit != parts[i] || s.param != "" && parts[i] == "" {
				ok = false
				break
			}
		}
		if !ok {
			continue
		}
		params := make(map[string]string, 2)
		for i, s := range rt.segs {
			if s.param == "" {
				continue
			}
			v, err := url.PathUnescape(parts[i])
			if err != nil {
				return nil, nil, false
			}
			params[s.param] = v
		}
		return rt, params, true
	}
	return nil, nil, false
}
