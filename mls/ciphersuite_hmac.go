package mls

import (
	"crypto/sha256"
	"crypto/sha512"
	"hash"
)

// kdfHash is the hash function behind a suite's KDF (HKDF), MAC (HMAC) and
// Hash. HMAC (RFC 2104) is computed here directly over one-shot hash sums on
// stack buffers: crypto/hmac allocates two hash states per key, which made
// HMAC of a short message cost about four times the hashing itself, and the
// secret tree and key schedule key a fresh HMAC for almost every call.
type kdfHash uint8

const (
	kdfSHA256 kdfHash = iota + 1
	kdfSHA384
	kdfSHA512
)

// size is the output length in bytes.
func (h kdfHash) size() int {
	switch h {
	case kdfSHA256:
		return sha256.Size
	case kdfSHA384:
		return sha512.Size384
	}
	return sha512.Size
}

// blockSize is the hash's block length, the HMAC key pad size.
func (h kdfHash) blockSize() int {
	if h == kdfSHA256 {
		return sha256.BlockSize
	}
	return sha512.BlockSize
}

// newState returns a fresh incremental hash state.
func (h kdfHash) newState() hash.Hash {
	switch h {
	case kdfSHA256:
		return sha256.New()
	case kdfSHA384:
		return sha512.New384()
	}
	return sha512.New()
}

// newHash returns a fresh incremental state of the suite's hash, for code
// that hashes many values and reuses one state.
func (p *suiteParams) newHash() hash.Hash { return p.hash.newState() }

// sum appends the hash of data to dst.
func (h kdfHash) sum(dst, data []byte) []byte {
	switch h {
	case kdfSHA256:
		s := sha256.Sum256(data)
		return append(dst, s[:]...)
	case kdfSHA384:
		s := sha512.Sum384(data)
		return append(dst, s[:]...)
	}
	s := sha512.Sum512(data)
	return append(dst, s[:]...)
}

// hmacStackSize bounds the messages whose inner HMAC input is assembled on
// the stack; longer ones use one heap buffer.
const hmacStackSize = 512

// hmac appends HMAC(key, a || b || c) to dst (RFC 2104):
// H((K ^ opad) || H((K ^ ipad) || message)), with K the key, hashed first
// if it is longer than a block, then zero-padded to the block size.
func (h kdfHash) hmac(dst, key, a, b, c []byte) []byte {
	bs := h.blockSize()
	var k [sha512.BlockSize]byte
	if len(key) > bs {
		h.sum(k[:0], key)
	} else {
		copy(k[:], key)
	}
	n := bs + len(a) + len(b) + len(c)
	var stack [hmacStackSize]byte
	var in []byte
	if n <= len(stack) {
		in = stack[:n]
	} else {
		in = make([]byte, n)
	}
	for i := range bs {
		in[i] = k[i] ^ 0x36
	}
	off := bs
	off += copy(in[off:], a)
	off += copy(in[off:], b)
	copy(in[off:], c)

	var outer [sha512.BlockSize + sha512.Size]byte
	for i := range bs {
		outer[i] = k[i] ^ 0x5c
	}
	h.sum(outer[bs:bs], in)
	dst = h.sum(dst, outer[:bs+h.size()])
	// Leave no key material or secret input behind in the buffers.
	clear(k[:])
	clear(in)
	clear(outer[:])
	return dst
}

// extract is HKDF-Extract(salt, ikm); an empty salt is size() zero bytes,
// which HMAC pads to the same key as an empty one.
func (h kdfHash) extract(salt, ikm []byte) []byte {
	return h.hmac(make([]byte, 0, h.size()), salt, ikm, nil, nil)
}

// expand is HKDF-Expand(prk, info, length) for 0 <= length <= 255*size().
func (h kdfHash) expand(prk, info []byte, length int) []byte {
	nh := h.size()
	out := make([]byte, 0, length+nh)
	var prev []byte
	for ctr := byte(1); len(out) < length; ctr++ {
		out = h.hmac(out, prk, prev, info, []byte{ctr})
		prev = out[len(out)-nh:]
	}
	return out[:length:length]
}
