// Package node is the core of a ledgerd node: it sequences transactions into
// the Raft log (which is the CCF ledger), emits signature transactions,
// tracks commit as CCF defines it, executes transactions into the state and
// the query index as they are sequenced or appended (rolled back with the
// log, folded into the committed state at commit), and serves entries,
// statuses and receipts.
//
// # The durability protocol
//
// One goroutine, the loop (run, in sequencer.go), owns the Raft node and
// everything that changes the log. Other goroutines reach it through the
// submission queue (Submit), Step (peers' messages) and onLoop
// (ProposeConfChange, ReportUnreachable, ReportSnapshot). Each cycle it
// handles what Raft has ready, then, while primary, proposes a due signature
// or the next batch of queued submissions. Every proposal goes through one
// function, propose (propose.go). Tests drive the loop's clocks: Config.Ticks
// steps Raft's logical clock (elections, heartbeats, CheckQuorum) one tick
// per value, and Config.Now is the clock of signatures, cycles and fsyncs.
//
// handleReady handles one Raft Ready in numbered steps, each with its crash
// window written: 0 role; 0b the primary sends its appends and heartbeats
// (replication in parallel with its own write); 1 truncate (rollback); 2 write the entries to the
// ledger; 3 start the delayed fsync (the primary's, in another goroutine;
// a follower's runs inline at step 7, having nothing to do meanwhile); 4
// derive (Merkle tree, signature index, execute what this node did not
// sequence); 5 propose a signature still due; 6 sequence submissions while
// the fsync runs (and, on the primary, step the followers' acknowledgements
// as they arrive); 7 wait for the fsync;
// 8 hard state; 9 send the other messages (acknowledgements, votes);
// 10 commit; 11 advance. recover (recover.go) brings
// the derived files and the state back in line with the ledger after a
// clean stop or a crash.
//
// # Failover
//
// Raft runs with CheckQuorum and PreVote (internal/consensus): a primary
// that has not heard from a quorum for an election timeout steps down, and
// a cut-off node cannot disturb the others by raising the term. A minority
// primary may still sequence writes until it steps down; they stay Pending
// (no quorum persists them, so Raft commits nothing and no signature of its
// is committed) and turn Invalid once it hears the new primary's history.
//
// CCF's new primary truncates its log to its last committable index (its
// last signature) when it wins (aft/raft.h, become_leader), then signs, so
// that nothing unsigned from an older view is committed under its
// signature. CCF must: its voters compare only last committable ids, so
// the unsigned tails of two candidates may differ and the winner's is not
// known to be the one a quorum holds. etcd raft cannot express that
// truncation (a leader never removes entries from its own log; its
// election compares every entry, signed or not), and does not need it:
// the Raft leader's log holds every entry a quorum may have committed, and
// followers' conflicting tails are cut by Raft's log matching (step 1,
// CCF's rollback on the follower). What ledgerd does instead:
//
//   - A node that becomes leader signs at once (viewUnsigned, signatureDue):
//     Raft's empty entry of the new view is followed by a signature of the
//     new view over the whole log, ahead of any queued write. Writes commit
//     promptly after a failover, and the new view's commit point is a
//     signature of that view.
//   - Only signatures are committable (invariant 4): entries of an older
//     view that the new primary holds unsigned are committed only by that
//     later signature, which covers them only because its log has them,
//     with the view they were sequenced in (their ids still name it).
//     Entries it does not hold are overwritten on every node that had them
//     (rollback) and read Invalid.
//
// For clients this is CCF's contract: no write reported Committed is ever
// lost (it sits under a signature a quorum persisted, which every later
// leader's log holds), and a Pending write of a dead or cut-off primary
// ends Invalid or, if the new primary's log holds it, Committed (CCF would
// always make it Invalid; Pending promises neither). The status rule stays
// sound: an id (v, s) above a commit point of a later view can never
// commit, since Raft's terms never decrease along a log.
// TestFailoverNewPrimarySigns fails without the immediate signature (the
// old primary's replicated tail then stays Pending) and without
// CheckQuorum (the cut-off primary never steps down).
//
// TestRandomFaults (faults_test.go) runs three and then five members
// through 10,000 randomised steps: messages dropped, delayed and
// reordered, partitions and heals, a slow disk (fsyncs held), power cuts
// (a simulated disk that keeps only what was fsynced) and clean restarts,
// configuration changes (a new node joins as a voter and catches up from
// the log; a member, the primary included, is removed), appends to random
// members;
// after every step, every write seen Committed is Committed with its
// contents wherever committed that far, committed ledger bytes are
// identical on all members, its receipt verifies, no write seen
// Invalid is ever Committed, and a removed node that has applied its
// removal sends no new entry, is not primary and has no later signature
// committed (Raft runs with StepDownOnRemoval: without it a removed
// primary stays primary, etcd raft dropping its proposals while its
// heartbeats hold off an election, and the test fails). A removed
// node applies its removal only if it hears of its commit (etcd raft
// applies a configuration once committed; CCF's at once): one that does
// not is shut down by its operator, as the test does. Its fault schedule is a function of the seed
// (LEDGERD_FAULT_SEED, printed); the nodes' goroutines interleave with it
// as the scheduler decides, so a seed reproduces the faults, not every
// interleaving.
//
// # The read side
//
// Reader (read.go, status.go, receipt.go) is the node's read side, embedded
// in Node: status and the commit point, entries by id, range and latest,
// the state, receipts. It reads the files and the state the loop writes,
// and what the loop publishes (last seqno, commit point, last proposed id);
// it writes nothing itself. A receipt the derived files got wrong has them
// rebuilt by the loop (Node.repairDerived, through Reader.rebuild).
//
// # Invariants
//
//  1. The ledger is the only source of truth. The Merkle tree, the
//     signature index, the commit index in the hard state and the state
//     checkpoint are derived from it, and recovery checks or rebuilds them.
//  2. An entry's bytes name its seqno and view (in its header and its IV),
//     and they equal its Raft index and term (rawFor checks). So proposals
//     are serialised with the seqno propose predicts, and Raft never
//     forwards a proposal (DisableProposalForwarding): it lands at exactly
//     the predicted index on this leader, or is refused.
//  3. A signature at seqno S signs the root of leaves [0, S-1]: the tree's
//     (every persisted entry) followed by the leaves the primary computed
//     when it serialised its proposals not yet persisted (their hints), as
//     CCF's primary signs the history it has executed (proposedRoot). If a
//     conf change, whose bytes are made at persist time, is among those,
//     the signature waits until it is persisted. A batch that makes a
//     signature due is proposed with it, in one Raft proposal, so the
//     followers persist both with one fsync; and a signature is proposed
//     before the primary takes a Ready that carries readySignatureTxs or
//     more of its unsigned transactions (signBeforeReady), so under load
//     each round of the followers' fsyncs ends with a signature. Every node
//     checks every signature it persists against its own tree, the primary
//     included: its root must be the tree's. The ECDSA signature is verified
//     too, except on a signature this node serialised itself in this
//     process (made with its own key a moment before; the followers verify
//     it, and a restarted node verifies what it replays).
//  4. Only signatures are committable: CCF's commit point is the last
//     signature at or below Raft's commit index. A new primary signs its
//     view at once (see Failover).
//  5. Nothing is Committed before a quorum has it on disk: Raft hears that
//     entries are stable (Advance) only after their fsync (step 7 before
//     step 11), a node acknowledges entries (MsgAppResp) only after their
//     fsync (step 9), and term and vote are durable before any message
//     (step 8 before step 9; the primary's early sends of step 0b are
//     skipped when the Ready changes them). The primary's appends go out
//     before its own fsync (Raft thesis 10.2.1), so a quorum may be the
//     followers without it; a node reports Committed only entries it has
//     itself fsynced (step 10 after step 7).
//  6. A write is answered once it is sequenced and executed (Pending), as
//     CCF answers once a transaction is executed locally. Pending promises
//     nothing durable: a write a crash loses before its fsync turns Invalid
//     (the recovered node leads a later view), never Committed with other
//     contents. At most MaxBatch answered writes wait beyond the ledger, and
//     the primary sequences new writes only while its oldest proposal Raft
//     has not committed is younger than CommitWindow (windowOpen): when
//     commit falls behind, writes wait in the queue, not answered, so the
//     time from a write to its commit stays bounded under overload.
//  7. The state's latest version is its committed base plus the write sets
//     of the executed, uncommitted transactions in seqno order. Reads see
//     the latest version. A truncation to t drops the write sets above t;
//     commit folds them into the base; never is anything at or below the
//     commit point rolled back. The checkpoint saves the base only.
//  8. What only committed data may answer (an entry by id, a range, a
//     receipt) reads the ledger at or below the commit point.
package node
