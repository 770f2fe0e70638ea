package api_test

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"strings"
	"sync"
	"testing"
)

// logBuffer is a server log captured for a test (slog's text format).
type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

// take returns what was logged since the last take.
func (l *logBuffer) take() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	s := l.b.String()
	l.b.Reset()
	return s
}

func captureLog() (*logBuffer, *slog.Logger) {
	l := &logBuffer{}
	return l, slog.New(slog.NewTextHandler(l, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// log_exception_details (CCF's JSRuntimeOptions): with it, a failing
// function's, hook's or endpoint's exception message and JavaScript stack
// are in the server's log; without it, neither is (only that it failed).
// The call's inputs (arguments, the entry's contents) are never logged.
func TestLogExceptionDetails(t *testing.T) {
	logs, logger := captureLog()
	e := newEnv(t, envOptions{logger: logger})
	putUDF(t, e, "thrower", `export function main(arg) {
  if (context !== null) { throw new Error("hook refused " + context.collectionId); }
  throw new Error("function refused");
}`)
	const secretArg, secretContents = "argument-s3cret", "contents-s3cret"
	opts := func(log bool) map[string]any {
		return map[string]any{"log_exception_details": log}
	}
	noSecrets := func(what, got string) {
		t.Helper()
		for _, s := range []string{secretArg, secretContents} {
			if strings.Contains(got, s) {
				t.Errorf("%s: the log holds the input %q:\n%s", what, s, got)
			}
		}
	}
	logs.take()
	for _, log := range []bool{false, true} {
		x, _ := execUDF(e, e.contributor, "thrower", map[string]any{"arguments": []string{secretArg}, "runtimeOptions": opts(log)})
		if x.Status != "Failed" {
			t.Fatalf("execution: %+v", x)
		}
		got := logs.take()
		has := strings.Contains(got, "function refused")
		stack := strings.Contains(got, "function.js")
		if has != log || stack != log {
			t.Errorf("execution, log_exception_details %v: message logged %v, stack logged %v; log:\n%s", log, has, stack, got)
		}
		noSecrets("execution", got)

		e.contributor.post(q("/app/transactions", v2024, "collectionId", "logcoll"), map[string]any{"contents": secretContents,
			"preHooks": []any{map[string]any{"functionId": "thrower", "properties": map[string]any{
				"arguments": []string{secretArg}, "runtimeOptions": opts(log)}}}}).expect(400, "UserDefinedFunctionFailed")
		got = logs.take()
		if has := strings.Contains(got, "hook refused logcoll"); has != log {
			t.Errorf("hook, log_exception_details %v: message logged %v; log:\n%s", log, has, got)
		}
		noSecrets("hook", got)
	}

	// A limit is logged as the limit, with the option only.
	x, _ := execUDF(e, e.contributor, "thrower", map[string]any{"exportedFunctionName": "nope", "runtimeOptions": opts(false)})
	if x.Status != "Failed" {
		t.Fatalf("%+v", x)
	}
	if got := logs.take(); strings.Contains(got, "nope") {
		t.Errorf("without log_exception_details the failure's message is logged:\n%s", got)
	}

	// An endpoint: the runtime options of the installed bundle.
	bundle, _ := json.Marshal(map[string]any{
		"metadata": map[string]any{"endpoints": map[string]any{"/fail": map[string]any{"post": map[string]any{
			"js_module": "fail.js", "js_function": "fail", "forwarding_required": "never", "authn_policies": []string{"user_cert"}, "mode": "readonly"}}}},
		"modules": []any{map[string]any{"name": "fail.js",
			"module": "export function fail(request) { throw new Error(\"endpoint refused\"); }"}},
	})
	e.admin.do("PUT", q(ude, v2024), string(bundle)).expect(201, "")
	for _, log := range []bool{false, true} {
		o, _ := json.Marshal(map[string]any{"log_exception_details": log, "return_exception_details": true})
		e.admin.do("PATCH", q(ude+"/runtimeOptions", v2024), string(o), "Content-Type", "application/merge-patch+json").expect(200, "")
		logs.take()
		e.contributor.do("POST", "/app/fail", secretContents).expect(500, "InternalError")
		got := logs.take()
		has, stack := strings.Contains(got, "endpoint refused"), strings.Contains(got, "fail.js")
		if has != log || stack != log {
			t.Errorf("endpoint, log_exception_details %v: message logged %v, stack logged %v; log:\n%s", log, has, stack, got)
		}
		noSecrets("endpoint", got)
	}
}
