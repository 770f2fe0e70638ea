package api

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"github.com/ledgerd/ledgerd/internal/appbundle"
	"github.com/ledgerd/ledgerd/internal/ledger"
	"github.com/ledgerd/ledgerd/internal/node"
	"github.com/ledgerd/ledgerd/internal/tables"
)

// User-defined endpoints (api-version 2024-08-22-preview and later): an
// Administrator installs a CCF JavaScript application bundle with PUT
// /app/userDefinedEndpoints; its endpoints are then served under /app
// (udserve.go). The bundle and the runtime options are stored in public
// maps (tables.AppBundleMap, tables.AppRuntimeOptionsMap) and answered once
// committed.

// codeInvalidBundle is the code of a bundle that is not valid.
const codeInvalidBundle = "InvalidBundle"

// bundleError is the 400 of an invalid bundle or runtime options.
func bundleError(err error) error {
	var be *appbundle.Error
	if errors.As(err, &be) {
		return newError(http.StatusBadRequest, codeInvalidBundle, "%s", be.Msg)
	}
	return err
}

// The keys of the app maps, as []byte once.
var (
	appBundleKey  = []byte(tables.AppBundleKey)
	appOptionsKey = []byte(tables.AppRuntimeOptionsKey)
)

// storedBundle returns the installed bundle's canonical JSON, or nil.
func storedBundle(st *node.State) []byte {
	v, _ := st.Get(tables.AppBundleMap, appBundleKey)
	return v
}

// storedRuntimeOptions returns the runtime options in force.
func storedRuntimeOptions(st *node.State) appbundle.RuntimeOptions {
	v, _ := st.Get(tables.AppRuntimeOptionsMap, appOptionsKey)
	o, err := appbundle.DecodeRuntimeOptions(v)
	if err != nil {
		return appbundle.DefaultRuntimeOptions // cannot happen: only Encode writes it
	}
	return o
}

// getUserDefinedEndpoints serves GET /app/userDefinedEndpoints: the
// installed bundle, or an empty one ({"metadata":{"endpoints":{}},
// "modules":[]}) when none is.
func (s *Server) getUserDefinedEndpoints(c *call) error {
	raw := storedBundle(s.reads.State())
	if raw == nil {
		raw = appbundle.Empty().Encode()
	}
	return c.replyJSON(http.StatusOK, c.served, raw)
}

// putUserDefinedEndpoints serves PUT /app/userDefinedEndpoints: it
// validates the bundle (its JSON shape, paths, methods, policies, modules,
// and that each endpoint's module compiles and exports its function),
// replaces the installed bundle with it and answers 201 once the change is
// committed.
func (s *Server) putUserDefinedEndpoints(c *call) error {
	body, err := readBodyUpTo(c, appbundle.MaxBundleBytes, mediaJSON)
	if err != nil {
		return err
	}
	b, err := appbundle.Parse(body)
	if err != nil {
		return bundleError(err)
	}
	if err := s.apps.check(b); err != nil {
		return bundleError(err)
	}
	value := b.Encode()
	txid, err := s.execCommitted(c.r.Context(), "user-defined endpoints", func(*node.State) ([]ledger.MapWrites, error) {
		return []ledger.MapWrites{{Name: tables.AppBundleMap, Writes: []ledger.KV{{Key: []byte(tables.AppBundleKey), Value: value}}}}, nil
	})
	if err != nil {
		return err
	}
	s.log.Info("user-defined endpoints installed", "transaction_id", txid.String(), "endpoints", len(b.Metadata.Endpoints), "modules", len(b.Modules), "bytes", len(value))
	c.w.Header().Set(txIDHeader, txid.String())
	c.w.WriteHeader(http.StatusCreated)
	return nil
}

// getRuntimeOptions serves GET /app/userDefinedEndpoints/runtimeOptions.
func (s *Server) getRuntimeOptions(c *call) error {
	return c.replyJSON(http.StatusOK, c.served, storedRuntimeOptions(s.reads.State()).Encode())
}

