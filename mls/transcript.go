package mls

import (
	"crypto/hmac"
	"fmt"

	"golang.org/x/crypto/cryptobyte"

	"github.com/rhizome-chat/rhizome/internal/tlspl"
)

// Transcript hashes (RFC 9420, Section 8.2):
//
//	confirmed_transcript_hash_[n] =
//	    Hash(interim_transcript_hash_[n-1] || ConfirmedTranscriptHashInput_[n])
//	interim_transcript_hash_[n] =
//	    Hash(confirmed_transcript_hash_[n] || InterimTranscriptHashInput_[n])
//
// with ConfirmedTranscriptHashInput = { WireFormat wire_format;
// FramedContent content; opaque signature<V>; } and
// InterimTranscriptHashInput = { MAC confirmation_tag; }.

// ConfirmedTranscriptHash returns the confirmed transcript hash after the
// commit ac, given the interim transcript hash of the previous epoch. The
// content is hashed as received.
func ConfirmedTranscriptHash(cs CipherSuite, interimBefore []byte, ac *AuthenticatedContent) ([]byte, error) {
	if ac.Content.ContentType != ContentTypeCommit {
		return nil, fmt.Errorf("%w: transcript hash of a non-commit", ErrInvalidMessage)
	}
	content, err := ac.Content.bytes()
	if err != nil {
		return nil, err
	}
	in, err := encodeValue(func(b *cryptobyte.Builder) {
		b.AddBytes(interimBefore)
		b.AddUint16(uint16(ac.WireFormat))
		b.AddBytes(content)
		tlspl.AddOpaque(b, ac.Auth.Signature)
	})
	if err != nil {
		return nil, err
	}
	if !cs.Supported() {
		return nil, &UnsupportedCipherSuiteError{Suite: cs}
	}
	return cs.Hash(in), nil
}

// InterimTranscriptHash returns Hash(confirmed || InterimTranscriptHashInput)
// for the commit's confirmation tag.
func InterimTranscriptHash(cs CipherSuite, confirmed, confirmationTag []byte) ([]byte, error) {
	in, err := encodeValue(func(b *cryptobyte.Builder) {
		b.AddBytes(confirmed)
		tlspl.AddOpaque(b, confirmationTag)
	})
	if err != nil {
		return nil, err
	}
	if !cs.Supported() {
		return nil, &UnsupportedCipherSuiteError{Suite: cs}
	}
	return cs.Hash(in), nil
}

// ConfirmationTag returns MAC(confirmation_key, confirmed_transcript_hash)
// (RFC 9420, Section 8.2).
func ConfirmationTag(cs CipherSuite, confirmationKey, confirmed []byte) ([]byte, error) {
	return cs.MAC(confirmationKey, confirmed)
}

// VerifyConfirmationTag checks tag against the confirmation key and the
// confirmed transcript hash, in constant time.
func VerifyConfirmationTag(cs CipherSuite, confirmationKey, confirmed, tag []byte) error {
	want, err := ConfirmationTag(cs, confirmationKey, confirmed)
	if err != nil {
		return err
	}
	if !hmac.Equal(want, tag) {
		return ErrBadConfirmationTag
	}
	return nil
}
