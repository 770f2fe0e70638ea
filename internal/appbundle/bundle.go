// Package appbundle parses, validates and routes a CCF JavaScript
// application bundle: the user-defined endpoints an ACL Administrator
// installs with PUT /app/userDefinedEndpoints (CCF's js_app_bundle format:
// metadata.endpoints {path: {method: properties}} and modules
// [{name, module}]). It knows nothing of JavaScript execution (internal/appjs
// runs the modules) nor of HTTP serving (internal/api); it is pure, so that
// every node decides the same about the same bytes.
package appbundle

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"regexp"
	"slices"
	"sort"
	"strings"
	"unicode/utf8"
)

// Limits of a bundle. The request body bounds the bundle's size as a whole
// (internal/api reads at most MaxBundleBytes); these bound its parts.
const (
	// MaxBundleBytes is the largest bundle, as JSON.
	MaxBundleBytes = 4 << 20
	// MaxModules is the most modules a bundle may hold.
	MaxModules = 256
	// MaxEndpoints is the most (path, method) pairs a bundle may declare.
	MaxEndpoints = 1024
	// MaxPathBytes is the longest endpoint path.
	MaxPathBytes = 512
	// MaxNameBytes is the longest module name or function name.
	MaxNameBytes = 256
	// MaxPolicies is the most authentication policies of an endpoint.
	MaxPolicies = 8
)

// Methods an endpoint may be declared for (CCF's metadata keys are
// lower-case HTTP verbs).
var Methods = []string{"get", "post", "put", "patch", "delete"}

// Modes of an endpoint (CCF's "mode").
const (
	ModeReadWrite  = "readwrite"
	ModeReadOnly   = "readonly"
	ModeHistorical = "historical"
)

// Forwarding values (CCF's "forwarding_required").
const (
	ForwardSometimes = "sometimes"
	ForwardAlways    = "always"
	ForwardNever     = "never"
)

// Authentication policies ledgerd supports, as CCF names them.
const (
	PolicyUserCert   = "user_cert"
	PolicyMemberCert = "member_cert"
	PolicyAnyCert    = "any_cert"
	PolicyJWT        = "jwt"
	PolicyNoAuth     = "no_auth"
)

// Policies lists the supported authentication policies.
var Policies = []string{PolicyUserCert, PolicyMemberCert, PolicyAnyCert, PolicyJWT, PolicyNoAuth}

// Policy is one entry of an endpoint's authn_policies: a policy's name, or
// CCF's conjunction {"all_of": [names]}, which admits a caller only if
// each of its policies does (CCF's AllOfAuthnPolicy).
type Policy struct {
	// Name is the policy ("" for an all_of).
	Name string
	// AllOf are the policies of an all_of, as the bundle lists them
	// (Sorted gives CCF's order).
	AllOf []string
}

// Sorted returns an all_of's policies sorted by name: CCF keeps them in a
// map by name, so it tries them, and request.caller.policy lists them, in
// that order.
func (p Policy) Sorted() []string {
	out := slices.Clone(p.AllOf)
	sort.Strings(out)
	return out
}

// String is the policy's name, or an all_of's sorted names joined with
// "+" (CCF's scheme name of a conjoined policy).
func (p Policy) String() string {
	if p.AllOf != nil {
		return strings.Join(p.Sorted(), "+")
	}
	return p.Name
}

// MarshalJSON writes the policy as the bundle gave it: a name or
// {"all_of": [...]}.
func (p Policy) MarshalJSON() ([]byte, error) {
	if p.AllOf != nil {
		return json.Marshal(map[string][]string{"all_of": p.AllOf})
	}
	return json.Marshal(p.Name)
}

// UnmarshalJSON reads a policy name or {"all_of": [names]} (CCF:
// "Policies must be either a string, or an object containing an all_of
// key with list-of-strings value"); Validate checks the names.
func (p *Policy) UnmarshalJSON(b []byte) error {
	*p = Policy{}
	if len(b) > 0 && b[0] == '"' {
		return json.Unmarshal(b, &p.Name)
	}
	var o map[string]json.RawMessage
	if err := json.Unmarshal(b, &o); err != nil || o == nil || len(o) != 1 || o["all_of"] == nil {
		return errorf("authentication policy %s is not supported: a policy is a name (%s) or {\"all_of\": [names]}", clip(string(b)), strings.Join(Policies, ", "))
	}
	var names []string
	if err := json.Unmarshal(o["all_of"], &names); err != nil || len(names) == 0 {
		return errorf("authentication policy %s is not supported: \"all_of\" must be a non-empty array of policy names", clip(string(b)))
	}
	p.AllOf = names
	return nil
}

