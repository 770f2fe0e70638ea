package gov_test

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/ledgerd/ledgerd/internal/gov"
)

// TestReplayAtTheSameRootIsAReplay: a proposal request replayed at the
// same Merkle root as its first copy (ledgerd's root is the tree's, which
// holds a transaction only once it is persisted, so a replay sent right
// after the first copy was executed can read the same root) gets the same
// proposal id. It must be answered as CCF answers it, 400 ProposalReplay
// naming the first proposal, not 500 "Proposal ID collision" (which the
// API tests met as a flake when the replay came before the first copy's
// leaf was in the tree).
func TestReplayAtTheSameRootIsAReplay(t *testing.T) {
	m, id := memberPEM(t)
	ws, err := gov.Genesis{Members: [][]byte{m}}.Writes()
	if err != nil {
		t.Fatal(err)
	}
	st := mapState{}
	st.apply(ws)
	req := gov.Request{
		MemberID:  id,
		Envelope:  []byte("envelope"),
		Signature: []byte("signature"),
		CreatedAt: uint64(time.Now().Unix()),
		Payload:   []byte(`{"actions":[{"name":"set_constitution","args":{"constitution":"x"}}]}`),
	}
	var root [32]byte
	root[0] = 1
	e := &gov.Engine{}
	first, err := e.Propose(context.Background(), st, req, root)
	if err != nil {
		t.Fatal(err)
	}
	st.apply(first.Writes)
	_, err = e.Propose(context.Background(), st, req, root)
	var ge *gov.Error
	if !errors.As(err, &ge) || ge.Status != http.StatusBadRequest || ge.Code != gov.CodeProposalReplay || !strings.Contains(ge.Message, first.ProposalID) {
		t.Fatalf("a replay at the same root: %v, want 400 %s naming %s", err, gov.CodeProposalReplay, first.ProposalID)
	}
}
