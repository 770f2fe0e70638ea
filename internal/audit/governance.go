package audit

import (
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"regexp"
	"strings"

	"github.com/ledgerd/ledgerd/internal/cose"
	"github.com/ledgerd/ledgerd/internal/ledger"
	"github.com/ledgerd/ledgerd/internal/tables"
)

// GovEvent is one event of the governance history: a member's signed
// request kept in public:ccf.gov.history (Kind "request"), or a proposal's
// change of state in public:ccf.gov.proposals_info (Kind "state").
type GovEvent struct {
	Seqno uint64 `json:"seqno"`
	Kind  string `json:"kind"` // "request" or "state"

	// A request: the signer (the member id its kid names, whose
	// certificate as of this seqno verified the signature), the message
	// type, created_at (seconds) and the proposal id (from the proposal_id
	// header, or for a proposal the id it was recorded under).
	MemberID   string `json:"member_id,omitempty"`
	MsgType    string `json:"msg_type,omitempty"`
	CreatedAt  uint64 `json:"created_at,omitempty"`
	ProposalID string `json:"proposal_id,omitempty"`
	// Actions are a proposal's action names; Ballot a ballot's JavaScript.
	Actions []string `json:"actions,omitempty"`
	Ballot  string   `json:"ballot,omitempty"`

	// A state change: the proposal's new state (ProposalID is set), and
	// the failure's reason for a Failed one.
	State   string `json:"state,omitempty"`
	Failure string `json:"failure,omitempty"`
}

// GovOptions configures Governance.
type GovOptions struct {
	// Live accepts a write in progress at the end of the open chunk, as
	// Options.Live.
	Live bool
}

// GovReport summarises the governance history.
type GovReport struct {
	Requests   int            // signed requests, all verified
	ByType     map[string]int // requests by message type
	Proposals  int            // distinct proposals seen
	LastSeqno  uint64
	MemberSeen int // members whose certificates the ledger recorded
}

// Governance walks the ledger in dir in seqno order and calls emit for
// each event of its governance history: every signed request written to
// public:ccf.gov.history, verified against the signer's certificate in
// public:ccf.gov.members.certs as the ledger stood before that transaction,
// and every change of a proposal's state in public:ccf.gov.proposals_info.
// A request that does not parse as a governance COSE_Sign1 envelope, whose
// kid is not the member id it is recorded under, whose signer was not a
// member, or whose signature does not verify, is a *Failure.
//
// It reads the public domain only; it does not check the ledger's
// integrity (run Dir for that).
func Governance(dir string, opts GovOptions, emit func(GovEvent)) (*GovReport, error) {
	g := &govWalker{certs: map[string]*x509.Certificate{}, states: map[string]string{}, emit: emit,
		rep: GovReport{ByType: map[string]int{}}}
	err := ledger.Walk(dir, func(seqno uint64, raw []byte) error {
		return g.entry(seqno, raw)
	}, ledger.WalkOptions{AllowTornTail: opts.Live})
	if err != nil {
		var f *Failure
		if errors.As(err, &f) {
			return &g.rep, f
		}
		var ce *ledger.CorruptionError
		if errors.As(err, &ce) {
			return &g.rep, &Failure{Seqno: ce.Seqno, Reason: ce.Error()}
		}
		return &g.rep, err
	}
	g.rep.Proposals = len(g.states)
	return &g.rep, nil
}

type govWalker struct {
	certs  map[string]*x509.Certificate // member id -> certificate, as of the current seqno
	states map[string]string            // proposal id -> last state seen
	emit   func(GovEvent)
	rep    GovReport
}

