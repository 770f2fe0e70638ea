package api

import (
	"net/http"

	"github.com/ledgerd/ledgerd/internal/appbundle"
)

// appProgram is a bundle's compiled JavaScript.
type appProgram struct{}

// compileApp compiles a bundle's modules.
func compileApp(*appbundle.Bundle) (appProgram, error) { return appProgram{}, nil }

// serveApp serves a request of a bundle endpoint.
func (s *Server) serveApp(c *call) error {
	return newError(http.StatusNotImplemented, "NotImplemented", "User-defined endpoints are installed and routed, but this build cannot run their JavaScript yet.")
}
