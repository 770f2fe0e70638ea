package api_test

import (
	"strings"
	"testing"
)

func TestAPIVersionRules(t *testing.T) {
	e := newEnv(t, envOptions{})
	for _, v := range []string{"0.1-preview", "2022-05-13", "2022-07-12", "2022-08-13", "2022-11-23", "2023-01-18-preview",
		"2024-01-26-preview", "2024-07-26-preview", "2024-08-22-preview", "2024-12-09-preview", "2026-02-23"} {
		e.reader.get(q("/app/collections", v)).expect(200, "")
	}
	e.reader.get("/app/collections").expect(400, "MissingApiVersionParameter")
	e.reader.get("/app/collections?api-version=").expect(400, "UnsupportedApiVersionValue")
	e.reader.get("/app/collections?api-version=2021-01-01").expect(400, "UnsupportedApiVersionValue")
	e.reader.get("/app/collections?api-version=2022-20-04-preview").expect(400, "UnsupportedApiVersionValue")
	// Repeated identical values are accepted, differing ones are not.
	e.reader.get("/app/collections?api-version=2022-05-13&api-version=2022-05-13&api-version=2022-05-13").expect(200, "")
	e.reader.get("/app/collections?api-version=2022-05-13&api-version=0.1-preview").expect(400, "UnsupportedApiVersionValue")
	// The version is checked before the caller: no credentials, still 400.
	e.anonymous.get("/app/collections").expect(400, "MissingApiVersionParameter")
	// Writes without a valid version append nothing.
	last := e.quiesce()
	e.contributor.post("/app/transactions", map[string]string{"contents": "x"}).expect(400, "MissingApiVersionParameter")
	if e.quiesce() != last {
		t.Fatal("a request without api-version appended a transaction")
	}
	// The collection parameter belongs to its dialect.
	r := e.contributor.post(q("/app/transactions", v2022, "subLedgerId", "x"), map[string]string{"contents": "x"}).
		expect(400, "InvalidQueryParameterValue")
	if !strings.Contains(r.errorMessage(), "collectionId") {
		t.Errorf("message %q does not point to collectionId", r.errorMessage())
	}
	e.contributor.post(q("/app/transactions", v01, "collectionId", "x"), map[string]string{"contents": "x"}).
		expect(400, "InvalidQueryParameterValue")
}