// Bundle is an application bundle.
type Bundle struct {
	Metadata Metadata `json:"metadata"`
	Modules  []Module `json:"modules"`
}

// Metadata is the bundle's app.json.
type Metadata struct {
	// Endpoints maps a path (relative to /app) to its methods.
	Endpoints map[string]map[string]Endpoint `json:"endpoints"`
}

// Module is one JavaScript module of the bundle.
type Module struct {
	Name   string `json:"name"`
	Module string `json:"module"`
}

// Endpoint is the properties of one (path, method).
type Endpoint struct {
	JSModule            string          `json:"js_module"`
	JSFunction          string          `json:"js_function"`
	AuthnPolicies       []Policy        `json:"authn_policies"`
	Mode                string          `json:"mode"`
	ForwardingRequired  string          `json:"forwarding_required"`
	RedirectionStrategy string          `json:"redirection_strategy,omitempty"`
	OpenAPI             json.RawMessage `json:"openapi,omitempty"`
	OpenAPIHidden       *bool           `json:"openapi_hidden,omitempty"`
	InterpreterReuse    json.RawMessage `json:"interpreter_reuse,omitempty"`
}

// Error is a bundle that is not valid; its message says why, for the
// Administrator who installed it.
type Error struct{ Msg string }

func (e *Error) Error() string { return e.Msg }

func errorf(format string, args ...any) error { return &Error{Msg: fmt.Sprintf(format, args...)} }

// Empty is the bundle of a ledger without user-defined endpoints.
func Empty() *Bundle {
	return &Bundle{Metadata: Metadata{Endpoints: map[string]map[string]Endpoint{}}, Modules: []Module{}}
}

// Parse decodes and validates a bundle (see Validate). Objects with a
// member twice are refused (two definitions of one path or method would
// otherwise silently keep the last). For the swagger's ModuleDef_array,
// typed "object", "modules" may also be one module object.
func Parse(data []byte) (*Bundle, error) {
	if len(data) > MaxBundleBytes {
		return nil, errorf("The bundle is %d bytes; at most %d are allowed.", len(data), MaxBundleBytes)
	}
	if !utf8.Valid(data) {
		return nil, errorf("The bundle is not valid UTF-8.")
	}
	if err := checkDuplicateKeys(data); err != nil {
		return nil, err
	}
	var top map[string]json.RawMessage
	if err := json.Unmarshal(data, &top); err != nil || top == nil {
		return nil, errorf("The bundle must be a JSON object with \"metadata\" and \"modules\".")
	}
	for k := range top {
		if k != "metadata" && k != "modules" {
			return nil, errorf("Unknown field %q in the bundle; its fields are \"metadata\" and \"modules\".", clip(k))
		}
	}
	b := &Bundle{}
	rawMeta, ok := top["metadata"]
	if !ok {
		return nil, errorf("The bundle has no \"metadata\".")
	}
	if err := decodeMetadata(rawMeta, &b.Metadata); err != nil {
		return nil, err
	}
	rawMods, ok := top["modules"]
	if !ok {
		return nil, errorf("The bundle has no \"modules\".")
	}
	mods, err := decodeModules(rawMods)
	if err != nil {
		return nil, err
	}
	b.Modules = mods
	if err := b.Validate(); err != nil {
		return nil, err
	}
	return b, nil
}

func decodeMetadata(raw json.RawMessage, m *Metadata) error {
	var meta map[string]json.RawMessage
	if err := json.Unmarshal(raw, &meta); err != nil || meta == nil {
		return errorf("\"metadata\" must be an object with \"endpoints\".")
	}
	for k := range meta {
		if k != "endpoints" {
			return errorf("Unknown field %q in \"metadata\"; its field is \"endpoints\".", clip(k))
		}
	}
	rawEps, ok := meta["endpoints"]
	if !ok {
		return errorf("\"metadata\" has no \"endpoints\".")
	}
	var paths map[string]map[string]json.RawMessage
	if err := json.Unmarshal(rawEps, &paths); err != nil || paths == nil {
		return errorf("\"metadata.endpoints\" must be an object mapping each path to an object of methods.")
	}
	m.Endpoints = make(map[string]map[string]Endpoint, len(paths))
	n := 0
	for path, methods := range paths {
		if methods == nil {
			return errorf("The path %q must map to an object of methods.", clip(path))
		}
		m.Endpoints[path] = make(map[string]Endpoint, len(methods))
		for method, rawEp := range methods {
			if n++; n > MaxEndpoints {
				return errorf("The bundle declares more than %d endpoints.", MaxEndpoints)
			}
			ep, err := decodeEndpoint(path, method, rawEp)
			if err != nil {
				return err
			}
			m.Endpoints[path][method] = ep
		}
	}
	return nil
}

