package mls

import (
	"crypto/sha256"
	"encoding/binary"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// Memo remembers the outcome of pure checks that succeeded, so that a
// process in which many parties check the same messages (a simulator
// running many servers and clients of one group in one process, each
// checking every commit as its own node or device would) pays for each
// check once. It remembers three kinds of outcome:
//
//   - signatures that verified ([CipherSuite.VerifyWithLabel] and every
//     check built on it), keyed by the scheme, public key, signed message
//     and signature;
//   - the public keys of HPKE private keys ([CipherSuite.DeriveKeyPair],
//     hence the node keys of every UpdatePath: the committer derives
//     them, and each member that decrypts a path secret derives them
//     again to check them against the path), keyed by the KEM and a hash
//     of the private key (the memo holds no private key);
//   - commits a [PublicGroup] accepted ([PublicGroup.ProcessCommit]),
//     keyed by the epoch's public state (its GroupContext, which commits to
//     the ratchet tree by its tree hash and to the transcript, the interim
//     transcript hash, the confirmation tag and the ProposalRefs of the
//     proposals it holds), the commit's encoding and the lifetime-check time, for observers with
//     the default policy (a zero [PublicGroupConfig] but for Now, which
//     only the bootstrap reads) only: a policy's callbacks cannot be part
//     of a key.
//
// All three are pure functions of their keys, so answering a repeat
// from the memo changes no verdict and no result; keys are SHA-256 hashes
// of every input, length-prefixed. Only successes are kept: a signature
// that fails and a commit that is rejected are checked again every time.
// A remembered commit's next PublicGroup is shared between the callers
// that process the same commit on the same state (a PublicGroup is
// immutable and safe for concurrent use); each gets its own copy of the
// ObservedCommit summary.
//
// Each kind keeps at least its capacity of entries (public keys as many
// as signatures): when the current
// generation is full it becomes the old one (the one before is dropped),
// and a hit in the old generation is carried into the new.
//
// A Memo is safe for concurrent use. None is installed by default (see
// [SetMemo]): a node checks each message once and has no use for one.
type Memo struct {
	mu      sync.Mutex
	sigs    memoTable[struct{}]
	kemPubs memoTable[[]byte]
	commits memoTable[observedResult]
	stats   MemoStats
}

// MemoStats counts a [Memo]'s lookups: hits answered from the memo and
// misses passed on to the real check.
type MemoStats struct {
	SignatureHits, SignatureMisses uint64
	PublicKeyHits, PublicKeyMisses uint64
	CommitHits, CommitMisses       uint64
}

// observedResult is a remembered [PublicGroup.ProcessCommit] result.
type observedResult struct {
	next *PublicGroup
	oc   *ObservedCommit
}

type memoKey = [sha256.Size]byte

// memoTable is a two-generation map of at least capacity entries.
type memoTable[V any] struct {
	capacity int
	cur, old map[memoKey]V
}

func (t *memoTable[V]) get(k memoKey) (V, bool) {
	if v, ok := t.cur[k]; ok {
		return v, true
	}
	v, ok := t.old[k]
	if ok {
		t.put(k, v)
	}
	return v, ok
}

func (t *memoTable[V]) put(k memoKey, v V) {
	if t.cur == nil || len(t.cur) >= t.capacity {
		t.old, t.cur = t.cur, make(map[memoKey]V, t.capacity)
	}
	t.cur[k] = v
}

// NewMemo returns a memo that keeps at least the last signatures verified
// signatures and the last commits accepted commits (each at least 1).
func NewMemo(signatures, commits int) *Memo {
	return &Memo{sigs: memoTable[struct{}]{capacity: max(signatures, 1)},
		kemPubs: memoTable[[]byte]{capacity: max(signatures, 1)},
		commits: memoTable[observedResult]{capacity: max(commits, 1)}}
}

// memo is the installed memo (nil: none).
var memo atomic.Pointer[Memo]

// SetMemo installs m as the memo of every check it covers in this
// process and returns the memo it replaces; nil removes it.
func SetMemo(m *Memo) *Memo { return memo.Swap(m) }

// Stats returns the memo's lookup counts so far.
func (m *Memo) Stats() MemoStats {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.stats
}

// keyHash hashes parts, each but the last length-prefixed.
func keyHash(parts ...[]byte) memoKey {
	h := sha256.New()
	var n [4]byte
	for i, p := range parts {
		if i < len(parts)-1 {
			binary.BigEndian.PutUint32(n[:], uint32(len(p)))
			h.Write(n[:])
		}
		h.Write(p)
	}
	var k memoKey
	h.Sum(k[:0])
	return k
}

// signatureKey is the memo key of one signature verification.
func signatureKey(scheme signatureScheme, pub, msg, sig []byte) memoKey {
	return keyHash([]byte{byte(scheme)}, pub, sig, msg)
}

func (m *Memo) verified(k memoKey) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	_, ok := m.sigs.get(k)
	if ok {
		m.stats.SignatureHits++
	} else {
		m.stats.SignatureMisses++
	}
	return ok
}

