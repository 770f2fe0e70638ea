package api

import (
	"errors"
	"log/slog"
	"strings"

	"github.com/ledgerd/ledgerd/internal/appbundle"
	"github.com/ledgerd/ledgerd/internal/appjs"
)

// logUserFailure logs a failure of user code (a function, a hook, an
// endpoint call: what, with attrs saying which) as CCF does with its
// runtime options: with log_exception_details, the exception's message
// and its JavaScript stack (CCF_APP_FAIL "reason: trace"), or the limit
// that stopped the call; without it, only that it failed, at debug level,
// and nothing the code said. Never the call's inputs (arguments, request,
// entry contents) or code: only what the exception itself carries, which
// the option's setter chose to have logged.
func logUserFailure(log *slog.Logger, o appbundle.RuntimeOptions, err error, what string, attrs ...any) {
	if !o.LogExceptionDetails {
		log.Debug(what+" failed", attrs...)
		return
	}
	reason, trace := strings.TrimPrefix(err.Error(), "appjs: "), ""
	var se *appjs.ScriptError
	if errors.As(err, &se) {
		reason, trace = se.Message, se.Stack
	}
	if trace == "" {
		trace = "<no trace>"
	}
	log.Warn(what+" failed", append(attrs, "exception", reason, "trace", trace)...)
}
