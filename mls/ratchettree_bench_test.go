package mls

import (
	"fmt"
	"runtime"
	"sync"
	"testing"
)

// Benchmark trees are generated once per size and per test binary run (a
// 50,000-member tree takes a few seconds of key derivations and
// signatures), and only when a benchmark asks for them, so plain `go test`
// never builds them.
var (
	benchTreesMu sync.Mutex
	benchTrees   = map[int]*benchTreeEntry{}
)

type benchTreeEntry struct {
	once      sync.Once
	g         *testTree
	heapBytes uint64 // live heap held by the tree after generation
}

var benchSizes = []int{2, 1000, 10000, 50000}

func benchTree(b *testing.B, members int) *benchTreeEntry {
	b.Helper()
	benchTreesMu.Lock()
	e, ok := benchTrees[members]
	if !ok {
		e = &benchTreeEntry{}
		benchTrees[members] = e
	}
	benchTreesMu.Unlock()
	e.once.Do(func() {
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		e.g = newTestTree(b, MLS128DHKEMX25519AES128GCMSHA256Ed25519, members, "bench")
		if _, err := e.g.tree.TreeHash(); err != nil {
			b.Fatal(err)
		}
		runtime.GC()
		runtime.ReadMemStats(&after)
		if after.HeapAlloc > before.HeapAlloc {
			e.heapBytes = after.HeapAlloc - before.HeapAlloc
		}
	})
	if e.g == nil {
		b.Fatal("benchmark tree generation failed earlier")
	}
	return e
}

// BenchmarkTreeHashUpdate measures a member's leaf being replaced (an Update:
// the leaf changes and its direct path is blanked) followed by the tree hash
// of the root, on a clone of a fully populated tree. The cached hashes make
// this O(log n): rehashed-nodes/op is the number of hashes recomputed.
// heap-MiB is the live heap of the generated tree (a memory figure for the
// group state).
func BenchmarkTreeHashUpdate(b *testing.B) {
	for _, n := range benchSizes {
		b.Run(fmt.Sprintf("members=%d", n), func(b *testing.B) {
			e := benchTree(b, n)
			base := e.g.tree
			leaves := make([]*LeafNode, 2)
			for i := range leaves {
				ln, _ := base.Leaf(0)
				ln.raw = nil
				ln.Source = LeafNodeSourceUpdate
				ln.Extensions = Extensions{{ExtensionType: ExtensionTypeApplicationID, ExtensionData: []byte{byte(i)}}}
				if err := ln.Sign(base.cs, e.g.sigKey(b, 0), e.g.groupID, 0); err != nil {
					b.Fatal(err)
				}
				leaves[i] = ln
			}
			tree := base.Clone()
			probe := tree.Clone()
			if err := probe.UpdateLeaf(LeafIndex(n/2), leaves[0]); err != nil {
				b.Fatal(err)
			}
			rehashed := countInvalidHashes(probe)
			b.ReportAllocs()
			b.ResetTimer()
			cpu0 := processCPUTime()
			for i := 0; b.Loop(); i++ {
				l := LeafIndex((i * 7919) % n)
				if err := tree.UpdateLeaf(l, leaves[i%2]); err != nil {
					b.Fatal(err)
				}
				if _, err := tree.TreeHash(); err != nil {
					b.Fatal(err)
				}
			}
			reportCPU(b, cpu0)
			b.ReportMetric(float64(rehashed), "rehashed-nodes/op")
			b.ReportMetric(float64(e.heapBytes)/(1<<20), "heap-MiB")
		})
	}
}

// countInvalidHashes counts the nodes whose cached tree hash is invalid.
func countInvalidHashes(t *Tree) int {
	n := 0
	for x := range NodeWidth(t.nLeaves) {
		if c, o := t.chunkR(NodeIndex(x)); !c.hashValid(o) {
			n++
		}
	}
	return n
}