// patchRuntimeOptions serves PATCH /app/userDefinedEndpoints/runtimeOptions:
// a JSON merge patch of the options in force (null resets an option to its
// default), each bounded (appbundle.RuntimeOptions.Check), answered with
// the new options once committed.
func (s *Server) patchRuntimeOptions(c *call) error {
	body, err := readBody(c, mediaMergePath, mediaJSON)
	if err != nil {
		return err
	}
	if _, err := storedRuntimeOptions(s.reads.State()).Patch(body); err != nil {
		return bundleError(err) // refused before taking the executor
	}
	var next appbundle.RuntimeOptions
	txid, err := s.execCommitted(c.r.Context(), "runtime options", func(st *node.State) ([]ledger.MapWrites, error) {
		o, err := storedRuntimeOptions(st).Patch(body)
		if err != nil {
			return nil, bundleError(err)
		}
		next = o
		return []ledger.MapWrites{{Name: tables.AppRuntimeOptionsMap, Writes: []ledger.KV{{Key: []byte(tables.AppRuntimeOptionsKey), Value: o.Encode()}}}}, nil
	})
	if err != nil {
		return err
	}
	return c.replyJSON(http.StatusOK, txid, next.Encode())
}

// getUserDefinedEndpointsModule serves GET
// /app/userDefinedEndpoints/modules?module_name=NAME: one module of the
// installed bundle ({"name","module"}), named with or without its leading
// "/".
func (s *Server) getUserDefinedEndpointsModule(c *call) error {
	name, ok, err := param(c.r.URL.Query(), "module_name")
	if err != nil {
		return err
	}
	if !ok || name == "" {
		return newError(http.StatusBadRequest, codeInvalidQuery, "The query parameter module_name is required: the name of a module of the installed bundle.")
	}
	var m appbundle.Module
	found := false
	if raw := storedBundle(s.reads.State()); raw != nil {
		app, err := s.apps.get(raw)
		if err != nil {
			return err
		}
		m, found = app.bundle.Module(name)
	}
	if !found {
		return newError(http.StatusNotFound, codeResourceNotFound, "No module %q in the installed user-defined endpoints.", clip(name))
	}
	return c.reply(http.StatusOK, c.served, m)
}

// mergeWrites merges the writes to one map into one MapWrites, in first
// appearance order: a write set names each map once (ledger refuses a map
// twice), while a change of several roles writes the roles map per role.
func mergeWrites(ws []ledger.MapWrites) []ledger.MapWrites {
	if len(ws) < 2 {
		return ws
	}
	at := make(map[string]int, len(ws))
	var out []ledger.MapWrites
	for _, w := range ws {
		i, ok := at[w.Name]
		if !ok {
			at[w.Name] = len(out)
			out = append(out, ledger.MapWrites{Name: w.Name})
			i = len(out) - 1
		}
		out[i].Writes = append(out[i].Writes, w.Writes...)
		out[i].Removes = append(out[i].Removes, w.Removes...)
	}
	return out
}

// execCommitted runs decide through the node's executor and waits for its
// write to commit; what's names the change in error messages.
func (s *Server) execCommitted(ctx context.Context, what string, decide func(*node.State) ([]ledger.MapWrites, error)) (node.TxID, error) {
	var decided error
	txid, err := s.node.Exec(ctx, node.UntilCommitted, func(st *node.State) ([]ledger.MapWrites, error) {
		w, err := decide(st)
		decided = err
		return w, err
	})
	switch {
	case err != nil && err == decided:
		return node.TxID{}, err
	case err != nil && txid != (node.TxID{}):
		return node.TxID{}, fmt.Errorf("couldn't commit %s change %s: %w", what, txid, err)
	case err != nil:
		return node.TxID{}, fmt.Errorf("couldn't write %s change: %w", what, err)
	}
	return txid, nil
}
