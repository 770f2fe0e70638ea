package api

import (
	"bytes"
	"encoding/json"
	"net/http"

	"github.com/ledgerd/ledgerd/internal/tables"
)

// errFrontendNotOpen is CCF's answer to an application request while the
// service is not Open (src/node/rpc/frontend.h): 404 FrontendNotOpen.
var errFrontendNotOpen = newError(http.StatusNotFound, "FrontendNotOpen", "Frontend is not open.")

// frontendOpen reports whether the service is Open in the latest executed
// state, which CCF checks before every request to the application (/app/*).
// The governance API and the node's endpoints are served in any status.
// The last record seen Open is remembered, so that the common case costs a
// lookup and a comparison, not a JSON decoding.
func (s *Server) frontendOpen() bool {
	raw, ok := s.reads.State().Get(tables.ServiceInfoMap, tables.SingletonKey)
	if !ok {
		return false
	}
	if p := s.openInfo.Load(); p != nil && bytes.Equal(*p, raw) {
		return true
	}
	var info tables.ServiceInfo
	if json.Unmarshal(raw, &info) != nil || info.Status != tables.ServiceOpen {
		return false
	}
	seen := bytes.Clone(raw)
	s.openInfo.Store(&seen)
	return true
}
