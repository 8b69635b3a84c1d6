package mls

import (
	"errors"
	"fmt"
	"math"
	"math/bits"
)

// The secret tree (RFC 9420, Section 9) is derived lazily: a SecretTree
// starts with only the root secret (the epoch's encryption_secret) and, when
// a leaf is first used, derives the secrets on the path from the lowest
// stored ancestor down to that leaf. Each step replaces a node's secret by
// its two children's (keeping the sibling off the path, deleting the parent),
// so a leaf's first use costs O(log n) derivations, later messages O(1), and
// nothing depends on the total number of leaves: a 2-member and a
// 50,000-member group cost the same per message.
//
//	         encryption_secret (root)
//	          /                \
//	 ExpandWithLabel(.,"tree","left")   ExpandWithLabel(.,"tree","right")
//	        ...                       ...
//	    leaf_secret
//	      |-- ExpandWithLabel(., "handshake", "", Nh)   -> handshake ratchet
//	      `-- ExpandWithLabel(., "application", "", Nh) -> application ratchet
//
// Each ratchet step j yields key_j = DeriveTreeSecret(secret_j, "key", j, Nk),
// nonce_j = DeriveTreeSecret(secret_j, "nonce", j, Nn) and
// secret_{j+1} = DeriveTreeSecret(secret_j, "secret", j, Nh) (Section 9.1).
//
// Forward secrecy (Section 9.2): a node secret is dropped as soon as its
// children are derived, a ratchet secret as soon as the next one is, and a
// key and nonce as soon as they have been used. Keys of skipped generations
// are kept for out-of-order delivery, but only within a bounded window (see
// [SecretTreeLimits]).

// RatchetType selects one of a leaf's two hash ratchets. It is not the wire
// ContentType: handshake content (proposals, commits) uses the handshake
// ratchet, application data the application ratchet (RFC 9420, Section 9.1).
type RatchetType uint8

// The two ratchets of a leaf.
const (
	RatchetHandshake   RatchetType = 1
	RatchetApplication RatchetType = 2
)

// String returns "handshake" or "application".
func (t RatchetType) String() string {
	switch t {
	case RatchetHandshake:
		return "handshake"
	case RatchetApplication:
		return "application"
	}
	return fmt.Sprintf("RatchetType(%d)", uint8(t))
}

// Default secret-tree limits; see [SecretTreeLimits].
const (
	DefaultOutOfOrderTolerance = 128
	DefaultMaxForwardDistance  = 1024
)

// SecretTreeLimits bounds the work and memory an out-of-order or hostile
// sender can cause.
//
// OutOfOrderTolerance: for each ratchet, the keys of skipped generations are
// kept only while they are within this many generations of the ratchet's
// head (the next generation not yet derived); older ones are erased. A
// message that arrives later than that fails with [ErrGenerationTooOld].
// Memory per ratchet is thus at most OutOfOrderTolerance keys and nonces
// (about 5 KiB at the default of 128 with 16-byte keys; 7 KiB with 32-byte).
//
// MaxForwardDistance: a receiver refuses a generation more than this far
// ahead of the ratchet head ([ErrGenerationTooFarAhead]), so one message
// can force at most MaxForwardDistance ratchet steps (three ExpandWithLabel
// calls each; about 1 ms at the default of 1024).
//
// Zero fields take the defaults.
type SecretTreeLimits struct {
	OutOfOrderTolerance uint32
	MaxForwardDistance  uint32
}

func (l SecretTreeLimits) withDefaults() SecretTreeLimits {
	if l.OutOfOrderTolerance == 0 {
		l.OutOfOrderTolerance = DefaultOutOfOrderTolerance
	}
	if l.MaxForwardDistance == 0 {
		l.MaxForwardDistance = DefaultMaxForwardDistance
	}
	return l
}

// Errors of the secret tree. Each is wrapped by a [*SecretTreeError].
var (
	// ErrGenerationTooOld reports a generation that fell out of the
	// out-of-order window: its key has been erased.
	ErrGenerationTooOld = errors.New("mls: secret tree generation too old")
	// ErrGenerationConsumed reports a generation whose key was already used
	// (a replay) or handed out for sending.
	ErrGenerationConsumed = errors.New("mls: secret tree generation already used")
	// ErrGenerationTooFarAhead reports a generation beyond
	// [SecretTreeLimits.MaxForwardDistance].
	ErrGenerationTooFarAhead = errors.New("mls: secret tree generation too far ahead")
	// ErrRatchetExhausted reports a ratchet that reached generation 2^32-1.
	ErrRatchetExhausted = errors.New("mls: secret tree ratchet exhausted")
	// ErrLeafOutOfRange reports a leaf index not in the tree.
	ErrLeafOutOfRange = errors.New("mls: secret tree leaf out of range")
	// ErrBadRatchetType reports a RatchetType other than handshake or
	// application.
	ErrBadRatchetType = errors.New("mls: unknown ratchet type")
)

