package api

import (
	"encoding/json"
	"encoding/pem"
	"fmt"
	"net/http"
	"strings"

	"github.com/ledgerd/ledgerd/internal/gov"
	"github.com/ledgerd/ledgerd/internal/node"
	"github.com/ledgerd/ledgerd/internal/tables"
)

// The read side of CCF's governance API, version 2024-07-01 (CCF
// doc/schemas/gov/2024-07-01/gov.json; handlers in CCF
// src/node/gov/handlers/service_state.h and transactions.h). As in CCF,
// every endpoint here is unauthenticated (no_auth_required) and reads the
// node's latest executed state. docs/acl-api.md §9 lists what ledgerd
// answers where it has no state to report.

// govAPIVersion is the only governance api-version ledgerd serves.
const govAPIVersion = "2024-07-01"

// errorCodeHeader repeats the error code of a /gov answer, as CCF's
// governance API documents (x-ms-error-code on every error response).
const errorCodeHeader = "x-ms-error-code"

// isGovPath reports whether a request is for the governance API, whose
// errors carry errorCodeHeader.
func isGovPath(path string) bool { return strings.HasPrefix(path, "/gov/") }

// govRead wraps a governance read: it checks api-version as CCF's
// api_version_adapter does (the /gov endpoints are registered unversioned
// so that the ACL versions do not apply to them).
func govRead(h func(*Server, *call) error) func(*Server, *call) error {
	return func(s *Server, c *call) error {
		if err := checkGovVersion(c.r.URL.Query()[apiVersionParam]); err != nil {
			return err
		}
		return h(s, c)
	}
}

// checkGovVersion returns CCF's error for a missing or unsupported
// api-version of the governance API.
func checkGovVersion(vs []string) error {
	const supported = "The supported api-versions are: " + govAPIVersion
	if len(vs) == 0 {
		return newError(http.StatusBadRequest, codeMissingAPIVersion,
			"The api-version query parameter (?%s=) is required for this request. %s", apiVersionParam, supported)
	}
	for _, v := range vs {
		if v != govAPIVersion {
			return newError(http.StatusBadRequest, codeUnsupportedAPIVersion,
				"Unsupported api-version '%s'. %s", clip(v), supported)
		}
	}
	return nil
}

// codeInvalidResourceName is CCF's code for a malformed path parameter.
const codeInvalidResourceName = "InvalidResourceName"

// parseHexID checks a member or node id path parameter as CCF's
// parse_hex_id does: 64 hexadecimal characters.
func parseHexID(s, what string) (string, error) {
	ok := len(s) == 64
	for i := 0; ok && i < len(s); i++ {
		c := s[i]
		ok = '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
	}
	if !ok {
		return "", newError(http.StatusBadRequest, codeInvalidResourceName,
			"'%s' is not a valid hex-encoded %s ID", clip(s), what)
	}
	return s, nil
}

// getGovConstitution serves GET /gov/service/constitution: the raw
// JavaScript, as text/javascript, as CCF serves it.
func (s *Server) getGovConstitution(c *call) error {
	script, ok := gov.Constitution(s.reads.State())
	if !ok {
		return newError(http.StatusNotFound, codeResourceNotFound, "Constitution not found")
	}
	h := c.w.Header()
	h.Set("Content-Type", "text/javascript")
	h.Set(txIDHeader, c.served.String())
	c.w.WriteHeader(http.StatusOK)
	c.w.Write([]byte(script)) // an error means the client has gone
	return nil
}

// govServiceInfo is ServiceState.ServiceInfo. creationTransactionId is
// omitted, as CCF omits it when its state has no record of it: ledgerd's
// service record has none. configuration is omitted, as in CCF, when the
// state has no service configuration (a ledger founded before ledgerd wrote
// one).
type govServiceInfo struct {
	Status        string            `json:"status"`
	Certificate   string            `json:"certificate"`
	RecoveryCount uint64            `json:"recoveryCount"`
	ServiceData   json.RawMessage   `json:"serviceData"`
	Configuration *govServiceConfig `json:"configuration,omitempty"`
}

// govServiceConfig is ServiceState.ServiceInfo.configuration: the fields
// CCF reports of public:ccf.gov.service.config.
type govServiceConfig struct {
	RecoveryThreshold                     int `json:"recoveryThreshold"`
	MaximumNodeCertificateValidityDays    int `json:"maximumNodeCertificateValidityDays"`
	MaximumServiceCertificateValidityDays int `json:"maximumServiceCertificateValidityDays"`
	RecentCoseProposalsWindowSize         int `json:"recentCoseProposalsWindowSize"`
}

