package node_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/rhizome-chat/rhizome/node/nodetest"
)

// TestOrderClusterOnMocknet runs the order cluster with the nodes' libp2p
// hosts on an in-process mocknet: the setup commit and one more are
// certified on all three.
func TestOrderClusterOnMocknet(t *testing.T) {
	cl := newOrderClusterOn(t, nodetest.NewNet(t))
	resp := nodetest.Must(t, 201)(cl.commit(t, 1, cl.create, "mimi://b.test/u/mock"))
	if got := cl.waitSameOrder(t, 15*time.Second, 1, 0, 1, 2); got.Tip != nodetest.Str(resp["event"]) {
		t.Fatalf("chain %+v", got)
	}
}

// BenchmarkCommitVote measures the commit-and-vote path of three servers
// on a mocknet: each iteration, a user of the next server commits (a real
// MLS commit with a path) on the canonical tip, and the iteration ends
// when all three servers report it certified. It reports commits certified
// per second and votes per fsync (the mean of the votes stored together by
// one PutAll, rhizome_votes_per_put, over the three servers).
func BenchmarkCommitVote(b *testing.B) {
	cl := newOrderClusterOn(b, nodetest.NewNet(b))
	tip := cl.create
	b.ResetTimer()
	for i := range b.N {
		k := i % 3
		status, body := cl.commit(b, k, tip, fmt.Sprintf("mimi://%s/u/u%d", cl.names[k], i))
		if status != 201 {
			b.Fatalf("commit %d: %d %v", i, status, body)
		}
		tip = nodetest.Str(body["event"])
		deadline := time.Now().Add(10 * time.Second)
		for {
			done := true
			for j := range cl.nodes {
				if cl.order(b, j).Certified != tip {
					done = false
					break
				}
			}
			if done {
				break
			}
			if time.Now().After(deadline) {
				b.Fatalf("commit %d not certified on all servers within 10s", i)
			}
			time.Sleep(time.Millisecond)
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "commits/s")
	var sum float64
	var count uint64
	for _, n := range cl.nodes {
		m, c := histogramMean(b, n, "rhizome_votes_per_put")
		sum += m * float64(c)
		count += c
	}
	if count > 0 {
		b.ReportMetric(sum/float64(count), "votes/fsync")
	}
}
