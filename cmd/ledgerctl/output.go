package main

import (
	"context"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/ledgerd/ledgerd/client"
)

// The JSON shapes of --json. They are a stable interface for scripts: they
// follow the ACL API's models (acl-api.md §4) and change only by adding
// fields.

// entryOut is a ledger entry: get, list --json and export (one per line).
type entryOut struct {
	TransactionID string `json:"transactionId"`
	CollectionID  string `json:"collectionId"`
	Contents      string `json:"contents"`
}

// taggedOut is an entry listed by tag.
type taggedOut struct {
	entryOut
	Tags []string `json:"tags"`
}

func entryOutOf(e client.Entry) entryOut {
	return entryOut{TransactionID: e.TransactionID, CollectionID: e.CollectionID, Contents: e.Contents}
}

// txOut is the state of a transaction: append, status and wait.
type txOut struct {
	TransactionID string `json:"transactionId"`
	CollectionID  string `json:"collectionId,omitempty"`
	State         string `json:"state"`
}

// userOut is a ledger user: users add and users get.
type userOut struct {
	UserID       string `json:"userId"`
	AssignedRole string `json:"assignedRole"`
}

// writeJSON writes v as one line of JSON.
func writeJSON(w io.Writer, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	_, err = w.Write(append(b, '\n'))
	return err
}

// printable returns contents for a line of text output: as is when it is
// one line of printable text, else quoted.
func printable(s string) string {
	if s == "" {
		return `""`
	}
	for _, r := range s {
		if !strconv.IsPrint(r) && r != ' ' {
			return strconv.Quote(s)
		}
	}
	return s
}

// terminalSafe returns contents for text output that may span lines: as
// is when it is printable text, newlines and tabs included, else quoted, so
// that an entry cannot send escape sequences to the reader's terminal
// (recolour, retitle, move the cursor over earlier output) or reorder what
// it shows with bidirectional formatting characters.
func terminalSafe(s string) string {
	for _, r := range s {
		if !strconv.IsPrint(r) && r != ' ' && r != '\n' && r != '\t' {
			return strconv.Quote(s)
		}
	}
	return s
}

// commas formats n with thousands separators: 10000 → "10,000".
func commas(n int64) string {
	s := strconv.FormatInt(n, 10)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var b strings.Builder
	for i, r := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(r)
	}
	if neg {
		return "-" + b.String()
	}
	return b.String()
}

// explain adds to an error of the ledger or the connection what to do
// about it.
func explain(err error) error {
	if err == nil {
		return nil
	}
	var hint string
	var unknownAuthority x509.UnknownAuthorityError
	var hostname x509.HostnameError
	var re *client.ResponseError
	gov := errors.As(err, &re) && strings.HasPrefix(re.Path, "/gov/members/")
	switch {
	case errors.Is(err, client.ErrNoMemberSigner):
		return fmt.Errorf("%w (give --cert with a member's certificate and ECDSA key, such as ledgerd's DATA/member0.pem)", err)
	case gov && (re.StatusCode == 401 || re.StatusCode == 403):
		hint = "the service did not accept the signature: is --cert a consortium member's certificate and key (ledgerd: DATA/member0.pem), and the machine's clock right?"
	case errors.Is(err, errCommandTimeout), errors.Is(err, context.DeadlineExceeded):
		hint = "no answer in time: raise --timeout"
	case errors.As(err, &unknownAuthority):
		hint = "the ledger's TLS certificate is not issued by the pinned service certificate: check --service-cert"
	case errors.As(err, &hostname):
		hint = "the ledger's TLS certificate does not name this host: use a name it has (ledgerd: --san-dns, --san-ip)"
	case errors.Is(err, client.ErrUnauthorized):
		hint = "the ledger does not accept the credential: check --cert or --token-file"
	case errors.Is(err, client.ErrForbidden):
		hint = "the credential is not a ledger user, or its role is too low: Reader < Contributor (append) < Administrator (users)"
	case errors.Is(err, client.ErrUncommitted):
		hint = "the transaction is not committed yet: add --wait"
	case errors.Is(err, client.ErrTimeout):
		hint = "still not ready: try again later or raise --timeout"
	case errors.Is(err, client.ErrThrottled):
		hint = "the ledger is busy or unavailable: try again later"
	default:
		return err
	}
	return fmt.Errorf("%w (%s)", err, hint)
}

// count draws progress.go's bar for done of total units (lines).
func (p *progress) count(done, total int64, unit string) {
	if total > 0 {
		p.fraction(float64(done)/float64(total), done >= total, fmt.Sprintf("%s/%s %s", commas(done), commas(total), unit))
	}
}

// fraction draws progress.go's bar at frac (0 to 1), followed by text, at
// most every 100ms until last.
func (p *progress) fraction(frac float64, last bool, text string) {
	if !p.on {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if time.Since(p.last) < 100*time.Millisecond && !last {
		return
	}
	p.last = time.Now()
	const width = 40
	frac = min(max(frac, 0), 1)
	filled := int(width * frac)
	fmt.Fprintf(p.w, "\r[%s%s] %5.1f%% %s\033[K", strings.Repeat("#", filled), strings.Repeat(".", width-filled), 100*frac, text)
}
