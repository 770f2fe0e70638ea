// Package transport is the node-to-node network of a ledgerd service: the
// peer server (its own listener, --peer-listen, apart from the client
// interface), the Raft message streams between nodes, and authenticated
// node-to-node RPC routes. It imports only the standard library and
// go.etcd.io/raft/v3/raftpb; the caller maps Raft ids to node ids.
//
// # Who may connect
//
// Both ends of every connection present a certificate and check the
// other's (TLS 1.3, mutual), by one rule, [VerifyNodeCert]: the peer's leaf
// certificate must be a node certificate of this service — issued by the
// service key and verifying against the service certificate of this
// service (the only root; no intermediates; within its validity period),
// subject CN "CCF Node", not a CA, extended key usages ServerAuth and
// ClientAuth, an ECDSA P-256 key — and the node id of its key must be
// Allowed (the node answers from its state: Trusted and not Retired). What
// this refuses: a user or member certificate (self-signed, CN of its own,
// ClientAuth only), the service certificate itself (CN "CCF Network", a
// CA, no extended key usage), a node of another service (another root), a
// node the service has not trusted or has retired. The dialling side also
// requires the server's node id to be the one it meant to reach. Refusals
// are logged with the remote address, the node id and the reason; never a
// key. The server issues no session tickets, so every connection is a full
// handshake with both certificates checked. Allowed is asked again for
// every RPC request and every Raft message received, so a node retired
// while connected is cut off at its next message; a request refused so
// also closes its connection (HTTP/2 GOAWAY), so that the node's next
// attempt is a handshake, refused there.
//
// # Raft streams
//
// Each node opens one stream to each peer it sends to (so a pair of nodes
// has two, one per direction, as etcd's rafthttp): an endless sequence of
// frames, each a uint32 big-endian length and a marshalled raftpb.Message,
// on a TLS connection of its own to the peer interface that negotiates the
// ALPN protocol [RaftProto] ("ledgerd-raft/1"; the peer server hands such
// a connection to the stream's receiver, http.Server.TLSNextProto). The
// same certificates and the same rule as every peer connection apply at
// the handshake (below); the receiver takes the peer's node id from its
// certificate, asks Allowed, answers one byte (the stream is accepted; a
// refusal is a TLS alert or the end of the connection), and then only
// reads; the sender, once it has that byte, only writes, and ends the
// stream when its connection is closed (a read that ends). Why a
// connection of its own rather than a stream of the HTTP/2 connection that
// carries the RPC routes: every message through HTTP/2 went through three
// goroutines at the receiver (the connection's reader, its server loop, the
// handler), each read by the handler sent WINDOW_UPDATEs back (a flush in a
// goroutine of its own, a write, a wake-up of the sender's reader), and
// the sender's body through one more goroutine: wake-ups and system calls
// every Raft round, on a machine where each is costly. On its own
// connection the receiver's goroutine reads the TLS connection and
// delivers; flow control is TCP's (a receiver that stops reading stalls
// that stream only); each batch is written with a write timeout of 10 s.
// There are no pings: a peer that vanishes without a reset is found when a
// write times out, or by TCP keepalives (minutes), and a restarted one by
// the reset its host answers to the next write. The frame is ours, so that its size is checked before anything is
// allocated.
//
// A peer that does not offer RaftProto (an older node) gets the stream as
// before: an HTTP/2 POST to [RaftStreamPath], whose request body is the same
// frames, answered 200 at once; the server still serves those. Their body
// reads the peer's queue itself (what is queued goes out as one DATA frame,
// up to 512 KiB, and one flush), and one request (GET [RaftStreamPath],
// 204) is answered on the connection before the stream opens, so that the
// server's settings are known when the body starts: the HTTP/2 transport
// sizes a body's frames by them then, 16 KiB until they arrive, for the
// stream's whole life. HTTP/2 adds keepalive pings that detect a dead peer
// (SendPingTimeout) and a write timeout (WriteByteTimeout).
//
// Send (consensus.Transport) never blocks: each message goes to its peer's
// bounded queue (Config.QueueSize); when the queue is full the message is
// dropped and Unreachable reported, so Raft probes the peer again and
// resends (etcd's rafthttp does the same). The sender takes everything
// queued (up to 512 KiB) as one batch of frames; crypto/tls encrypts it in
// records of at most 16 KiB, each its own write to the socket, which are
// gathered and written with one system call. One slow or dead peer
// stalls its own queue only. When the stream fails (dial refused, TLS
// refusal, peer gone, write or ping timeout), the sender reports the peer
// unreachable, drops what is queued during the backoff (50 ms doubling to
// 1 s, jittered) and reconnects. Messages to one peer are delivered in the
// order sent; some may be lost across a reconnection, which Raft tolerates.
//
// A received frame longer than Config.MaxMessageBytes ends the stream
// before it is read. A frame of up to 256 KiB (a MsgApp under load) is
// copied from the stream's read buffer into a buffer of its own size once
// all of it has arrived (one allocation, not zeroed first); a longer
// frame's buffer grows only as its bytes arrive. A
// message with entries is decoded without copying them: its entries' Data
// are sub-slices of the frame's buffer (capacity capped), which the
// receiver then gives away and never reads into again (unmarshal.go); any
// other frame is decoded by raftpb's generated code from a reused buffer. Raft
// bounds what it sends (MaxSizePerMsg 4 MiB, though a single larger entry
// is still sent whole), so the default bound (64 MiB) is far above any
// message a node writes; a message above it is dropped at the sender with
// an error log. A message is delivered only if it is addressed to this
// node's Raft id and its From is the Raft id that AddPeer gave the
// authenticated node (a node cannot speak for another).
//
// Snapshots: a MsgSnap is a small descriptor of the sender's latest
// committed CCF snapshot (node/raftsnap.go); the receiver fetches the file
// itself over an RPC route, so the stream never carries a large message.
// It is queued like the others; one dropped (unknown peer, full queue) is
// also reported failed to ReportSnapshot, so Raft sends it again.
//
// # RPC routes
//
// Handle adds a route to the peer server, run only for an authenticated,
// Allowed peer, whose node id is [PeerNodeID]; Do sends a request to a
// peer (by Raft id) over a connection checked by the same rule, reusing
// that peer's HTTP/2 connection. Every peer has its own http.Transport, so
// a connection made to one node id is never reused for another.
//
// Connections to peers are made from Config.ClientInterface when set (CCF's
// node_client_interface), else from the address the system chooses.
//
// # API
//
//	t, err := transport.New(transport.Config{RaftID, Cert, ServiceCert, ClientInterface, Allowed,
//	        Deliver, Unreachable, ReportSnapshot, Logger, QueueSize, MaxMessageBytes, Now})
//	t.Handle("POST /ledgerd/forward", h) // an authenticated route
//	go t.Serve(ln)                       // peer listener; TLS added by Serve
//	t.AddPeer(raftID, nodeID, "host:port")
//	t.Send(msgs)                         // consensus.Transport
//	resp, err := t.Do(ctx, raftID, req)
//	t.RemovePeer(raftID)
//	t.Close()
package transport