// endpointFields are the properties CCF's metadata knows.
var endpointFields = []string{"js_module", "js_function", "authn_policies", "mode", "forwarding_required",
	"redirection_strategy", "openapi", "openapi_hidden", "interpreter_reuse"}

func decodeEndpoint(path, method string, raw json.RawMessage) (Endpoint, error) {
	where := fmt.Sprintf("%s %s", strings.ToUpper(clip(method)), clip(path))
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(raw, &fields); err != nil || fields == nil {
		return Endpoint{}, errorf("%s: the endpoint's properties must be an object.", where)
	}
	for k := range fields {
		if !slices.Contains(endpointFields, k) {
			return Endpoint{}, errorf("%s: unknown property %q; the properties are %s.", where, clip(k), strings.Join(endpointFields, ", "))
		}
	}
	var ep Endpoint
	str := func(name string, dst *string) error {
		v, ok := fields[name]
		if !ok {
			return nil
		}
		if err := json.Unmarshal(v, dst); err != nil || len(v) == 0 || v[0] != '"' {
			return errorf("%s: %q must be a string.", where, name)
		}
		return nil
	}
	for name, dst := range map[string]*string{"js_module": &ep.JSModule, "js_function": &ep.JSFunction, "mode": &ep.Mode,
		"forwarding_required": &ep.ForwardingRequired, "redirection_strategy": &ep.RedirectionStrategy} {
		if err := str(name, dst); err != nil {
			return Endpoint{}, err
		}
	}
	if v, ok := fields["authn_policies"]; ok {
		var items []json.RawMessage
		if err := json.Unmarshal(v, &items); err != nil || items == nil {
			return Endpoint{}, errorf("%s: \"authn_policies\" must be an array of policy names (%s).", where, strings.Join(Policies, ", "))
		}
		for _, it := range items {
			var p Policy
			if err := json.Unmarshal(it, &p); err != nil {
				var be *Error
				if errors.As(err, &be) {
					return Endpoint{}, errorf("%s: %s.", where, be.Msg)
				}
				return Endpoint{}, errorf("%s: authentication policy %s is not supported; use policy names (%s) or {\"all_of\": [names]}.",
					where, clip(string(it)), strings.Join(Policies, ", "))
			}
			ep.AuthnPolicies = append(ep.AuthnPolicies, p)
		}
	}
	if v, ok := fields["openapi"]; ok {
		ep.OpenAPI = v
	}
	if v, ok := fields["openapi_hidden"]; ok {
		var h bool
		if err := json.Unmarshal(v, &h); err != nil {
			return Endpoint{}, errorf("%s: \"openapi_hidden\" must be a boolean.", where)
		}
		ep.OpenAPIHidden = &h
	}
	if v, ok := fields["interpreter_reuse"]; ok {
		var ir map[string]json.RawMessage
		if err := json.Unmarshal(v, &ir); err != nil || ir == nil {
			return Endpoint{}, errorf("%s: \"interpreter_reuse\" must be an object {\"key\": ...}.", where)
		}
		ep.InterpreterReuse = v
	}
	return ep, nil
}

func decodeModules(raw json.RawMessage) ([]Module, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) > 0 && raw[0] == '{' {
		raw = append(append([]byte{'['}, raw...), ']')
	}
	var items []json.RawMessage
	if err := json.Unmarshal(raw, &items); err != nil || items == nil {
		return nil, errorf("\"modules\" must be an array of {\"name\", \"module\"} objects.")
	}
	if len(items) > MaxModules {
		return nil, errorf("The bundle has %d modules; at most %d are allowed.", len(items), MaxModules)
	}
	mods := make([]Module, 0, len(items))
	for i, it := range items {
		var fields map[string]json.RawMessage
		if err := json.Unmarshal(it, &fields); err != nil || fields == nil {
			return nil, errorf("modules[%d] must be an object {\"name\", \"module\"}.", i)
		}
		var m Module
		for k, v := range fields {
			var dst *string
			switch k {
			case "name":
				dst = &m.Name
			case "module":
				dst = &m.Module
			default:
				return nil, errorf("modules[%d]: unknown field %q; the fields are \"name\" and \"module\".", i, clip(k))
			}
			if err := json.Unmarshal(v, dst); err != nil || len(v) == 0 || v[0] != '"' {
				return nil, errorf("modules[%d]: %q must be a string.", i, k)
			}
		}
		if _, ok := fields["name"]; !ok {
			return nil, errorf("modules[%d] has no \"name\".", i)
		}
		if _, ok := fields["module"]; !ok {
			return nil, errorf("modules[%d] (%q) has no \"module\".", i, clip(m.Name))
		}
		mods = append(mods, m)
	}
	return mods, nil
}

