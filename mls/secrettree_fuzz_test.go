package mls

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"testing"
)

// FuzzSecretTree drives a receiving secret tree with an arbitrary sequence
// of (leaf, ratchet, generation) requests, as hostile or reordered sender
// data would, and checks it against a sending tree used as the oracle: every
// key handed out is the right one, no generation is handed out twice, the
// out-of-order window stays bounded, and every refusal is a typed error.
func FuzzSecretTree(f *testing.F) {
	f.Add([]byte{0, 0, 5, 1, 0, 3, 0, 0, 5, 2, 1, 0})
	f.Add([]byte{3, 1, 200, 3, 1, 10, 3, 1, 201, 3, 1, 9})
	f.Add([]byte{255, 2, 0, 0, 1, 255, 0, 1, 254})
	f.Add([]byte{1, 0x81, 30, 1, 1, 30, 1, 0x81, 25, 1, 1, 25}) // forged, then genuine
	f.Fuzz(func(t *testing.T, ops []byte) {
		const nLeaves = 5
		limits := SecretTreeLimits{OutOfOrderTolerance: 8, MaxForwardDistance: 300}
		st := newTestSecretTree(t, nLeaves, limits)
		oracle := newTestSecretTree(t, nLeaves, SecretTreeLimits{})
		type slot struct {
			leaf LeafIndex
			rt   RatchetType
		}
		sent := map[slot][][2][]byte{} // oracle keys by generation
		used := map[slot]map[uint32]bool{}
		heads := map[slot]uint32{}
		// The tree has the ratchet tree's power-of-two shape (8 leaves for
		// 5 members); leaf 8 is the one out of range.
		width := st.NumLeaves()
		for len(ops) >= 3 {
			leaf := LeafIndex(uint32(ops[0]) % (width + 1))
			rt := RatchetType(ops[1]%3 + 1) // 3 is invalid
			s := slot{leaf, rt}
			// Generations relative to the highest seen, so the window is
			// exercised on both sides.
			gen := heads[s] + uint32(ops[2]) - 20
			if uint32(ops[2]) < 20 && heads[s] < 20-uint32(ops[2]) {
				gen = uint32(ops[2])
			}
			forgedFirst := ops[1]&0x80 != 0
			ops = ops[3:]
			if forgedFirst {
				// A message that fails its checks (use returns an error)
				// must leave the ratchet exactly as it was.
				before := ratchetState(st, leaf, rt)
				err := st.WithKey(leaf, rt, gen, func(_, _ []byte) error { return errFuzzForged })
				var ste *SecretTreeError
				if !errors.Is(err, errFuzzForged) && !errors.As(err, &ste) {
					t.Fatalf("WithKey(%d, %v, %d): untyped error %v", leaf, rt, gen, err)
				}
				if after := ratchetState(st, leaf, rt); before != "" && after != before {
					t.Fatalf("rejected use of generation %d changed the ratchet:\n%s\n%s", gen, before, after)
				}
			}
			key, nonce, err := st.Get(leaf, rt, gen)
			if err != nil {
				var ste *SecretTreeError
				if !errors.As(err, &ste) {
					t.Fatalf("Get(%d, %v, %d): untyped error %v", leaf, rt, gen, err)
				}
				continue
			}
			if uint32(leaf) >= width || (rt != RatchetHandshake && rt != RatchetApplication) {
				t.Fatalf("Get(%d, %v, %d) succeeded", leaf, rt, gen)
			}
			if used[s] == nil {
				used[s] = map[uint32]bool{}
			}
			if used[s][gen] {
				t.Fatalf("generation %d of %v handed out twice", gen, s)
			}
			used[s][gen] = true
			if gen >= heads[s] {
				heads[s] = gen + 1
			}
			for uint32(len(sent[s])) <= gen {
				_, k, n, err := oracle.Next(leaf, rt)
				if err != nil {
					t.Fatal(err)
				}
				sent[s] = append(sent[s], [2][]byte{k, n})
			}
			if !bytes.Equal(key, sent[s][gen][0]) || !bytes.Equal(nonce, sent[s][gen][1]) {
				t.Fatalf("Get(%d, %v, %d) returned the wrong key", leaf, rt, gen)
			}
			r := st.leaves[leaf].ratchet(rt)
			if uint32(len(r.skipped)) > limits.OutOfOrderTolerance {
				t.Fatalf("%d skipped keys kept", len(r.skipped))
			}
		}
	})
}

var errFuzzForged = errors.New("forged")

// ratchetState renders a derived ratchet (head, secret and the sorted
// skipped keys); "" if the leaf's ratchets are not derived yet.
func ratchetState(st *SecretTree, leaf LeafIndex, rt RatchetType) string {
	lr, ok := st.leaves[leaf]
	if !ok {
		return ""
	}
	r := lr.ratchet(rt)
	if r == nil {
		return ""
	}
	gens := make([]uint32, 0, len(r.skipped))
	for g := range r.skipped {
		gens = append(gens, g)
	}
	slices.Sort(gens)
	out := fmt.Sprintf("head %d secret %x", r.head, r.secret)
	for _, g := range gens {
		out += fmt.Sprintf(" %d:%x/%x", g, r.skipped[g].key, r.skipped[g].nonce)
	}
	return out
}
