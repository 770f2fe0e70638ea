package gov

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"

	"github.com/ledgerd/ledgerd/internal/tables"
)

// Member statuses, as CCF spells them (tables.MemberActive, tables.MemberAccepted).
const (
	MemberActive   = tables.MemberActive
	MemberAccepted = tables.MemberAccepted
)

// Member is a consortium member.
type Member struct {
	// ID is the member id, MemberID of the certificate.
	ID string
	// CertPEM is the member's PEM certificate.
	CertPEM []byte
	// Status is MemberActive or MemberAccepted ("" if the member has no
	// info record).
	Status string
}

// MemberID returns CCF's member id of a DER certificate (pemToId): the
// lowercase hex SHA-256 of the DER bytes.
func MemberID(der []byte) string {
	sum := sha256.Sum256(der)
	return hex.EncodeToString(sum[:])
}

// certDER returns the DER bytes of the first PEM CERTIFICATE block of
// certPEM.
func certDER(certPEM []byte) ([]byte, error) {
	for rest := certPEM; ; {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			return nil, errors.New("no PEM CERTIFICATE block")
		}
		if b.Type == "CERTIFICATE" {
			return b.Bytes, nil
		}
	}
}

// Members returns the consortium members in the committed state, ordered by
// id.
func Members(st State) ([]Member, error) {
	var members []Member
	var err error
	st.Range(tables.MembersCertsMap, func(key, value []byte) bool {
		m := Member{ID: string(key), CertPEM: value}
		if raw, ok := st.Get(tables.MembersInfoMap, key); ok {
			var info tables.MemberInfo
			if e := json.Unmarshal(raw, &info); e != nil {
				err = fmt.Errorf("couldn't decode the info of member %s: %w", key, e)
				return false
			}
			m.Status = info.Status
		}
		members = append(members, m)
		return true
	})
	if err != nil {
		return nil, err
	}
	return members, nil
}

// IsActiveMember reports whether id is a member whose status is Active.
func IsActiveMember(st State, id string) bool {
	raw, ok := st.Get(tables.MembersInfoMap, []byte(id))
	if !ok {
		return false
	}
	var info tables.MemberInfo
	return json.Unmarshal(raw, &info) == nil && info.Status == MemberActive
}

// Constitution returns the constitution in the committed state.
func Constitution(st State) (string, bool) {
	raw, ok := st.Get(tables.ConstitutionMap, tables.SingletonKey)
	return string(raw), ok
}
