package api

import (
	"fmt"
	"time"
)

// govHost is what the constitution's apply reaches through ccf.network.*
// (constitution.Host): certificates issued with the service key, and the
// seqno of the latest ledger secret.
type govHost struct{ s *Server }

// parseValidFrom reads a constitution's valid_from: CCF's X.509 time
// string (YYYYMMDDhhmmssZ), or now when absent.
func parseValidFrom(v string) (time.Time, error) {
	switch v {
	case "", "undefined", "null":
		return time.Now().Truncate(time.Second), nil
	}
	t, err := time.Parse("20060102150405Z", v)
	if err != nil {
		return time.Time{}, fmt.Errorf("valid_from %q is not YYYYMMDDhhmmssZ", v)
	}
	return t, nil
}

// GenerateNetworkCertificate renews the service certificate (same key).
func (h govHost) GenerateNetworkCertificate(validFrom string, days int64) (string, error) {
	from, err := parseValidFrom(validFrom)
	if err != nil {
		return "", err
	}
	cert, err := h.s.cfg.Identities.Service.RenewedServiceCert(from, int(days))
	return string(cert), err
}

// GenerateEndorsedCertificate endorses a node's certificate signing request.
func (h govHost) GenerateEndorsedCertificate(csrPEM, validFrom string, days int64) (string, error) {
	from, err := parseValidFrom(validFrom)
	if err != nil {
		return "", err
	}
	cert, err := h.s.cfg.Identities.Service.EndorseCSR([]byte(csrPEM), from, int(days))
	return string(cert), err
}

// LatestLedgerSecretSeqno is the seqno from which the latest ledger secret
// applies.
func (h govHost) LatestLedgerSecretSeqno() (int64, error) {
	return h.s.reads.LatestLedgerSecretSeqno(), nil
}
