package mls

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"testing"
)

var secretTreeTestSuite = MLS128DHKEMX25519AES128GCMSHA256Ed25519

func newTestSecretTree(t testing.TB, nLeaves uint32, limits SecretTreeLimits) *SecretTree {
	t.Helper()
	st, err := NewSecretTreeWithLimits(secretTreeTestSuite, bytes.Repeat([]byte{0x42}, 32), nLeaves, limits)
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// refRatchetKey derives generation gen of a leaf's ratchet from scratch, the
// slow way, straight from RFC 9420 Section 9, as an oracle.
func refRatchetKey(t *testing.T, nLeaves uint32, leaf LeafIndex, rt RatchetType, gen uint32) (key, nonce []byte) {
	t.Helper()
	cs := secretTreeTestSuite
	secret := bytes.Repeat([]byte{0x42}, 32)
	// The ratchet tree, and so the secret tree, is full: round up.
	for nLeaves&(nLeaves-1) != 0 {
		nLeaves++
	}
	x := leaf.NodeIndex()
	dp, _ := DirectPath(x, nLeaves)
	// Walk down from the root: path top-down is reverse(dp) then x.
	down := append([]NodeIndex(nil), dp...)
	for i, j := 0, len(down)-1; i < j; i, j = i+1, j-1 {
		down[i], down[j] = down[j], down[i]
	}
	down = append(down, x)
	for i := 0; i+1 < len(down); i++ {
		dir := "right"
		if down[i+1] < down[i] {
			dir = "left"
		}
		secret, _ = cs.ExpandWithLabel(secret, "tree", []byte(dir), 32)
	}
	label := "handshake"
	if rt == RatchetApplication {
		label = "application"
	}
	secret, _ = cs.ExpandWithLabel(secret, label, nil, 32)
	for g := uint32(0); g < gen; g++ {
		secret, _ = cs.DeriveTreeSecret(secret, "secret", g, 32)
	}
	key, _ = cs.DeriveTreeSecret(secret, "key", gen, cs.Nk())
	nonce, _ = cs.DeriveTreeSecret(secret, "nonce", gen, cs.Nn())
	return key, nonce
}

func TestSecretTreeMatchesOracle(t *testing.T) {
	t.Parallel()
	for _, n := range []uint32{1, 2, 3, 5, 8, 13} {
		sender := newTestSecretTree(t, n, SecretTreeLimits{})
		receiver := newTestSecretTree(t, n, SecretTreeLimits{})
		// Visit leaves in a scattered order so that lazily stored
		// siblings are used from every direction.
		full := sender.NumLeaves()
		for i := uint32(0); i < full; i++ {
			leaf := LeafIndex((i * 7) % full)
			for _, rt := range []RatchetType{RatchetApplication, RatchetHandshake} {
				for g := uint32(0); g < 3; g++ {
					wantKey, wantNonce := refRatchetKey(t, n, leaf, rt, g)
					gen, key, nonce, err := sender.Next(leaf, rt)
					if err != nil || gen != g || !bytes.Equal(key, wantKey) || !bytes.Equal(nonce, wantNonce) {
						t.Fatalf("n=%d leaf %d %v: Next = %d %x %x, %v; want %d %x %x", n, leaf, rt, gen, key, nonce, err, g, wantKey, wantNonce)
					}
					key, nonce, err = receiver.Get(leaf, rt, g)
					if err != nil || !bytes.Equal(key, wantKey) || !bytes.Equal(nonce, wantNonce) {
						t.Fatalf("n=%d leaf %d %v gen %d: Get = %x %x, %v", n, leaf, rt, g, key, nonce, err)
					}
				}
			}
		}
		// Every leaf derived: nothing of the tree itself is left.
		if len(sender.nodes) != 0 || len(receiver.nodes) != 0 {
			t.Errorf("n=%d: %d/%d node secrets left after deriving every leaf", n, len(sender.nodes), len(receiver.nodes))
		}
	}
}

func TestSecretTreeLazyDerivationIsLogarithmic(t *testing.T) {
	t.Parallel()
	st := newTestSecretTree(t, 50000, SecretTreeLimits{})
	if _, _, _, err := st.Next(31337, RatchetApplication); err != nil {
		t.Fatal(err)
	}
	// Deriving one leaf leaves one stored sibling per level: at most the
	// depth of the tree (16 for 50,000 leaves), never O(n).
	if len(st.nodes) > 16 {
		t.Errorf("%d node secrets stored after one leaf", len(st.nodes))
	}
	if _, _, _, err := st.Next(31336, RatchetApplication); err != nil {
		t.Fatal(err)
	}
	if len(st.leaves) != 2 || len(st.nodes) > 16 {
		t.Errorf("after two leaves: %d leaves, %d nodes", len(st.leaves), len(st.nodes))
	}
}

func TestSecretTreeOutOfOrder(t *testing.T) {
	t.Parallel()
	st := newTestSecretTree(t, 4, SecretTreeLimits{OutOfOrderTolerance: 4, MaxForwardDistance: 10})
	const leaf, rt = LeafIndex(2), RatchetApplication
	get := func(g uint32) error { _, _, err := st.Get(leaf, rt, g); return err }

	steps := []struct {
		name string
		gen  uint32
		want error
	}{
		{"jump ahead to 5", 5, nil},
		{"skipped 3 within window", 3, nil},
		{"replay of 5", 5, ErrGenerationConsumed},
		{"replay of 3", 3, ErrGenerationConsumed},
		{"skipped 2 within window", 2, nil},
		{"1 is outside the window of 4 behind head 6", 1, ErrGenerationTooOld},
		{"0 too old", 0, ErrGenerationTooOld},
		{"more than 10 ahead of head 6", 17, ErrGenerationTooFarAhead},
		{"exactly 10 ahead of head 6", 16, nil},
		{"4 fell out of the window", 4, ErrGenerationTooOld},
		{"13 still kept", 13, nil},
		{"12 fell out of the window", 12, ErrGenerationTooOld},
		{"next in order", 17, nil},
	}
	for _, s := range steps {
		err := get(s.gen)
		if s.want == nil && err != nil || s.want != nil && !errors.Is(err, s.want) {
			t.Fatalf("%s: Get(%d) err = %v, want %v", s.name, s.gen, err, s.want)
		}
		var ste *SecretTreeError
		if err != nil && (!errors.As(err, &ste) || ste.Leaf != leaf || ste.Generation != s.gen || ste.Ratchet != rt) {
			t.Errorf("%s: error %v is not a SecretTreeError for this leaf and generation", s.name, err)
		}
		r := &st.leaves[leaf].application
		if uint32(len(r.skipped)) > st.limits.OutOfOrderTolerance {
			t.Fatalf("%s: %d skipped keys kept, tolerance %d", s.name, len(r.skipped), st.limits.OutOfOrderTolerance)
		}
	}
	// The other ratchet of the leaf is independent.
	if _, _, err := st.Get(leaf, RatchetHandshake, 0); err != nil {
		t.Errorf("handshake ratchet: %v", err)
	}
}

func TestSecretTreeRejects(t *testing.T) {
	t.Parallel()
	st := newTestSecretTree(t, 5, SecretTreeLimits{})
	tests := []struct {
		name string
		f    func() error
		want error
	}{
		{"leaf out of range", func() error { _, _, err := st.Get(8, RatchetApplication, 0); return err }, ErrLeafOutOfRange},
		{"huge leaf", func() error { _, _, _, err := st.Next(math.MaxUint32, RatchetHandshake); return err }, ErrLeafOutOfRange},
		{"ratchet type 0", func() error { _, _, err := st.Get(0, 0, 0); return err }, ErrBadRatchetType},
		{"ratchet type 3", func() error { _, _, _, err := st.Next(0, 3); return err }, ErrBadRatchetType},
		{"max generation", func() error { _, _, err := st.Get(1, RatchetApplication, math.MaxUint32); return err }, ErrGenerationTooFarAhead},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.f(); !errors.Is(err, tt.want) {
				t.Errorf("err = %v, want %v", err, tt.want)
			}
		})
	}
	for _, bad := range [][]byte{nil, make([]byte, 31), make([]byte, 64)} {
		if _, err := NewSecretTree(secretTreeTestSuite, bad, 4); err == nil {
			t.Errorf("encryption secret of %d bytes accepted", len(bad))
		}
	}
	for _, n := range []uint32{0, MaxLeaves + 1, math.MaxUint32} {
		if _, err := NewSecretTree(secretTreeTestSuite, make([]byte, 32), n); !errors.Is(err, ErrTreeIndexOutOfRange) {
			t.Errorf("%d leaves: err = %v", n, err)
		}
	}
	for n, want := range map[uint32]uint32{1: 1, 2: 2, 3: 4, 5: 8, 8: 8, 50000: 65536, MaxLeaves: MaxLeaves, 1<<30 + 1: MaxLeaves} {
		st, err := NewSecretTree(secretTreeTestSuite, make([]byte, 32), n)
		if err != nil || st.NumLeaves() != want {
			t.Errorf("NewSecretTree(%d leaves).NumLeaves() = %v, %v; want %d", n, st, err, want)
		}
	}
}