// paramName is a path template parameter's name.
var paramName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// ModuleName returns a module name in its canonical form, without a
// leading "/" (CCF stores modules under "/name" and js_module names them
// relative to the bundle: both forms name the same module).
func ModuleName(name string) string { return strings.TrimPrefix(name, "/") }

// Validate checks everything about a bundle that needs no JavaScript: every
// path is a valid template and no two paths are the same route; every
// method, mode, forwarding value and policy is known; every endpoint names
// a module of the bundle and a function; module names are unique. Whether
// the module exports the function is checked by compiling it (internal/api,
// with internal/appjs).
func (b *Bundle) Validate() error {
	if len(b.Modules) > MaxModules {
		return errorf("The bundle has %d modules; at most %d are allowed.", len(b.Modules), MaxModules)
	}
	mods := map[string]bool{}
	for i, m := range b.Modules {
		name := ModuleName(m.Name)
		switch {
		case name == "":
			return errorf("modules[%d] has an empty name.", i)
		case len(m.Name) > MaxNameBytes:
			return errorf("modules[%d]: the name is %d bytes long; at most %d are allowed.", i, len(m.Name), MaxNameBytes)
		case strings.ContainsAny(name, "\\\x00") || strings.Contains("/"+name+"/", "/../") || strings.Contains("/"+name+"/", "/./") || strings.Contains(name, "//"):
			return errorf("modules[%d]: the name %q is not a clean relative path (no \"..\", \".\", \"//\" or backslash).", i, clip(m.Name))
		case mods[name]:
			return errorf("The module %q appears twice in the bundle.", clip(m.Name))
		}
		mods[name] = true
	}
	routes := map[string]string{} // route shape -> path
	n := 0
	for path, methods := range b.Metadata.Endpoints {
		segs, err := parseTemplate(path)
		if err != nil {
			return err
		}
		shape := routeShape(segs)
		if other, ok := routes[shape]; ok {
			a, b := sortedPair(path, other)
			return errorf("The paths %q and %q are the same route (they differ only in parameter names).", clip(a), clip(b))
		}
		routes[shape] = path
		if len(methods) == 0 {
			return errorf("The path %q declares no method.", clip(path))
		}
		for method, ep := range methods {
			n++
			where := fmt.Sprintf("%s %s", strings.ToUpper(clip(method)), clip(path))
			if !slices.Contains(Methods, method) {
				return errorf("%s: the method %q is not supported; the methods are %s (lower case).", where, clip(method), strings.Join(Methods, ", "))
			}
			if err := ep.validate(where, mods); err != nil {
				return err
			}
			methods[method] = ep // with its defaults
		}
	}
	if n > MaxEndpoints {
		return errorf("The bundle declares %d endpoints; at most %d are allowed.", n, MaxEndpoints)
	}
	return nil
}