// SecretTreeError says which leaf, ratchet and generation a secret-tree
// error concerns. It wraps one of the ErrGeneration*/ErrLeafOutOfRange/...
// sentinels above.
type SecretTreeError struct {
	Leaf       LeafIndex
	Ratchet    RatchetType
	Generation uint32
	Err        error
}

// Error describes the failure with its leaf, ratchet and generation.
func (e *SecretTreeError) Error() string {
	return fmt.Sprintf("%v (leaf %d, %v ratchet, generation %d)", e.Err, e.Leaf, e.Ratchet, e.Generation)
}

// Unwrap returns the sentinel.
func (e *SecretTreeError) Unwrap() error { return e.Err }

// keyNonce is one generation's AEAD key and nonce.
type keyNonce struct {
	key, nonce []byte
}

// hashRatchet is one leaf's handshake or application ratchet.
type hashRatchet struct {
	head   uint32 // generation of secret; every generation below was derived
	secret []byte // ratchet secret of generation head; nil once exhausted
	// skipped holds derived, unused keys for generations in
	// [head-OutOfOrderTolerance, head).
	skipped map[uint32]keyNonce
}

type leafRatchets struct {
	handshake, application hashRatchet
}

// SecretTree holds one epoch's secret tree for one member. It is not safe
// for concurrent use.
type SecretTree struct {
	cs      CipherSuite
	nLeaves uint32
	limits  SecretTreeLimits
	// nodes holds the secrets of derived nodes whose children have not been
	// derived yet (at first only the root).
	nodes map[NodeIndex][]byte
	// leaves holds the ratchets of every leaf derived so far.
	leaves map[LeafIndex]*leafRatchets
}

// NewSecretTree returns the secret tree of an epoch with nLeaves leaves
// rooted at encryptionSecret, with the default limits. The tree keeps its own
// copy of the secret.
//
// The secret tree has the shape of the ratchet tree (RFC 9420, Section 9),
// whose leaf count is always a power of two (Section 7.7). A count that is
// not a power of two (say, the number of members) is rounded up to one, so
// that the keys are those of the ratchet tree that holds that many leaves;
// [SecretTree.NumLeaves] reports the rounded count. nLeaves must be in
// [1, 2^31].
func NewSecretTree(cs CipherSuite, encryptionSecret []byte, nLeaves uint32) (*SecretTree, error) {
	return NewSecretTreeWithLimits(cs, encryptionSecret, nLeaves, SecretTreeLimits{})
}

// NewSecretTreeWithLimits is [NewSecretTree] with explicit limits.
func NewSecretTreeWithLimits(cs CipherSuite, encryptionSecret []byte, nLeaves uint32, limits SecretTreeLimits) (*SecretTree, error) {
	p, err := cs.params()
	if err != nil {
		return nil, err
	}
	if len(encryptionSecret) != p.nh {
		return nil, fmt.Errorf("mls: encryption_secret is %d bytes, want %d", len(encryptionSecret), p.nh)
	}
	if err := checkLeafCount(nLeaves); err != nil {
		return nil, err
	}
	nLeaves = uint32(1) << bits.Len32(nLeaves-1)
	root, err := Root(nLeaves)
	if err != nil {
		return nil, err
	}
	return &SecretTree{
		cs:      cs,
		nLeaves: nLeaves,
		limits:  limits.withDefaults(),
		nodes:   map[NodeIndex][]byte{root: append([]byte(nil), encryptionSecret...)},
		leaves:  make(map[LeafIndex]*leafRatchets),
	}, nil
}

// NumLeaves returns the number of leaves of the tree: the count given to
// [NewSecretTree] rounded up to a power of two.
func (st *SecretTree) NumLeaves() uint32 { return st.nLeaves }

// Limits returns the limits in force.
func (st *SecretTree) Limits() SecretTreeLimits { return st.limits }

