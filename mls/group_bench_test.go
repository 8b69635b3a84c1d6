package mls

import (
	"fmt"
	"runtime"
	"sync"
	"testing"
	"time"
)

// Group benchmarks at members=2,1000,10000,50000. The groups are built from
// the seeded trees of ratchettree_bench_test.go (generated once per size
// and per run, only when a benchmark asks for them): every member's state
// is the generated tree, its own private keys and a key schedule shared by
// all members, as if the group had reached that epoch by commits.

// benchMember returns the state of member l in the benchmark group of e.
func benchMember(b *testing.B, e *benchTreeEntry, l LeafIndex) *Group {
	b.Helper()
	tt := e.g
	cs := tt.cs
	tree := tt.tree.Clone()
	th, err := tree.TreeHash()
	if err != nil {
		b.Fatal(err)
	}
	g := &Group{publicState: publicState{cs: cs, tree: tree}, keys: tt.keysFor(b, tree, l), me: l, sig: tt.sigKey(b, l)}
	ctx := GroupContext{Version: ProtocolVersionMLS10, CipherSuite: cs, GroupID: tt.groupID, Epoch: 7,
		TreeHash: th, ConfirmedTranscriptHash: tt.testSecret("confirmed", 0), Extensions: Extensions{}}
	ctxBytes, err := ctx.Marshal()
	if err != nil {
		b.Fatal(err)
	}
	es, err := cs.AdvanceEpoch(tt.testSecret("init", 0), nil, nil, ctxBytes)
	if err != nil {
		b.Fatal(err)
	}
	tag, err := ConfirmationTag(cs, es.ConfirmationKey, ctx.ConfirmedTranscriptHash)
	if err != nil {
		b.Fatal(err)
	}
	if err := g.installEpoch(ctx, ctxBytes, es, tag); err != nil {
		b.Fatal(err)
	}
	return g
}

// reportMs reports wall time (ms/op) and process CPU time (cpu-ms/op) per
// operation: on the heavily shared benchmark machine the CPU figure is the
// one that does not grow with other processes' load. For work spread over
// k goroutines, wall time on k idle cores is about cpu-ms/op / k.
func reportMs(b *testing.B, d time.Duration, cpu int64) {
	b.ReportMetric(float64(d.Microseconds())/1000/float64(b.N), "ms/op")
	if cpu > 0 {
		b.ReportMetric(float64(cpu)/1e6/float64(b.N), "cpu-ms/op")
	}
}

// BenchmarkCreateCommit: member 0 creates a self-update commit with path.
func BenchmarkCreateCommit(b *testing.B) {
	for _, n := range benchSizes {
		b.Run(fmt.Sprintf("members=%d", n), func(b *testing.B) {
			g := benchMember(b, benchTree(b, n), 0)
			rand := &seedReader{seed: []byte("create")}
			b.ResetTimer()
			start, cpu0 := time.Now(), processCPUTime()
			for range b.N {
				if _, err := g.Commit(rand, &CommitOptions{ForcePath: true}); err != nil {
					b.Fatal(err)
				}
			}
			reportMs(b, time.Since(start), processCPUTime()-cpu0)
		})
	}
}

// BenchmarkProcessCommit: member 0 processes a commit with path from the
// last member (whose path reaches the root, so member 0 decrypts at the
// root's level).
func BenchmarkProcessCommit(b *testing.B) {
	for _, n := range benchSizes {
		b.Run(fmt.Sprintf("members=%d", n), func(b *testing.B) {
			e := benchTree(b, n)
			committer := benchMember(b, e, LeafIndex(n-1))
			base := benchMember(b, e, 0)
			pc, err := committer.Commit(&seedReader{seed: []byte("process")}, &CommitOptions{ForcePath: true})
			if err != nil {
				b.Fatal(err)
			}
			raw, err := pc.Message.Marshal()
			if err != nil {
				b.Fatal(err)
			}
			b.ResetTimer()
			var total time.Duration
			var cpu int64
			for range b.N {
				b.StopTimer()
				r := base.deepCopy()
				m, err := UnmarshalMLSMessage(raw)
				if err != nil {
					b.Fatal(err)
				}
				b.StartTimer()
				start, cpu0 := time.Now(), processCPUTime()
				if _, err := r.ProcessMessage(m, nil); err != nil {
					b.Fatal(err)
				}
				total += time.Since(start)
				cpu += processCPUTime() - cpu0
			}
			reportMs(b, total, cpu)
		})
	}
}

