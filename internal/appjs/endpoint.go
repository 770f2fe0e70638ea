package appjs

import (
	"context"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"hash"
	"math"
	"reflect"
	"strings"

	"github.com/dop251/goja"
	"github.com/ledgerd/ledgerd/internal/jsrt"
)

// CCF endpoints (user-defined endpoints of an application bundle): a call
// whose argument is a *Request gets CCF's request object, and with
// Call.Response its return value is read as CCF's response object.

// Request is CCF's request object (ccf-app's Request), given as a
// Call.Args element.
type Request struct {
	Method string
	// URL is the request's path and query as received.
	URL string
	// Route is the endpoint's full path template, as CCF gives it
	// (e.g. "/app/account/{name}").
	Route string
	// Path is the request's path; Query its raw query string (no "?").
	Path, Query string
	// Params are the path template's parameters, decoded.
	Params map[string]string
	// Headers are the request's headers, names lower-case, repeated
	// values joined with ", ".
	Headers map[string]string
	// Hostname is the Host the request was sent to.
	Hostname string
	// Body is the request body: request.body.text(), .json() and
	// .arrayBuffer() read it.
	Body []byte
	// Caller is request.caller as JSON (nil: undefined): the
	// authentication policy that admitted the caller and what it knows.
	Caller json.RawMessage
}

// Response is what an endpoint function returned, read as CCF reads it:
// statusCode (default 200), headers (string values), and body: undefined
// or null is empty, a string is text/plain, an ArrayBuffer or typed array
// application/octet-stream, anything else JSON (application/json). A
// Content-Type header the function set wins.
type Response struct {
	Status  int
	Headers map[string]string
	Body    []byte
	// ContentType is the type the body implies ("" for no body).
	ContentType string
}

// request builds CCF's request object.
func (s *sandbox) request(r *Request) goja.Value {
	rt := s.rt
	o := rt.NewObject()
	_ = o.Set("method", r.Method)
	_ = o.Set("url", r.URL)
	_ = o.Set("route", r.Route)
	_ = o.Set("path", r.Path)
	_ = o.Set("query", r.Query)
	_ = o.Set("hostname", r.Hostname)
	params := rt.NewObject()
	for k, v := range r.Params {
		_ = params.Set(k, v)
	}
	_ = o.Set("params", params)
	headers := rt.NewObject()
	for k, v := range r.Headers {
		_ = headers.Set(k, v)
	}
	_ = o.Set("headers", headers)
	s.cur = r
	if s.reqBody == nil {
		// One body object per runtime (per call on a locked pooled
		// runtime): its methods read the current call's request and are
		// made when first read, so most calls make none.
		body := newLazy(s)
		body.lazy("text", func(goja.FunctionCall) goja.Value {
			return rt.ToValue(string(s.curBody()))
		})
		body.lazy("json", func(goja.FunctionCall) goja.Value {
			v, err := s.parse(s.curBody())
			if err != nil {
				panic(err)
			}
			return v
		})
		body.lazy("arrayBuffer", func(goja.FunctionCall) goja.Value {
			return s.buf(s.curBody())
		})
		s.reqBody = rt.NewDynamicObject(body)
	}
	_ = o.Set("body", s.reqBody)
	if r.Caller != nil {
		c, err := s.parse(r.Caller)
		if err != nil {
			panic(err)
		}
		_ = o.Set("caller", c)
	}
	return o
}

// curBody is the current call's request body (none outside a call).
func (s *sandbox) curBody() []byte {
	if s.cur == nil {
		return nil
	}
	return s.cur.Body
}