func (g *govWalker) entry(seqno uint64, raw []byte) error {
	e, err := ledger.ParseEntry(raw)
	if err != nil {
		return &Failure{Seqno: seqno, Reason: fmt.Sprintf("entry does not parse: %v", err)}
	}
	d, err := e.PublicDomain()
	if err != nil {
		return &Failure{Seqno: seqno, Reason: fmt.Sprintf("public domain does not parse: %v", err)}
	}
	g.rep.LastSeqno = seqno
	var history, infos, certs *ledger.MapWrites
	proposals := map[string][]byte{} // this transaction's proposal bodies
	for i := range d.Maps {
		m := &d.Maps[i]
		switch m.Name {
		case tables.HistoryMap:
			history = m
		case tables.ProposalsInfoMap:
			infos = m
		case tables.MembersCertsMap:
			certs = m
		case tables.ProposalsMap:
			for _, w := range m.Writes {
				proposals[string(w.Key)] = w.Value
			}
		}
	}
	// The requests are verified against the members as they were before
	// this transaction: a request is authenticated before it writes.
	if history != nil {
		for _, w := range history.Writes {
			ev, err := g.request(seqno, string(w.Key), w.Value, proposals)
			if err != nil {
				return &Failure{Seqno: seqno, Reason: "governance history: " + err.Error()}
			}
			g.rep.Requests++
			g.rep.ByType[ev.MsgType]++
			g.emit(ev)
		}
	}
	if infos != nil {
		for _, w := range infos.Writes {
			var info tables.ProposalInfo
			if err := json.Unmarshal(w.Value, &info); err != nil {
				return &Failure{Seqno: seqno, Reason: fmt.Sprintf("proposal %s: info does not parse: %v", w.Key, err)}
			}
			id := string(w.Key)
			if prev, ok := g.states[id]; ok && prev == info.State {
				continue
			}
			g.states[id] = info.State
			ev := GovEvent{Seqno: seqno, Kind: "state", ProposalID: id, State: info.State}
			if info.Failure != nil {
				ev.Failure = info.Failure.Reason
			}
			g.emit(ev)
		}
	}
	if certs != nil {
		for _, w := range certs.Writes {
			cert, err := parseCert(w.Value)
			if err != nil {
				return &Failure{Seqno: seqno, Reason: fmt.Sprintf("member %s: certificate: %v", w.Key, err)}
			}
			if id := cose.MemberID(cert.Raw); id != string(w.Key) {
				return &Failure{Seqno: seqno, Reason: fmt.Sprintf("member %s: its certificate's id is %s", w.Key, id)}
			}
			if _, ok := g.certs[string(w.Key)]; !ok {
				g.rep.MemberSeen++
			}
			g.certs[string(w.Key)] = cert
		}
		for _, k := range certs.Removes {
			delete(g.certs, string(k))
		}
	}
	return nil
}

// request checks one history value, the envelope member signed.
func (g *govWalker) request(seqno uint64, member string, envelope []byte, proposals map[string][]byte) (GovEvent, error) {
	msg, err := cose.Parse(envelope)
	if err != nil {
		return GovEvent{}, fmt.Errorf("the request of member %s is not a COSE_Sign1 envelope: %v", member, err)
	}
	if err := msg.CheckGovernance(""); err != nil {
		return GovEvent{}, fmt.Errorf("the request of member %s: %v", member, err)
	}
	if !msg.HasMsgType {
		return GovEvent{}, fmt.Errorf("the request of member %s has no ccf.gov.msg.type", member)
	}
	if string(msg.KID) != member {
		return GovEvent{}, fmt.Errorf("the request recorded for member %s is signed by kid %q", member, clip(string(msg.KID)))
	}
	cert, ok := g.certs[member]
	if !ok {
		return GovEvent{}, fmt.Errorf("the request of %s (%s) is signed by no member of the service at this point", member, msg.MsgType)
	}
	if err := msg.Verify(cert.PublicKey); err != nil {
		return GovEvent{}, fmt.Errorf("the %s request of member %s does not verify with the member's certificate: %v", msg.MsgType, member, err)
	}
	ev := GovEvent{Seqno: seqno, Kind: "request", MemberID: member, MsgType: msg.MsgType,
		CreatedAt: msg.CreatedAt, ProposalID: msg.ProposalID}
	switch msg.MsgType {
	case cose.MsgProposal:
		for id, body := range proposals {
			if string(body) == string(msg.Payload) {
				ev.ProposalID = id
			}
		}
		var p struct {
			Actions []struct {
				Name string `json:"name"`
			} `json:"actions"`
		}
		if json.Unmarshal(msg.Payload, &p) == nil {
			for _, a := range p.Actions {
				ev.Actions = append(ev.Actions, a.Name)
			}
		}
	case cose.MsgBallot:
		var b struct {
			Ballot string `json:"ballot"`
		}
		if json.Unmarshal(msg.Payload, &b) == nil {
			ev.Ballot = b.Ballot
		}
	}
	// Other payloads (acks, and anything a recovery message may carry) are
	// not shown.
	return ev, nil
}

func parseCert(certPEM []byte) (*x509.Certificate, error) {
	for rest := certPEM; ; {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			return nil, errors.New("no PEM certificate")
		}
		if b.Type == "CERTIFICATE" {
			return x509.ParseCertificate(b.Bytes)
		}
	}
}

func clip(s string) string {
	if len(s) > 80 {
		return s[:80] + "..."
	}
	return s
}

var (
	space      = regexp.MustCompile(`\s+`)
	yesOrNoRes = regexp.MustCompile(`^export function vote ?\( ?proposal ?, ?proposerId ?\) ?\{ ?return (true|false) ?;? ?\} ?$`)
)

// BallotSummary is a ballot's short form: "yes" or "no" for the ballots
// that return a constant, else its text on one line, clipped.
func BallotSummary(ballot string) string {
	one := strings.TrimSpace(space.ReplaceAllString(ballot, " "))
	if m := yesOrNoRes.FindStringSubmatch(one); m != nil {
		if m[1] == "true" {
			return "yes"
		}
		return "no"
	}
	if len(one) > 100 {
		one = one[:100] + "..."
	}
	return fmt.Sprintf("%q", one)
}