// leaf returns leaf's ratchets, deriving them on first use.
func (st *SecretTree) leaf(leaf LeafIndex) (*leafRatchets, error) {
	if lr, ok := st.leaves[leaf]; ok {
		return lr, nil
	}
	if !leaf.InTree(st.nLeaves) {
		return nil, ErrLeafOutOfRange
	}
	x := leaf.NodeIndex()
	path, err := DirectPath(x, st.nLeaves)
	if err != nil {
		return nil, ErrLeafOutOfRange
	}
	// Find the lowest stored ancestor (or the leaf itself): the walk up
	// the direct path is at most log2(n) steps.
	top := -1 // index into path; -1 means the leaf itself
	if _, ok := st.nodes[x]; !ok {
		top = len(path)
		for i, a := range path {
			if _, ok := st.nodes[a]; ok {
				top = i
				break
			}
		}
		if top == len(path) {
			// Every derivation path ends in a leaf whose ratchets exist,
			// so this means the leaf's secret was consumed by an earlier
			// call that failed half-way; nothing can recover it.
			return nil, fmt.Errorf("mls: secret tree: no secret left for leaf %d", leaf)
		}
	}
	// Derive down from path[top] to the leaf.
	for i := top; i >= 0; i-- {
		if err := st.split(path[i]); err != nil {
			return nil, err
		}
	}
	secret := st.nodes[x]
	delete(st.nodes, x)
	hs, err := st.cs.ExpandWithLabel(secret, "handshake", nil, st.cs.Nh())
	if err != nil {
		return nil, err
	}
	app, err := st.cs.ExpandWithLabel(secret, "application", nil, st.cs.Nh())
	if err != nil {
		return nil, err
	}
	clear(secret)
	lr := &leafRatchets{
		handshake:   hashRatchet{secret: hs},
		application: hashRatchet{secret: app},
	}
	st.leaves[leaf] = lr
	return lr, nil
}

// split replaces the stored secret of parent node p by its children's.
func (st *SecretTree) split(p NodeIndex) error {
	secret, ok := st.nodes[p]
	if !ok {
		return fmt.Errorf("mls: secret tree: node %d has no secret", p)
	}
	l, err := Left(p)
	if err != nil {
		return err
	}
	r, err := Right(p, st.nLeaves)
	if err != nil {
		return err
	}
	ls, err := st.cs.ExpandWithLabel(secret, "tree", []byte("left"), st.cs.Nh())
	if err != nil {
		return err
	}
	rs, err := st.cs.ExpandWithLabel(secret, "tree", []byte("right"), st.cs.Nh())
	if err != nil {
		return err
	}
	st.nodes[l], st.nodes[r] = ls, rs
	clear(secret)
	delete(st.nodes, p)
	return nil
}

func (lr *leafRatchets) ratchet(t RatchetType) *hashRatchet {
	switch t {
	case RatchetHandshake:
		return &lr.handshake
	case RatchetApplication:
		return &lr.application
	}
	return nil
}

// lookup validates leaf and t and returns the ratchet.
func (st *SecretTree) lookup(leaf LeafIndex, t RatchetType, gen uint32) (*hashRatchet, error) {
	if t != RatchetHandshake && t != RatchetApplication {
		return nil, &SecretTreeError{Leaf: leaf, Ratchet: t, Generation: gen, Err: ErrBadRatchetType}
	}
	lr, err := st.leaf(leaf)
	if err != nil {
		if errors.Is(err, ErrLeafOutOfRange) {
			return nil, &SecretTreeError{Leaf: leaf, Ratchet: t, Generation: gen, Err: err}
		}
		return nil, err
	}
	return lr.ratchet(t), nil
}

// step derives the key and nonce of the head generation and advances the
// ratchet to the next secret, erasing the old one.
func (st *SecretTree) step(r *hashRatchet) (keyNonce, error) {
	if r.secret == nil || r.head == math.MaxUint32 {
		return keyNonce{}, ErrRatchetExhausted
	}
	cs := st.cs
	key, err := cs.DeriveTreeSecret(r.secret, "key", r.head, cs.Nk())
	if err != nil {
		return keyNonce{}, err
	}
	nonce, err := cs.DeriveTreeSecret(r.secret, "nonce", r.head, cs.Nn())
	if err != nil {
		return keyNonce{}, err
	}
	next, err := cs.DeriveTreeSecret(r.secret, "secret", r.head, cs.Nh())
	if err != nil {
		return keyNonce{}, err
	}
	clear(r.secret)
	r.secret = next
	r.head++
	return keyNonce{key, nonce}, nil
}