// BenchmarkUpdatePath measures TreeKEM on a fully populated tree (one
// ciphertext per level): "create" is a committer's CreateUpdatePath on a
// clone of the tree, "process" a receiver's ProcessUpdatePath on a clone,
// for the receiver that derives the most path secrets (the committer's
// sibling). Clone cost is included: a group state machine applies each
// commit to a clone of the epoch's tree.
func BenchmarkUpdatePath(b *testing.B) {
	for _, op := range []string{"create", "process"} {
		for _, n := range benchSizes {
			b.Run(fmt.Sprintf("%s/members=%d", op, n), func(b *testing.B) {
				e := benchTree(b, n)
				g := e.g
				sender := LeafIndex(n / 2 &^ 1)
				receiver := sender ^ 1
				tmpl, _ := g.tree.Leaf(sender)
				ctx := GroupContext{Version: ProtocolVersionMLS10, CipherSuite: g.cs, GroupID: g.groupID, Epoch: 1,
					ConfirmedTranscriptHash: make([]byte, 32), Extensions: Extensions{}}
				params := &UpdatePathParams{Leaf: *tmpl, SigningKey: g.sigKey(b, sender), GroupContext: ctx}
				rand := &seedReader{seed: []byte("bench")}
				first, err := g.tree.Clone().CreateUpdatePath(sender, params, rand)
				if err != nil {
					b.Fatal(err)
				}
				cts := 0
				for _, n := range first.Path.Nodes {
					cts += len(n.EncryptedPathSecret)
				}
				enc, _ := first.Path.Marshal()
				keys := g.keysFor(b, g.tree, receiver)
				b.ReportAllocs()
				b.ResetTimer()
				cpu0 := processCPUTime()
				for b.Loop() {
					tree := g.tree.Clone()
					if op == "create" {
						if _, err := tree.CreateUpdatePath(sender, params, rand); err != nil {
							b.Fatal(err)
						}
						continue
					}
					pp, err := tree.ProcessUpdatePath(sender, first.Path, keys, ctx, nil)
					if err != nil {
						b.Fatal(err)
					}
					if string(pp.CommitSecret) != string(first.CommitSecret) {
						b.Fatal("commit secrets differ")
					}
				}
				reportCPU(b, cpu0)
				b.ReportMetric(float64(cts), "ciphertexts")
				b.ReportMetric(float64(len(enc)), "path-bytes")
			})
		}
	}
}

// reportCPU reports the process CPU time per iteration since cpu0, a figure
// that, unlike ns/op, does not grow with the load of a shared machine.
func reportCPU(b *testing.B, cpu0 int64) {
	if cpu0 == 0 || b.N == 0 {
		return
	}
	b.ReportMetric(float64(processCPUTime()-cpu0)/float64(b.N)/1e3, "cpu-us/op")
}

// BenchmarkTreeValidate measures what a joiner does with a received tree:
// decode it and validate it fully (tree hash, parent hashes, unmerged
// leaves, unique keys, and every leaf's signature and capabilities). With
// workers=2 the per-leaf checks are split over two goroutines, as a caller
// may do with [Tree.ValidateLeaves]; the package itself starts none.
func BenchmarkTreeValidate(b *testing.B) {
	for _, n := range benchSizes {
		for _, workers := range []int{1, 2} {
			b.Run(fmt.Sprintf("members=%d/workers=%d", n, workers), func(b *testing.B) {
				e := benchTree(b, n)
				enc, err := e.g.tree.Encode()
				if err != nil {
					b.Fatal(err)
				}
				th, _ := e.g.tree.TreeHash()
				opts := &ValidationOptions{GroupID: e.g.groupID, TreeHash: th}
				b.ReportAllocs()
				b.ResetTimer()
				cpu0 := processCPUTime()
				for b.Loop() {
					tree, err := DecodeTree(e.g.cs, enc)
					if err != nil {
						b.Fatal(err)
					}
					if err := tree.ValidateStructure(opts); err != nil {
						b.Fatal(err)
					}
					if err := validateLeavesParallel(tree, opts, workers); err != nil {
						b.Fatal(err)
					}
				}
				reportCPU(b, cpu0)
				b.ReportMetric(float64(len(enc))/(1<<20), "tree-MiB")
			})
		}
	}
}

// validateLeavesParallel splits ValidateLeaves over workers goroutines.
func validateLeavesParallel(tree *Tree, opts *ValidationOptions, workers int) error {
	n := tree.LeafCount()
	errs := make([]error, workers)
	var wg sync.WaitGroup
	for w := range workers {
		lo, hi := LeafIndex(uint32(w)*n/uint32(workers)), LeafIndex(uint32(w+1)*n/uint32(workers))
		wg.Go(func() { errs[w] = tree.ValidateLeaves(lo, hi, opts) })
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

// BenchmarkTreeClone measures a snapshot of the tree followed by a first
// write to the clone (an Update: one leaf and its direct path), which is
// when copy-on-write copies the touched chunks.
func BenchmarkTreeClone(b *testing.B) {
	for _, n := range benchSizes {
		b.Run(fmt.Sprintf("members=%d", n), func(b *testing.B) {
			e := benchTree(b, n)
			ln, _ := e.g.tree.Leaf(0)
			b.ReportAllocs()
			b.ResetTimer()
			cpu0 := processCPUTime()
			for i := 0; b.Loop(); i++ {
				c := e.g.tree.Clone()
				if err := c.UpdateLeaf(LeafIndex(i%n), ln); err != nil {
					b.Fatal(err)
				}
			}
			reportCPU(b, cpu0)
		})
	}
}
