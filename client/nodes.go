package client

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"time"
)

// CCF's node endpoints (/node/*, no credentials needed; docs/acl-api.md
// §10) and the governance of nodes.

// NodeInterface is one network interface of a node (CCF's rpc_interfaces
// entry).
type NodeInterface struct {
	BindAddress      string `json:"bind_address"`
	PublishedAddress string `json:"published_address"`
	Protocol         string `json:"protocol,omitempty"`
	AppProtocol      string `json:"app_protocol,omitempty"`
}

// PrimaryRPCInterface is the name of a node's client interface in
// NetworkNode.RPCInterfaces.
const PrimaryRPCInterface = "primary_rpc_interface"

// NetworkNode is a node of the network (CCF's GetNode::Out).
type NetworkNode struct {
	NodeID string `json:"node_id"`
	// Status is "Pending", "Trusted" or "Retired".
	Status string `json:"status"`
	// Primary reports whether the node answering knows this node as the
	// primary.
	Primary             bool                     `json:"primary"`
	RPCInterfaces       map[string]NodeInterface `json:"rpc_interfaces"`
	NodeData            json.RawMessage          `json:"node_data"`
	NodeToNodeInterface *NodeInterface           `json:"node_to_node_interface,omitempty"`
}

// Address returns the published address (HOST:PORT) of the node's client
// interface, or of its only interface, "" if it has none.
func (n NetworkNode) Address() string {
	if i, ok := n.RPCInterfaces[PrimaryRPCInterface]; ok {
		return i.PublishedAddress
	}
	if len(n.RPCInterfaces) == 1 {
		for _, i := range n.RPCInterfaces {
			return i.PublishedAddress
		}
	}
	return ""
}

// NodeList is the answer of GET /node/network/nodes: the nodes, and the
// body as the node sent it.
type NodeList struct {
	Nodes []NetworkNode `json:"nodes"`
	// Raw is the JSON body as received.
	Raw json.RawMessage `json:"-"`
}

// NetworkInfo is the answer of GET /node/network (CCF's
// GetNetworkInfo::Out).
type NetworkInfo struct {
	ServiceStatus      string `json:"service_status"`
	ServiceCertificate string `json:"service_certificate"`
	// CurrentView is the view (Raft term) the node is in.
	CurrentView uint64 `json:"current_view"`
	// PrimaryID is the primary's node id, "" while none is known.
	PrimaryID     string `json:"primary_id,omitempty"`
	RecoveryCount uint64 `json:"recovery_count"`
}

// nodeRequest is a request of a public /node endpoint: no credentials are
// needed (a bearer token is not sent), nor an api-version (the client's is
// sent and ignored).
func nodeRequest(path string, query url.Values) *request {
	return &request{method: http.MethodGet, path: path, query: query, public: true}
}

// GetNetwork returns the service's status, the current view and primary,
// as the node answering knows them: GET /node/network.
func (c *Client) GetNetwork(ctx context.Context) (NetworkInfo, error) {
	resp, err := c.do(ctx, nodeRequest("/node/network", nil))
	if err != nil {
		return NetworkInfo{}, err
	}
	var info NetworkInfo
	if err := resp.decode(&info); err != nil {
		return NetworkInfo{}, err
	}
	return info, nil
}

// ListNodes returns the nodes of the network: GET /node/network/nodes.
func (c *Client) ListNodes(ctx context.Context) (NodeList, error) {
	resp, err := c.do(ctx, nodeRequest("/node/network/nodes", nil))
	if err != nil {
		return NodeList{}, err
	}
	var list NodeList
	if err := resp.decode(&list); err != nil {
		return NodeList{}, err
	}
	list.Raw = resp.body
	return list, nil
}

// GetCommit returns the id of the last transaction committed, as the node
// answering knows it: GET /node/commit.
func (c *Client) GetCommit(ctx context.Context) (string, error) {
	resp, err := c.do(ctx, nodeRequest("/node/commit", nil))
	if err != nil {
		return "", err
	}
	var out struct {
		TransactionID string `json:"transaction_id"`
	}
	if err := resp.decode(&out); err != nil {
		return "", err
	}
	if out.TransactionID == "" {
		return "", fmt.Errorf("the node's answer has no transaction_id")
	}
	return out.TransactionID, nil
}

// AtNode returns a client of the same ledger that sends its requests to
// another node of the network, at address (HOST:PORT, such as a
// NetworkNode's Address): same credentials, same pinned service
// certificate (every node's certificate is endorsed by it), same
// connections pool; Close on either closes the idle connections of both.
func (c *Client) AtNode(address string) (*Client, error) {
	base, err := parseEndpoint("https://"+address, "node address")
	if err != nil {
		return nil, err
	}
	n := *c
	n.base = base
	if c.identityIsLedger() {
		n.identityBase = base
	}
	return &n, nil
}

// validFromLayout is CCF's format of certificate validity dates
// (valid_from): UTC, YYYYMMDDhhmmssZ.
const validFromLayout = "20060102150405Z"

// TrustNode proposes that a Pending node be trusted (the constitution's
// transition_node_to_trusted, its certificate valid from validFrom) and
// votes for it; it returns the proposal after the vote. A node that is
// already Trusted is left as it is (the proposal is accepted and changes
// nothing).
func (c *Client) TrustNode(ctx context.Context, nodeID string, validFrom time.Time) (Proposal, error) {
	return c.proposeAndVote(ctx, Action{Name: "transition_node_to_trusted",
		Args: map[string]string{"node_id": nodeID, "valid_from": validFrom.UTC().Format(validFromLayout)}})
}

// RemoveNode proposes that a node be removed (the constitution's
// remove_node: a Pending node is deleted, another Retired) and votes for
// it; it returns the proposal after the vote.
func (c *Client) RemoveNode(ctx context.Context, nodeID string) (Proposal, error) {
	return c.proposeAndVote(ctx, Action{Name: "remove_node", Args: map[string]string{"node_id": nodeID}})
}

// proposeAndVote proposes the actions and votes yes while the proposal is
// Open.
func (c *Client) proposeAndVote(ctx context.Context, actions ...Action) (Proposal, error) {
	p, err := c.CreateProposal(ctx, actions...)
	if err != nil {
		return Proposal{}, err
	}
	if p.State != ProposalOpen {
		return p, nil
	}
	voted, err := c.Vote(ctx, p.ProposalID, true)
	if err != nil {
		return p, fmt.Errorf("proposed %s, but the vote failed: %w", p.ProposalID, err)
	}
	return voted, nil
}