// prune erases skipped keys that fell out of the out-of-order window.
func (st *SecretTree) prune(r *hashRatchet) {
	tol := st.limits.OutOfOrderTolerance
	if r.head <= tol {
		return
	}
	min := r.head - tol
	for g, kn := range r.skipped {
		if g < min {
			clear(kn.key)
			clear(kn.nonce)
			delete(r.skipped, g)
		}
	}
}

// Next returns the key and nonce of the next generation of leaf's ratchet t,
// for sending, and advances the ratchet: every generation is handed out at
// most once.
func (st *SecretTree) Next(leaf LeafIndex, t RatchetType) (generation uint32, key, nonce []byte, err error) {
	r, err := st.lookup(leaf, t, 0)
	if err != nil {
		return 0, nil, nil, err
	}
	gen := r.head
	kn, err := st.step(r)
	if err != nil {
		return 0, nil, nil, &SecretTreeError{Leaf: leaf, Ratchet: t, Generation: gen, Err: err}
	}
	st.prune(r)
	return gen, kn.key, kn.nonce, nil
}

// take returns the key of generation gen and removes it from the ratchet,
// deriving forward (and keeping skipped keys within the window) if needed.
func (st *SecretTree) take(leaf LeafIndex, t RatchetType, gen uint32) (keyNonce, *hashRatchet, error) {
	r, err := st.lookup(leaf, t, gen)
	if err != nil {
		return keyNonce{}, nil, err
	}
	fail := func(e error) (keyNonce, *hashRatchet, error) {
		return keyNonce{}, nil, &SecretTreeError{Leaf: leaf, Ratchet: t, Generation: gen, Err: e}
	}
	if gen < r.head {
		if kn, ok := r.skipped[gen]; ok {
			delete(r.skipped, gen)
			return kn, r, nil
		}
		if r.head-gen <= st.limits.OutOfOrderTolerance {
			return fail(ErrGenerationConsumed)
		}
		return fail(ErrGenerationTooOld)
	}
	if gen-r.head > st.limits.MaxForwardDistance {
		return fail(ErrGenerationTooFarAhead)
	}
	if gen == math.MaxUint32 || r.secret == nil {
		return fail(ErrRatchetExhausted)
	}
	tol := st.limits.OutOfOrderTolerance
	for r.head < gen {
		g := r.head
		kn, err := st.step(r)
		if err != nil {
			return fail(err)
		}
		// Keep a skipped key only if it is still inside the window once the
		// ratchet reaches gen+1.
		if gen+1-g <= tol {
			if r.skipped == nil {
				r.skipped = make(map[uint32]keyNonce)
			}
			r.skipped[g] = kn
		} else {
			clear(kn.key)
			clear(kn.nonce)
		}
	}
	kn, err := st.step(r)
	if err != nil {
		return fail(err)
	}
	st.prune(r)
	return kn, r, nil
}

// Get returns the key and nonce of generation gen of leaf's ratchet t, for
// receiving, and erases them: a second Get of the same generation fails with
// [ErrGenerationConsumed] (replay protection). A generation ahead of the
// ratchet is derived (at most MaxForwardDistance ahead), keeping the skipped
// ones for later; one further back than OutOfOrderTolerance fails with
// [ErrGenerationTooOld].
//
// Because the key is erased even if the caller then fails to decrypt, a
// receiver should prefer [SecretTree.WithKey], which changes nothing when
// the message fails its checks so that a forged message cannot suppress a
// genuine one.
func (st *SecretTree) Get(leaf LeafIndex, t RatchetType, gen uint32) (key, nonce []byte, err error) {
	kn, _, err := st.take(leaf, t, gen)
	if err != nil {
		return nil, nil, err
	}
	return kn.key, kn.nonce, nil
}