// getGovServiceInfo serves GET /gov/service/info.
func (s *Server) getGovServiceInfo(c *call) error {
	raw, ok := s.reads.State().Get(tables.ServiceInfoMap, tables.SingletonKey)
	if !ok {
		return newError(http.StatusNotFound, codeResourceNotFound, "Service info not yet available")
	}
	var info tables.ServiceInfo
	if err := json.Unmarshal(raw, &info); err != nil {
		return fmt.Errorf("couldn't decode the service info: %w", err)
	}
	answer := govServiceInfo{Status: info.Status, Certificate: info.Cert, ServiceData: jsonNull}
	var recovered struct {
		RecoveryCount uint64 `json:"recovery_count"`
	}
	if json.Unmarshal(raw, &recovered) == nil {
		answer.RecoveryCount = recovered.RecoveryCount // +1 per disaster recovery (--recover)
	}
	if cfg, ok := gov.ServiceConfig(s.reads.State()); ok {
		answer.Configuration = &govServiceConfig{RecoveryThreshold: cfg.RecoveryThreshold,
			MaximumNodeCertificateValidityDays:    cfg.MaximumNodeCertificateValidityDays,
			MaximumServiceCertificateValidityDays: cfg.MaximumServiceCertificateValidityDays,
			RecentCoseProposalsWindowSize:         cfg.RecentCOSEProposalsWindowSize}
	}
	return c.ok(answer)
}

// jsonNull is the value of the *Data fields when unset (memberData,
// nodeData, serviceData): CCF writes JSON null.
var jsonNull = json.RawMessage("null")

// dataField returns a JSON field of a table value (member_data of a
// member's info, node_data of a node's), or null.
func dataField(raw []byte, field string) json.RawMessage {
	var fields map[string]json.RawMessage
	if json.Unmarshal(raw, &fields) != nil || fields[field] == nil {
		return jsonNull
	}
	return fields[field]
}

// govMember is ServiceState.Member; publicEncryptionKey is set for a
// recovery member (one with an encryption key), as in CCF.
type govMember struct {
	MemberID            string          `json:"memberId"`
	Status              string          `json:"status"`
	MemberData          json.RawMessage `json:"memberData"`
	Certificate         string          `json:"certificate"`
	PublicEncryptionKey string          `json:"publicEncryptionKey,omitempty"`
}

func govMemberOf(st *node.State, m gov.Member) govMember {
	key, _ := st.Get(tables.MembersEncryptionKeysMap, []byte(m.ID))
	info, _ := st.Get(tables.MembersInfoMap, []byte(m.ID))
	return govMember{MemberID: m.ID, Status: m.Status, MemberData: dataField(info, "member_data"), Certificate: string(m.CertPEM),
		PublicEncryptionKey: string(key)}
}

// listGovMembers serves GET /gov/service/members.
func (s *Server) listGovMembers(c *call) error {
	st := s.reads.State()
	members, err := gov.Members(st)
	if err != nil {
		return fmt.Errorf("couldn't read members: %w", err)
	}
	items := make([]govMember, 0, len(members))
	for _, m := range members {
		if m.Status != "" { // as CCF, list the member info table
			items = append(items, govMemberOf(st, m))
		}
	}
	return c.ok(struct {
		Value []govMember `json:"value"`
	}{items})
}

// getGovMember serves GET /gov/service/members/{memberId}.
func (s *Server) getGovMember(c *call) error {
	id, err := parseHexID(c.r.PathValue("memberId"), "member")
	if err != nil {
		return err
	}
	st := s.reads.State()
	members, err := gov.Members(st)
	if err != nil {
		return fmt.Errorf("couldn't read members: %w", err)
	}
	for _, m := range members {
		// CCF's member info table is the one looked up; ledgerd writes a
		// member's info and certificate together.
		if m.ID == id && m.Status != "" {
			return c.ok(govMemberOf(st, m))
		}
	}
	return newError(http.StatusNotFound, codeResourceNotFound, "Member %s does not exist.", id)
}

// govNode is ServiceState.Node. ledgerd's nodes are virtual: quoteInfo has
// only its format (the quote itself is not recorded in the state; each node
// serves its own at /app/enclaveQuotes), and rpcInterfaces is empty (node
// addresses are not recorded in the state).
type govNode struct {
	NodeID           string                     `json:"nodeId"`
	Status           string                     `json:"status"`
	NodeData         json.RawMessage            `json:"nodeData"`
	Certificate      string                     `json:"certificate,omitempty"`
	RetiredCommitted bool                       `json:"retiredCommitted"`
	QuoteInfo        govQuoteInfo               `json:"quoteInfo"`
	RPCInterfaces    map[string]json.RawMessage `json:"rpcInterfaces"`
}