// response reads an endpoint function's return value.
func (s *sandbox) response(v goja.Value) (*Response, error) {
	resp := &Response{Status: 200}
	if v == nil || goja.IsUndefined(v) || goja.IsNull(v) {
		return resp, nil
	}
	o, ok := v.(*goja.Object)
	if !ok {
		return nil, &ScriptError{Message: "the endpoint function must return a response object {statusCode, headers, body}"}
	}
	if sc := o.Get("statusCode"); sc != nil && !goja.IsUndefined(sc) && !goja.IsNull(sc) {
		f := sc.ToFloat()
		if f != math.Trunc(f) || f < 100 || f > 599 {
			return nil, &ScriptError{Message: fmt.Sprintf("statusCode %v is not an HTTP status (100-599)", sc)}
		}
		resp.Status = int(f)
	}
	if h := o.Get("headers"); h != nil && !goja.IsUndefined(h) && !goja.IsNull(h) {
		ho, ok := h.(*goja.Object)
		if !ok {
			return nil, &ScriptError{Message: "headers must be an object of strings"}
		}
		resp.Headers = map[string]string{}
		for _, k := range ho.Keys() {
			resp.Headers[k] = ho.Get(k).String()
		}
	}
	b := o.Get("body")
	switch {
	case b == nil || goja.IsUndefined(b) || goja.IsNull(b):
	case b.ExportType() == typeString:
		resp.Body, resp.ContentType = []byte(b.String()), "text/plain"
	case b.ExportType() != typeArrayBuffer && b.ExportType() != typeBytes:
		out, err := s.stringify(b)
		if err != nil {
			return nil, err
		}
		resp.Body, resp.ContentType = out, "application/json"
	default:
		switch x := b.Export().(type) {
		case goja.ArrayBuffer:
			resp.Body, resp.ContentType = append([]byte(nil), x.Bytes()...), "application/octet-stream"
		case []byte:
			resp.Body, resp.ContentType = append([]byte(nil), x...), "application/octet-stream"
		default:
			out, err := s.stringify(b)
			if err != nil {
				return nil, err
			}
			resp.Body, resp.ContentType = out, "application/json"
		}
	}
	return resp, nil
}

// Export types of response bodies (ExportType is cheap; Export of an
// object copies it).
var (
	typeString      = reflect.TypeOf("")
	typeArrayBuffer = reflect.TypeOf(goja.ArrayBuffer{})
	typeBytes       = reflect.TypeOf([]byte(nil))
)

// installCrypto adds CCF's ccf.crypto: digest (SHA-256, SHA-384,
// SHA-512), isValidX509CertBundle, and the key functions of crypto.go
// (sign, verifySignature, key generation, wrapKey/unwrapKey,
// isValidX509CertChain, PEM to JWK), with CCF's deprecated aliases on ccf;
// ccf.pemToId; and ccf.rpc.setApplyWrites and ccf.rpc.setClaimsDigest
// (Result.ClaimsDigest).
func (s *sandbox) installCrypto(ccf *goja.Object) {
	rt := s.rt
	crypto := rt.NewObject()
	_ = crypto.Set("digest", func(c goja.FunctionCall) goja.Value {
		var h hash.Hash
		switch alg := c.Argument(0).String(); alg {
		case "SHA-256":
			h = sha256.New()
		case "SHA-384":
			h = sha512.New384()
		case "SHA-512":
			h = sha512.New()
		default:
			s.throw("ccf.crypto.digest: unsupported algorithm %q (SHA-256, SHA-384, SHA-512)", clip(alg))
		}
		h.Write(s.bytes(c.Argument(1), "ccf.crypto.digest: data"))
		return s.buf(h.Sum(nil))
	})
	_ = crypto.Set("isValidX509CertBundle", func(c goja.FunctionCall) goja.Value {
		str, ok := c.Argument(0).Export().(string)
		return rt.ToValue(ok && validCertBundle(str))
	})
	s.installKeyCrypto(crypto) // crypto.go
	_ = ccf.Set("crypto", crypto)
	// CCF's deprecated aliases on ccf of what moved to ccf.crypto.
	for _, name := range deprecatedCryptoAliases {
		_ = ccf.Set(name, crypto.Get(name))
	}
	rpc := rt.NewObject()
	_ = rpc.Set("setApplyWrites", func(c goja.FunctionCall) goja.Value {
		v := c.Argument(0).ToBoolean()
		s.applyWrites = &v
		return goja.Undefined()
	})
	_ = rpc.Set("setClaimsDigest", func(c goja.FunctionCall) goja.Value {
		if s.readOnly {
			s.throw("ccf.rpc.setClaimsDigest: this endpoint is readonly: it has no transaction to set the claims digest of")
		}
		d := s.bytes(c.Argument(0), "ccf.rpc.setClaimsDigest: the digest")
		if len(d) != ClaimsDigestSize {
			s.throw("ccf.rpc.setClaimsDigest: the digest is %d bytes, a claims digest is %d (SHA-256)", len(d), ClaimsDigestSize)
		}
		s.claimsDigest = d
		return goja.Undefined()
	})
	_ = ccf.Set("rpc", rpc)
	_ = ccf.Set("pemToId", func(c goja.FunctionCall) goja.Value {
		b, _ := pem.Decode([]byte(c.Argument(0).String()))
		if b == nil || b.Type != "CERTIFICATE" {
			s.throw("ccf.pemToId: not a PEM certificate")
		}
		sum := sha256.Sum256(b.Bytes)
		return rt.ToValue(hex.EncodeToString(sum[:]))
	})
}