func TestSecretTreeExhaustion(t *testing.T) {
	t.Parallel()
	st := newTestSecretTree(t, 2, SecretTreeLimits{})
	if _, _, _, err := st.Next(0, RatchetApplication); err != nil {
		t.Fatal(err)
	}
	// Jump the ratchet to its last generation (white box: 2^32 steps are
	// not practical in a test).
	st.leaves[0].application.head = math.MaxUint32 - 1
	if gen, _, _, err := st.Next(0, RatchetApplication); err != nil || gen != math.MaxUint32-1 {
		t.Fatalf("Next = %d, %v", gen, err)
	}
	if _, _, _, err := st.Next(0, RatchetApplication); !errors.Is(err, ErrRatchetExhausted) {
		t.Fatalf("Next at 2^32-1: err = %v, want ErrRatchetExhausted", err)
	}
	if _, _, err := st.Get(0, RatchetApplication, math.MaxUint32); !errors.Is(err, ErrRatchetExhausted) {
		t.Fatalf("Get(2^32-1): err = %v, want ErrRatchetExhausted", err)
	}
}

func TestSecretTreeKeyErasure(t *testing.T) {
	t.Parallel()
	st := newTestSecretTree(t, 2, SecretTreeLimits{})
	wantKey, _ := refRatchetKey(t, 2, 1, RatchetApplication, 3)

	// A failed use keeps the key (a forged message cannot burn it) ...
	var seen []byte
	errForged := errors.New("forged")
	err := st.WithKey(1, RatchetApplication, 3, func(key, nonce []byte) error {
		seen = bytes.Clone(key)
		return errForged
	})
	if !errors.Is(err, errForged) {
		t.Fatalf("WithKey err = %v", err)
	}
	if !bytes.Equal(seen, wantKey) {
		t.Fatalf("key %x, want %x", seen, wantKey)
	}
	// ... a successful one erases it, in memory too ...
	err = st.WithKey(1, RatchetApplication, 3, func(key, nonce []byte) error {
		seen = key
		if !bytes.Equal(key, wantKey) {
			return fmt.Errorf("key %x, want %x", key, wantKey)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(seen, make([]byte, len(seen))) {
		t.Errorf("key not zeroed after use: %x", seen)
	}
	// ... so a replay fails.
	if err := st.WithKey(1, RatchetApplication, 3, func(_, _ []byte) error { return nil }); !errors.Is(err, ErrGenerationConsumed) {
		t.Errorf("replay: err = %v, want ErrGenerationConsumed", err)
	}
	// The skipped generations 0..2 are still available, once each.
	for g := uint32(0); g < 3; g++ {
		if _, _, err := st.Get(1, RatchetApplication, g); err != nil {
			t.Errorf("Get(%d): %v", g, err)
		}
		if _, _, err := st.Get(1, RatchetApplication, g); !errors.Is(err, ErrGenerationConsumed) {
			t.Errorf("second Get(%d): err = %v", g, err)
		}
	}
	r := &st.leaves[1].application
	if len(r.skipped) != 0 || r.head != 4 {
		t.Errorf("ratchet keeps %d keys, head %d", len(r.skipped), r.head)
	}
	// The sender side never hands out a generation twice.
	g1, k1, _, _ := st.Next(0, RatchetHandshake)
	g2, k2, _, _ := st.Next(0, RatchetHandshake)
	if g1 != 0 || g2 != 1 || bytes.Equal(k1, k2) {
		t.Errorf("Next gave generations %d, %d", g1, g2)
	}
}

func TestSecretTreeErase(t *testing.T) {
	t.Parallel()
	st := newTestSecretTree(t, 8, SecretTreeLimits{})
	if _, _, err := st.Get(3, RatchetApplication, 5); err != nil { // keeps 0..4
		t.Fatal(err)
	}
	kept := st.leaves[3].application.skipped[2].key
	sibling := st.nodes[11] // the right half's secret, kept off leaf 3's path
	if len(kept) == 0 || len(sibling) == 0 {
		t.Fatal("expected a skipped key and a stored sibling")
	}
	st.Erase()
	if !bytes.Equal(kept, make([]byte, len(kept))) || !bytes.Equal(sibling, make([]byte, len(sibling))) {
		t.Error("secrets not zeroed")
	}
	if _, _, err := st.Get(3, RatchetApplication, 2); err == nil {
		t.Error("erased skipped key still served")
	}
	if _, _, _, err := st.Next(3, RatchetHandshake); !errors.Is(err, ErrRatchetExhausted) {
		t.Errorf("Next on erased ratchet: %v", err)
	}
	if _, _, err := st.Get(0, RatchetApplication, 0); err == nil {
		t.Error("erased tree derived a new leaf")
	}
}

func TestSenderDataKeyNonceSample(t *testing.T) {
	t.Parallel()
	cs := secretTreeTestSuite
	secret := make([]byte, 32)
	long := bytes.Repeat([]byte{7}, 100)
	k1, n1, _ := cs.SenderDataKeyNonce(secret, long)
	k2, n2, _ := cs.SenderDataKeyNonce(secret, long[:32])
	if !bytes.Equal(k1, k2) || !bytes.Equal(n1, n2) {
		t.Error("sample is not the first Nh bytes")
	}
	k3, _, err := cs.SenderDataKeyNonce(secret, long[:5])
	if err != nil || bytes.Equal(k3, k1) || len(k3) != cs.Nk() {
		t.Errorf("short ciphertext: %x, %v", k3, err)
	}
}

// BenchmarkSecretTreeGeneration measures the cost of deriving the next
// application key and nonce for one leaf, in a 2-member and a 50,000-member
// group: with lazy derivation the two must be the same.
func BenchmarkSecretTreeGeneration(b *testing.B) {
	for _, members := range []uint32{2, 50000} {
		b.Run(fmt.Sprintf("members=%d", members), func(b *testing.B) {
			st := newTestSecretTree(b, members, SecretTreeLimits{})
			leaf := LeafIndex(members - 1)
			b.ReportAllocs()
			cpu0 := processCPUTime()
			defer func() { reportCPUMicros(b, cpu0) }()
			for b.Loop() {
				if _, _, _, err := st.Next(leaf, RatchetApplication); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkSecretTreeFirstUse measures a leaf's first key in a fresh tree,
// which includes the O(log n) walk down from the root.
func BenchmarkSecretTreeFirstUse(b *testing.B) {
	for _, members := range []uint32{2, 50000} {
		b.Run(fmt.Sprintf("members=%d", members), func(b *testing.B) {
			secret := bytes.Repeat([]byte{0x42}, 32)
			b.ReportAllocs()
			for b.Loop() {
				st, err := NewSecretTree(secretTreeTestSuite, secret, members)
				if err != nil {
					b.Fatal(err)
				}
				if _, _, err := st.Get(LeafIndex(members-1), RatchetApplication, 0); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