func (m *Memo) addVerified(k memoKey) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.sigs.put(k, struct{}{})
}

// publicKeyKey is the memo key of the public key of sk, a private key of
// KEM id.
func publicKeyKey(id uint16, sk []byte) memoKey {
	return keyHash([]byte{byte(id >> 8), byte(id)}, sk)
}

func (m *Memo) publicKey(k memoKey) ([]byte, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	pub, ok := m.kemPubs.get(k)
	if ok {
		m.stats.PublicKeyHits++
	} else {
		m.stats.PublicKeyMisses++
	}
	return slices.Clone(pub), ok
}

func (m *Memo) addPublicKey(k memoKey, pub []byte) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.kemPubs.put(k, slices.Clone(pub))
}

// memoizable reports whether an observer's verdicts depend on its state
// and the message alone: its policy is the default one.
func (c *PublicGroupConfig) memoizable() bool {
	return c.ValidateCredential == nil && c.AppData == nil && len(c.KnownComponents) == 0 && c.PSKs == nil
}

// commitKey is the memo key of processing the commit encoded as raw, with
// lifetime-check time now, on the epoch state s of a group that a ReInit
// did not end.
func commitKey(s *publicState, raw []byte, now time.Time) memoKey {
	parts := [][]byte{{byte(s.cs >> 8), byte(s.cs)}, s.ctxBytes, s.interim, s.confTag}
	var t [9]byte // a zero time (no lifetime checks) differs from every other
	if !now.IsZero() {
		t[0] = 1
		binary.BigEndian.PutUint64(t[1:], uint64(now.UnixNano()))
	}
	parts = append(parts, t[:], binary.BigEndian.AppendUint32(nil, uint32(s.proposals.len())))
	for _, cp := range s.proposals.all() {
		parts = append(parts, cp.ref)
	}
	return keyHash(append(parts, raw)...)
}

func (m *Memo) observed(k memoKey) (*PublicGroup, *ObservedCommit, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	r, ok := m.commits.get(k)
	if !ok {
		m.stats.CommitMisses++
		return nil, nil, false
	}
	m.stats.CommitHits++
	return r.next, r.oc.clone(), true
}

func (m *Memo) addObserved(k memoKey, next *PublicGroup, oc *ObservedCommit) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.commits.put(k, observedResult{next: next, oc: oc.clone()})
}

// clone returns a copy of oc whose slices the caller may change.
func (oc *ObservedCommit) clone() *ObservedCommit {
	c := *oc
	c.Proposals = slices.Clone(oc.Proposals)
	c.Added = slices.Clone(oc.Added)
	c.Removed = slices.Clone(oc.Removed)
	c.Updated = slices.Clone(oc.Updated)
	c.PSKs = slices.Clone(oc.PSKs)
	if oc.Joiner != nil {
		j := *oc.Joiner
		c.Joiner = &j
	}
	return &c
}
