package api_test

import (
	"encoding/json"
	"sort"
	"syscall"
	"testing"
	"time"

	"github.com/ledgerd/ledgerd/internal/tables"
)

// BenchmarkGovProposalAccepted is issue 10's governance speed target: a
// proposal with one action (set_user of a fresh user), created and voted yes
// by the one member of the consortium and applied, over real HTTPS with
// signed requests. Each iteration is what a member does: sign and POST
// proposals:create, then sign and POST the yes ballot; the second answer
// comes once the proposal is Accepted, applied and committed (governance
// writes are answered once committed). It reports the p50, p99 and max of
// an iteration (target: p99 ≤ 20 ms) and the CPU time of the whole process
// (client and server) per iteration, which depends less on what else runs
// on the machine.
func BenchmarkGovProposalAccepted(b *testing.B) {
	e := newEnv(b, envOptions{})
	key, kid := e.members[0].memberKey()
	ballot, _ := json.Marshal(map[string]string{"ballot": yesBallot})
	// Warm the connection and the constitution.
	warm := e.proposeOK(0, setUserProposal(newCredential(b, "warm"), "Reader"))
	e.voteOK(0, warm.ProposalID, yesBallot)
	users := make([]credential, b.N)
	for i := range users {
		users[i] = newCredential(b, "user")
	}

	lat := make([]time.Duration, 0, b.N)
	cpu0 := cpuTime(b)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		start := time.Now()
		var p govProposal
		e.govPost("/gov/members/proposals:create",
			govMsg{key: key, kid: kid, msgType: "proposal", payload: []byte(setUserProposal(users[i], "Contributor"))}.sign(b)).
			expect(200, "").decode(&p)
		e.govPost("/gov/members/proposals/"+p.ProposalID+"/ballots/"+kid+":submit",
			govMsg{key: key, kid: kid, msgType: "ballot", proposalID: p.ProposalID, payload: ballot}.sign(b)).
			expect(200, "").decode(&p)
		lat = append(lat, time.Since(start))
		if p.ProposalState != "Accepted" {
			b.Fatalf("after the vote: %+v", p)
		}
	}
	b.StopTimer()
	cpu := cpuTime(b) - cpu0
	// Applied and committed: the last user is in the committed state.
	if _, ok := e.node.State().GetCommitted(tables.UsersMap, []byte(users[b.N-1].userID())); !ok {
		b.Fatal("the last proposal's user is not in the committed state")
	}
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
	b.ReportMetric(ms(lat[len(lat)/2]), "p50-ms")
	b.ReportMetric(ms(lat[min(len(lat)-1, len(lat)*99/100)]), "p99-ms")
	b.ReportMetric(ms(lat[len(lat)-1]), "max-ms")
	b.ReportMetric(ms(cpu)/float64(b.N), "cpu-ms/op")
}

// cpuTime is the process's CPU time so far (user and system).
func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
