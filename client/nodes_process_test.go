package client_test

import (
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ledgerd/ledgerd/client"
)

// TestNodesAgainstLedgerdProcess reads CCF's node endpoints of a real
// ledgerd with a client that has a bearer-token credential it must not use
// (the reads are public), through AtNode too, and trusts the node (already
// Trusted: accepted, nothing changes) as its member.
func TestNodesAgainstLedgerdProcess(t *testing.T) {
	endpoint, data := startLedgerd(t)
	ctx := testContext(t)
	opts := &client.Options{ServiceCertFile: filepath.Join(data, "service.pem")}
	var calls atomic.Int32 // failingTokens counts the tokens asked for: none
	anon, err := client.New(endpoint, client.FromTokenSource(failingTokens{&calls}), opts)
	if err != nil {
		t.Fatal(err)
	}
	defer anon.Close()
	info, err := anon.GetNetwork(ctx)
	if err != nil {
		t.Fatal(err)
	}
	list, err := anon.ListNodes(ctx)
	if err != nil {
		t.Fatal(err)
	}
	addr := strings.TrimPrefix(endpoint, "https://")
	if info.ServiceStatus != "Open" || info.CurrentView < 1 || len(list.Nodes) != 1 || list.Nodes[0].NodeID != info.PrimaryID ||
		!list.Nodes[0].Primary || list.Nodes[0].Address() != addr || !strings.Contains(string(list.Raw), info.PrimaryID) {
		t.Fatalf("network %+v, nodes %+v", info, list.Nodes)
	}
	at, err := anon.AtNode(list.Nodes[0].Address())
	if err != nil {
		t.Fatal(err)
	}
	commit, err := at.GetCommit(ctx)
	if err != nil || strings.Count(commit, ".") != 1 {
		t.Fatalf("GetCommit at the node: %q, %v", commit, err)
	}
	if _, err := anon.AtNode("no port"); err == nil {
		t.Fatal("AtNode accepted an address without a port")
	}

	if n := calls.Load(); n != 0 {
		t.Fatalf("the public reads asked for a token %d times", n)
	}

	member, err := client.New(endpoint, client.CertificateFile(filepath.Join(data, "member0.pem")), opts)
	if err != nil {
		t.Fatal(err)
	}
	defer member.Close()
	p, err := member.TrustNode(ctx, info.PrimaryID, time.Now())
	if err != nil || p.State != client.ProposalAccepted {
		t.Fatalf("TrustNode: %+v, %v", p, err)
	}
	after, err := anon.ListNodes(ctx)
	if err != nil || string(after.Raw) != string(list.Raw) {
		t.Fatalf("the nodes changed: %s, %v", after.Raw, err)
	}
}