// WithKey calls use with the key and nonce of generation gen of leaf's
// ratchet t (as [SecretTree.Get] would return them) and commits the
// ratchet's change only if use returns nil: then the key is erased (a replay
// fails with [ErrGenerationConsumed]) and, for a generation ahead of the
// ratchet, the ratchet advances past it, keeping the skipped keys inside the
// out-of-order window. If use returns an error (a failed decryption, a bad
// signature, any failed content check) the ratchet is left exactly as it
// was: the key stays available and no skipped key is dropped, so a message
// forged by a member who knows the secret tree cannot burn the genuine
// message's key (RFC 9420, Section 9.2 erases keys of consumed messages
// only). use must not retain the slices.
func (st *SecretTree) WithKey(leaf LeafIndex, t RatchetType, gen uint32, use func(key, nonce []byte) error) error {
	r, err := st.lookup(leaf, t, gen)
	if err != nil {
		return err
	}
	fail := func(e error) error {
		return &SecretTreeError{Leaf: leaf, Ratchet: t, Generation: gen, Err: e}
	}
	if gen < r.head {
		kn, ok := r.skipped[gen]
		if !ok {
			if r.head-gen <= st.limits.OutOfOrderTolerance {
				return fail(ErrGenerationConsumed)
			}
			return fail(ErrGenerationTooOld)
		}
		if err := use(kn.key, kn.nonce); err != nil {
			return err
		}
		delete(r.skipped, gen)
		clear(kn.key)
		clear(kn.nonce)
		return nil
	}
	if gen-r.head > st.limits.MaxForwardDistance {
		return fail(ErrGenerationTooFarAhead)
	}
	if gen == math.MaxUint32 || r.secret == nil {
		return fail(ErrRatchetExhausted)
	}
	// Derive forward on a copy of the ratchet; r changes only on success.
	tmp := hashRatchet{head: r.head, secret: append([]byte(nil), r.secret...)}
	tol := st.limits.OutOfOrderTolerance
	var skipped []uint32
	var keys []keyNonce
	discard := func() {
		for _, kn := range keys {
			clear(kn.key)
			clear(kn.nonce)
		}
		clear(tmp.secret)
	}
	for tmp.head < gen {
		g := tmp.head
		kn, err := st.step(&tmp)
		if err != nil {
			discard()
			return fail(err)
		}
		if gen+1-g <= tol {
			skipped = append(skipped, g)
			keys = append(keys, kn)
		} else {
			clear(kn.key)
			clear(kn.nonce)
		}
	}
	kn, err := st.step(&tmp)
	if err != nil {
		discard()
		return fail(err)
	}
	err = use(kn.key, kn.nonce)
	clear(kn.key)
	clear(kn.nonce)
	if err != nil {
		discard()
		return err
	}
	clear(r.secret)
	r.secret, r.head = tmp.secret, tmp.head
	if len(skipped) > 0 && r.skipped == nil {
		r.skipped = make(map[uint32]keyNonce, len(skipped))
	}
	for i, g := range skipped {
		r.skipped[g] = keys[i]
	}
	st.prune(r)
	return nil
}

// Erase overwrites every secret and key the tree still holds with zeros and
// drops them; afterwards every request fails. Call it when the epoch is
// retired (RFC 9420, Section 9.2).
func (st *SecretTree) Erase() {
	for x, s := range st.nodes {
		clear(s)
		delete(st.nodes, x)
	}
	for _, lr := range st.leaves {
		for _, r := range []*hashRatchet{&lr.handshake, &lr.application} {
			clear(r.secret)
			r.secret = nil
			for g, kn := range r.skipped {
				clear(kn.key)
				clear(kn.nonce)
				delete(r.skipped, g)
			}
		}
	}
}

// SenderDataKeyNonce derives the key and nonce that protect a
// PrivateMessage's sender data (RFC 9420, Section 6.3.2): with
// ciphertext_sample the first Nh bytes of ciphertext (all of it if shorter),
// key = ExpandWithLabel(sender_data_secret, "key", ciphertext_sample, Nk)
// and nonce = ExpandWithLabel(sender_data_secret, "nonce",
// ciphertext_sample, Nn).
func (cs CipherSuite) SenderDataKeyNonce(senderDataSecret, ciphertext []byte) (key, nonce []byte, err error) {
	p, err := cs.params()
	if err != nil {
		return nil, nil, err
	}
	sample := ciphertext
	if len(sample) > p.nh {
		sample = sample[:p.nh]
	}
	if key, err = cs.ExpandWithLabel(senderDataSecret, "key", sample, p.nk); err != nil {
		return nil, nil, err
	}
	if nonce, err = cs.ExpandWithLabel(senderDataSecret, "nonce", sample, p.nn); err != nil {
		return nil, nil, err
	}
	return key, nonce, nil
}
