package attest

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
)

// ErrBadQuote means a quote does not decode, or does not bind what it
// should.
var ErrBadQuote = errors.New("attest: bad quote")

// Virtual is the Platform without hardware protection. Its measurement is
// computed once, when it is created.
type Virtual struct {
	measurement string
}

// VirtualQuote is the JSON document a Virtual platform returns as its raw
// quote.
type VirtualQuote struct {
	// Format is always FormatVirtual.
	Format string `json:"format"`
	// Measurement is the hex SHA-256 of the running binary.
	Measurement string `json:"measurement"`
	// ReportData is the hex SHA-256 of the node's DER public key.
	ReportData string `json:"report_data"`
}

// NewVirtual returns a virtual platform measuring the executable at path,
// or the running executable (os.Executable) if path is "".
func NewVirtual(path string) (*Virtual, error) {
	if path == "" {
		exe, err := os.Executable()
		if err != nil {
			return nil, fmt.Errorf("attest: couldn't find the running executable: %w", err)
		}
		path = exe
	}
	sum, err := hashFile(path)
	if err != nil {
		return nil, err
	}
	return &Virtual{measurement: hex.EncodeToString(sum[:])}, nil
}

// hashFile returns the SHA-256 of a file's contents.
func hashFile(path string) ([sha256.Size]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return [sha256.Size]byte{}, fmt.Errorf("attest: couldn't open %s to measure it: %w", path, err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return [sha256.Size]byte{}, fmt.Errorf("attest: couldn't read %s to measure it: %w", path, err)
	}
	return [sha256.Size]byte(h.Sum(nil)), nil
}

// Format implements Platform.
func (v *Virtual) Format() string { return FormatVirtual }

// Measurement implements Platform.
func (v *Virtual) Measurement() string { return v.measurement }

// Quote implements Platform: the JSON encoding of a VirtualQuote.
func (v *Virtual) Quote(reportData [sha256.Size]byte) ([]byte, error) {
	q := VirtualQuote{Format: FormatVirtual, Measurement: v.measurement, ReportData: hex.EncodeToString(reportData[:])}
	raw, err := json.Marshal(q)
	if err != nil {
		return nil, fmt.Errorf("attest: couldn't encode virtual quote: %w", err)
	}
	return raw, nil
}

// VerifyVirtual decodes a virtual quote and checks that it binds
// reportData and, if measurement is not "", that it reports that
// measurement. A virtual quote is not signed: this checks consistency, not
// authenticity.
func VerifyVirtual(raw []byte, reportData [sha256.Size]byte, measurement string) (*VirtualQuote, error) {
	var q VirtualQuote
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&q); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadQuote, err)
	}
	switch {
	case q.Format != FormatVirtual:
		return nil, fmt.Errorf("%w: format %q, want %q", ErrBadQuote, q.Format, FormatVirtual)
	case q.ReportData != hex.EncodeToString(reportData[:]):
		return nil, fmt.Errorf("%w: report data %q does not bind the node key", ErrBadQuote, q.ReportData)
	case measurement != "" && q.Measurement != measurement:
		return nil, fmt.Errorf("%w: measurement %q, want %q", ErrBadQuote, q.Measurement, measurement)
	}
	return &q, nil
}