type govQuoteInfo struct {
	Format string `json:"format"`
}

// govNodeOf describes node id from its info record, with the endorsed
// certificate of NodeCertsMap (the info record's when there is none).
func govNodeOf(st *node.State, id string, raw []byte) (govNode, error) {
	var info tables.NodeInfo
	if err := json.Unmarshal(raw, &info); err != nil {
		return govNode{}, fmt.Errorf("couldn't decode the info of node %s: %w", id, err)
	}
	cert := info.Cert
	if endorsed, ok := st.Get(tables.NodeCertsMap, []byte(id)); ok {
		cert = string(endorsed)
	}
	return govNode{NodeID: id, Status: info.Status, NodeData: dataField(raw, "node_data"), Certificate: cert,
		QuoteInfo: govQuoteInfo{Format: "Insecure_Virtual"}, RPCInterfaces: map[string]json.RawMessage{}}, nil
}

// listGovNodes serves GET /gov/service/nodes.
func (s *Server) listGovNodes(c *call) error {
	st := s.reads.State()
	items := []govNode{}
	var err error
	st.Range(tables.NodesInfoMap, func(key, value []byte) bool {
		var n govNode
		if n, err = govNodeOf(st, string(key), value); err != nil {
			return false
		}
		items = append(items, n)
		return true
	})
	if err != nil {
		return err
	}
	return c.ok(struct {
		Value []govNode `json:"value"`
	}{items})
}

// getGovNode serves GET /gov/service/nodes/{nodeId}.
func (s *Server) getGovNode(c *call) error {
	id, err := parseHexID(c.r.PathValue("nodeId"), "node")
	if err != nil {
		return err
	}
	st := s.reads.State()
	raw, ok := st.Get(tables.NodesInfoMap, []byte(id))
	if !ok {
		return newError(http.StatusNotFound, codeResourceNotFound, "Node %s does not exist.", id)
	}
	n, err := govNodeOf(st, id, raw)
	if err != nil {
		return err
	}
	return c.ok(n)
}

// getGovJoinPolicy serves GET /gov/service/join-policy: the virtual
// measurements and host data the consortium allows (add_virtual_*); ledgerd
// runs on no SGX or SNP hardware, so those lists are empty.
func (s *Server) getGovJoinPolicy(c *call) error {
	type list = []string
	type object = map[string]json.RawMessage
	return c.ok(struct {
		SGX struct {
			Measurements list `json:"measurements"`
		} `json:"sgx"`
		SNP struct {
			Measurements    list   `json:"measurements"`
			HostData        object `json:"hostData"`
			UVMEndorsements object `json:"uvmEndorsements"`
			TCBVersions     object `json:"tcbVersions"`
		} `json:"snp"`
		Virtual struct {
			Measurements list `json:"measurements"`
			HostData     list `json:"hostData"`
		} `json:"virtual"`
	}{
		SGX: struct {
			Measurements list `json:"measurements"`
		}{list{}},
		SNP: struct {
			Measurements    list   `json:"measurements"`
			HostData        object `json:"hostData"`
			UVMEndorsements object `json:"uvmEndorsements"`
			TCBVersions     object `json:"tcbVersions"`
		}{list{}, object{}, object{}, object{}},
		Virtual: struct {
			Measurements list `json:"measurements"`
			HostData     list `json:"hostData"`
		}{keysOf(s.reads.State(), tables.VirtualMeasurementsMap), keysOf(s.reads.State(), tables.VirtualHostDataMap)},
	})
}

// keysOf lists the keys of a table, in order (never nil).
func keysOf(st *node.State, table string) []string {
	keys := []string{}
	st.Range(table, func(k, _ []byte) bool {
		keys = append(keys, string(k))
		return true
	})
	return keys
}

// govJWTIssuer is ServiceState.JwtIssuer as CCF's handler writes it.
type govJWTIssuer struct {
	AutoRefresh      bool   `json:"autoRefresh"`
	CACertBundleName string `json:"caCertBundleName,omitempty"`
}

// govJWK is one issuer's key of a kid, as CCF's handler writes it: the
// public key in PEM, and the constraint (null without one).
type govJWK struct {
	PublicKey  string  `json:"publicKey"`
	Issuer     string  `json:"issuer"`
	Constraint *string `json:"constraint"`
}