// BenchmarkAddMember: member 0 commits the Add of one new member (no path)
// and produces its Welcome (tree sent out of band).
func BenchmarkAddMember(b *testing.B) {
	for _, n := range benchSizes {
		b.Run(fmt.Sprintf("members=%d", n), func(b *testing.B) {
			e := benchTree(b, n)
			g := benchMember(b, e, 0)
			rand := &seedReader{seed: []byte("add")}
			sk, _, err := g.cs.GenerateSignatureKeyPair(rand)
			if err != nil {
				b.Fatal(err)
			}
			kb, err := NewKeyPackage(rand, g.cs, sk, NewBasicCredential([]byte("newcomer")), nil)
			if err != nil {
				b.Fatal(err)
			}
			b.ResetTimer()
			start, cpu0 := time.Now(), processCPUTime()
			for range b.N {
				pc, err := g.Commit(rand, &CommitOptions{Proposals: []Proposal{&AddProposal{KeyPackage: *kb.KeyPackage}}})
				if err != nil {
					b.Fatal(err)
				}
				if pc.Welcome == nil {
					b.Fatal("no welcome")
				}
			}
			reportMs(b, time.Since(start), processCPUTime()-cpu0)
		})
	}
}

// joinFixture is a Welcome for a new member of the benchmark group of one
// size, with the encoded tree to pass out of band.
type joinFixture struct {
	welcome *Welcome
	kb      *KeyPackageBundle
	tree    []byte
}

var (
	joinFixturesMu sync.Mutex
	joinFixtures   = map[int]*joinFixture{}
)

func benchJoinFixture(b *testing.B, n int) *joinFixture {
	b.Helper()
	joinFixturesMu.Lock()
	defer joinFixturesMu.Unlock()
	if f, ok := joinFixtures[n]; ok {
		return f
	}
	g := benchMember(b, benchTree(b, n), 0)
	rand := &seedReader{seed: []byte("join")}
	sk, _, err := g.cs.GenerateSignatureKeyPair(rand)
	if err != nil {
		b.Fatal(err)
	}
	kb, err := NewKeyPackage(rand, g.cs, sk, NewBasicCredential([]byte("joiner")), nil)
	if err != nil {
		b.Fatal(err)
	}
	pc, err := g.Commit(rand, &CommitOptions{ForcePath: true, Proposals: []Proposal{&AddProposal{KeyPackage: *kb.KeyPackage}}})
	if err != nil {
		b.Fatal(err)
	}
	tree, err := pc.next.tree.Encode()
	if err != nil {
		b.Fatal(err)
	}
	f := &joinFixture{welcome: pc.Welcome, kb: kb, tree: tree}
	joinFixtures[n] = f
	return f
}

func (f *joinFixture) join(b *testing.B) *Group {
	workers := runtime.GOMAXPROCS(0)
	g, err := JoinGroup(f.welcome, f.kb, &JoinOptions{RatchetTree: f.tree,
		ValidateLeaves: func(t *Tree, o *ValidationOptions) error { return validateLeavesParallel(t, o, workers) }})
	if err != nil {
		b.Fatal(err)
	}
	return g
}

// BenchmarkJoinWelcome: a new member joins from a Welcome with the tree
// out of band, including full validation of the tree (leaf signatures
// spread over GOMAXPROCS goroutines by the caller's ValidateLeaves hook).
func BenchmarkJoinWelcome(b *testing.B) {
	for _, n := range benchSizes {
		b.Run(fmt.Sprintf("members=%d", n), func(b *testing.B) {
			f := benchJoinFixture(b, n)
			b.ResetTimer()
			start, cpu0 := time.Now(), processCPUTime()
			for range b.N {
				f.join(b)
			}
			reportMs(b, time.Since(start), processCPUTime()-cpu0)
		})
	}
}

// BenchmarkGroupStateBytes reports the live heap held by one member's
// group state after joining (state-MiB), decoded from the wire tree.
func BenchmarkGroupStateBytes(b *testing.B) {
	for _, n := range benchSizes {
		b.Run(fmt.Sprintf("members=%d", n), func(b *testing.B) {
			f := benchJoinFixture(b, n)
			var held uint64
			b.ResetTimer()
			for range b.N {
				var before, after runtime.MemStats
				runtime.GC()
				runtime.ReadMemStats(&before)
				g := f.join(b)
				runtime.GC()
				runtime.ReadMemStats(&after)
				if after.HeapAlloc > before.HeapAlloc {
					held = after.HeapAlloc - before.HeapAlloc
				}
				runtime.KeepAlive(g)
			}
			b.ReportMetric(float64(held)/(1<<20), "state-MiB")
		})
	}
}
