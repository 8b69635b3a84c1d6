package mls

import (
	"bytes"
	"errors"
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
		for len(ops) >= 3 {
			leaf := LeafIndex(ops[0] % (nLeaves + 1)) // one out of range
			rt := RatchetType(ops[1]%3 + 1)           // 3 is invalid
			s := slot{leaf, rt}
			// Generations relative to the highest seen, so the window is
			// exercised on both sides.
			gen := heads[s] + uint32(ops[2]) - 20
			if uint32(ops[2]) < 20 && heads[s] < 20-uint32(ops[2]) {
				gen = uint32(ops[2])
			}
			ops = ops[3:]
			key, nonce, err := st.Get(leaf, rt, gen)
			if err != nil {
				var ste *SecretTreeError
				if !errors.As(err, &ste) {
					t.Fatalf("Get(%d, %v, %d): untyped error %v", leaf, rt, gen, err)
				}
				continue
			}
			if leaf >= nLeaves || (rt != RatchetHandshake && rt != RatchetApplication) {
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