// getGovJWK serves GET /gov/service/jwk: the governed JWT issuers
// (public:ccf.gov.jwt.issuers), their keys
// (public:ccf.gov.jwt.public_signing_keys_metadata_v2) and the CA bundles
// (public:ccf.gov.tls.ca_cert_bundles). ledgerd's own issuer fields
// (audience, namespace, jwks_uri) are not part of CCF's answer; keys fetched
// from a jwks_uri are not governed and not reported.
func (s *Server) getGovJWK(c *call) error {
	st := s.reads.State()
	issuers := map[string]govJWTIssuer{}
	var err error
	st.Range(tables.JWTIssuersMap, func(key, value []byte) bool {
		var m tables.JWTIssuerMetadata
		if err = json.Unmarshal(value, &m); err != nil {
			err = fmt.Errorf("couldn't decode JWT issuer %q: %w", key, err)
			return false
		}
		issuers[string(key)] = govJWTIssuer{AutoRefresh: m.AutoRefresh, CACertBundleName: m.CACertBundleName}
		return true
	})
	if err != nil {
		return err
	}
	keys := map[string][]govJWK{}
	st.Range(tables.JWTPublicSigningKeysMap, func(key, value []byte) bool {
		var entries []tables.OpenIDJWKMetadata
		if err = json.Unmarshal(value, &entries); err != nil {
			err = fmt.Errorf("couldn't decode the JWT keys of kid %q: %w", key, err)
			return false
		}
		list := make([]govJWK, 0, len(entries))
		for _, e := range entries {
			k := govJWK{Issuer: e.Issuer,
				PublicKey: string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: e.PublicKey}))}
			if e.Constraint != "" {
				k.Constraint = &e.Constraint
			}
			list = append(list, k)
		}
		keys[string(key)] = list
		return true
	})
	if err != nil {
		return err
	}
	bundles := map[string]string{}
	st.Range(caCertBundlesMap, func(key, value []byte) bool {
		var bundle string
		if json.Unmarshal(value, &bundle) == nil {
			bundles[string(key)] = bundle
		}
		return true
	})
	return c.ok(struct {
		Issuers       map[string]govJWTIssuer `json:"issuers"`
		CACertBundles map[string]string       `json:"caCertBundles"`
		Keys          map[string][]govJWK     `json:"keys"`
	}{issuers, bundles, keys})
}

// caCertBundlesMap is CCF's table of named CA certificate bundles (PEM, as a
// JSON string), written by the constitution's set_ca_cert_bundle.
const caCertBundlesMap = "public:ccf.gov.tls.ca_cert_bundles"

// getGovJSApp serves GET /gov/service/javascript-app: the JavaScript
// application installed by governance (CCF's set_js_app), which ledgerd
// does not support, so it has no endpoints. User-defined endpoints
// (handlers_udendpoints.go) are installed by an Administrator and kept
// apart, as CCF's DynamicJSEndpointRegistry keeps its custom endpoints
// apart from the governance app. As in CCF, the only accepted value of the
// "case" query parameter is "original".
func (s *Server) getGovJSApp(c *call) error {
	if vs, ok := c.r.URL.Query()["case"]; ok && (len(vs) != 1 || vs[0] != "original") {
		return newError(http.StatusBadRequest, codeInvalidQuery,
			"Accepted values for the 'case' query parameter are: original")
	}
	return c.ok(struct {
		Endpoints map[string]json.RawMessage `json:"endpoints"`
	}{map[string]json.RawMessage{}})
}

// govTransaction is Transactions.CommittedTransaction, and the answer of
// Transactions_Get (CCF's handler writes transactionId there too).
type govTransaction struct {
	Status        string `json:"status"`
	TransactionID string `json:"transactionId"`
}

// getGovCommit serves GET /gov/service/transactions/commit: the last
// committed transaction.
func (s *Server) getGovCommit(c *call) error {
	id := s.reads.CommittedTxID()
	return c.ok(govTransaction{Status: s.reads.Status(id).String(), TransactionID: id.String()})
}

// getGovTransaction serves GET /gov/service/transactions/{transactionId}:
// its status (Unknown, Pending, Committed or Invalid), 200 whatever it is.
func (s *Server) getGovTransaction(c *call) error {
	raw := c.r.PathValue("transactionId")
	id, err := node.ParseTxID(raw)
	if err != nil {
		return newError(http.StatusBadRequest, codeInvalidQuery,
			"The value '%s' passed as parameter 'transactionId' could not be converted to a valid Transaction ID.", clip(raw))
	}
	return c.ok(govTransaction{Status: s.reads.Status(id).String(), TransactionID: id.String()})
}