func (ep *Endpoint) validate(where string, mods map[string]bool) error {
	switch {
	case ep.JSModule == "":
		return errorf("%s: \"js_module\" is missing: name the module (of \"modules\") that exports the endpoint's function.", where)
	case !mods[ModuleName(ep.JSModule)]:
		return errorf("%s: the module %q is not in the bundle's \"modules\".", where, clip(ep.JSModule))
	case ep.JSFunction == "":
		return errorf("%s: \"js_function\" is missing: name the function the module exports.", where)
	case len(ep.JSFunction) > MaxNameBytes || !jsIdent.MatchString(ep.JSFunction):
		return errorf("%s: \"js_function\" %q is not a JavaScript identifier.", where, clip(ep.JSFunction))
	}
	switch ep.Mode {
	case "":
		ep.Mode = ModeReadWrite // CCF's default
	case ModeReadWrite, ModeReadOnly, ModeHistorical:
	default:
		return errorf("%s: \"mode\" %q is not one of readwrite, readonly, historical.", where, clip(ep.Mode))
	}
	switch ep.ForwardingRequired {
	case ForwardSometimes, ForwardAlways, ForwardNever:
	case "":
		return errorf("%s: \"forwarding_required\" is missing (sometimes, always or never).", where)
	default:
		return errorf("%s: \"forwarding_required\" %q is not one of sometimes, always, never.", where, clip(ep.ForwardingRequired))
	}
	switch ep.RedirectionStrategy {
	case "", "none", "to_primary", "to_backup":
	default:
		return errorf("%s: \"redirection_strategy\" %q is not one of none, to_primary, to_backup.", where, clip(ep.RedirectionStrategy))
	}
	if len(ep.AuthnPolicies) == 0 {
		return errorf("%s: \"authn_policies\" is missing or empty; name at least one of %s (no_auth for a public endpoint).", where, strings.Join(Policies, ", "))
	}
	if len(ep.AuthnPolicies) > MaxPolicies {
		return errorf("%s: %d authentication policies; at most %d are allowed.", where, len(ep.AuthnPolicies), MaxPolicies)
	}
	seen := map[string]bool{}
	for _, p := range ep.AuthnPolicies {
		names := p.Sorted()
		if p.AllOf == nil {
			names = []string{p.Name}
		} else if len(names) > MaxPolicies {
			return errorf("%s: an all_of of %d policies; at most %d are allowed.", where, len(names), MaxPolicies)
		}
		for i, n := range names {
			if !slices.Contains(Policies, n) {
				return errorf("%s: the authentication policy %q is not supported; the policies are %s.", where, clip(n), strings.Join(Policies, ", "))
			}
			if i > 0 && names[i-1] == n { // sorted
				return errorf("%s: the all_of policy lists %q twice.", where, n)
			}
		}
		if seen[p.String()] {
			return errorf("%s: the authentication policy %q is listed twice.", where, p.String())
		}
		seen[p.String()] = true
	}
	return nil
}

// PolicyNames returns the endpoint's policies as strings (all_of as
// their names joined with "+"), for messages.
func (ep *Endpoint) PolicyNames() []string {
	out := make([]string, len(ep.AuthnPolicies))
	for i, p := range ep.AuthnPolicies {
		out[i] = p.String()
	}
	return out
}

var jsIdent = regexp.MustCompile(`^[A-Za-z_$][A-Za-z0-9_$]*$`)

// Module returns the module of the given name (with or without a leading
// "/").
func (b *Bundle) Module(name string) (Module, bool) {
	name = ModuleName(name)
	for _, m := range b.Modules {
		if ModuleName(m.Name) == name {
			return m, true
		}
	}
	return Module{}, false
}

// Encode returns the bundle's canonical JSON: what is stored in the ledger
// and answered by GET /app/userDefinedEndpoints.
func (b *Bundle) Encode() []byte {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(b) // every field encodes
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n"))
}

// Decode decodes a bundle stored by Encode (trusted: it was validated when
// it was installed), validating it again.
func Decode(data []byte) (*Bundle, error) { return Parse(data) }

// checkDuplicateKeys refuses JSON with an object that has a member twice.
func checkDuplicateKeys(data []byte) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	type frame struct {
		obj  bool
		keys map[string]bool
		key  bool // next token in an object is a key
	}
	var stack []*frame
	for {
		tok, err := dec.Token()
		if err == io.EOF && len(stack) == 0 {
			return nil
		}
		if err != nil {
			return errorf("The bundle is not valid JSON: %v.", err)
		}
		var top *frame
		if len(stack) > 0 {
			top = stack[len(stack)-1]
		}
		if top != nil && top.obj && top.key {
			k, _ := tok.(string)
			if tok == json.Delim('}') {
				stack = stack[:len(stack)-1]
				if len(stack) > 0 && stack[len(stack)-1].obj {
					stack[len(stack)-1].key = true
				}
				continue
			}
			if top.keys[k] {
				return errorf("The bundle's JSON has the member %q twice in one object: each path, method and field may appear once.", clip(k))
			}
			top.keys[k] = true
			top.key = false
			continue
		}
		switch tok {
		case json.Delim('{'):
			stack = append(stack, &frame{obj: true, keys: map[string]bool{}, key: true})
			continue
		case json.Delim('['):
			stack = append(stack, &frame{})
			continue
		case json.Delim(']'), json.Delim('}'):
			stack = stack[:len(stack)-1]
		}
		if len(stack) > 0 && stack[len(stack)-1].obj {
			stack[len(stack)-1].key = true
		}
	}
}

func sortedPair(a, b string) (string, string) {
	s := []string{a, b}
	sort.Strings(s)
	return s[0], s[1]
}

// clip shortens a bundle-supplied string for an error message.
func clip(s string) string {
	const max = 128
	if len(s) > max {
		s = s[:max] + "…"
	}
	if !utf8.ValidString(s) {
		s = fmt.Sprintf("%q", s)
	}
	return s
}