// deprecatedCryptoAliases are the ccf.crypto functions CCF also keeps on
// ccf itself (ccf-app's CCF: "@deprecated This method has been moved to
// ccf.crypto namespace").
var deprecatedCryptoAliases = []string{"generateAesKey", "generateRsaKeyPair", "generateEcdsaKeyPair", "wrapKey", "digest",
	"isValidX509CertBundle", "isValidX509CertChain"}

// ClaimsDigestSize is the size of the digest ccf.rpc.setClaimsDigest takes
// (a SHA-256 digest, CCF's ClaimsDigest).
const ClaimsDigestSize = 32

// validCertBundle reports whether s is one or more PEM certificates that
// parse, and nothing else.
func validCertBundle(s string) bool {
	rest := []byte(strings.TrimSpace(s))
	n := 0
	for len(rest) > 0 {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil || b.Type != "CERTIFICATE" {
			return false
		}
		if _, err := x509.ParseCertificate(b.Bytes); err != nil {
			return false
		}
		rest = []byte(strings.TrimSpace(string(rest)))
		n++
	}
	return n > 0
}

// readOnlyPrefixes are tables user code may read but not write: ACL's
// role tables (public:confidentialledger.roles.*), which the node derives
// from its users and roles.
var readOnlyPrefixes = []string{"public:confidentialledger."}

// checkWritable throws unless the call may write table name.
func (s *sandbox) checkWritable(name string) {
	if s.readOnly {
		s.throw("ccf.kv[%q]: this endpoint is readonly: it cannot write", clip(name))
	}
	for _, p := range readOnlyPrefixes {
		if strings.HasPrefix(name, p) {
			s.throw("ccf.kv[%q]: the table is read-only", clip(name))
		}
	}
}

// Exported returns the names of the functions module exports, running
// its top-level code (and its imports') once in a fresh runtime under l,
// with no state. A bundle's installer checks with it that each endpoint's
// function exists.
func (p *Program) Exported(ctx context.Context, module string, l Limits) (funcs map[string]bool, err error) {
	name := normalise(module)
	if _, ok := p.modules[name]; !ok {
		return nil, &ScriptError{Message: fmt.Sprintf("module %q not found", module)}
	}
	l = l.WithDefaults()
	s := &sandbox{prog: p, maxLog: DefaultMaxLog, maps: map[string]*goja.Object{}, readOnly: true}
	s.tx = jsrt.NewTx(readOnly{nil})
	s.init(l)
	stop := jsrt.Watch(ctx, s.rt, l)
	defer stop()
	defer func() {
		if r := recover(); r != nil {
			if e, ok := r.(error); ok {
				funcs, err = nil, callError(e)
				return
			}
			funcs, err = nil, &ScriptError{Message: fmt.Sprint(r)}
		}
	}()
	e, err := s.load(name)
	if err != nil {
		return nil, callError(err)
	}
	funcs = map[string]bool{}
	for _, k := range e.Keys() {
		if _, ok := goja.AssertFunction(e.Get(k)); ok {
			funcs[k] = true
		}
	}
	return funcs, nil
}
