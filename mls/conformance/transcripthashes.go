package conformance

import (
	"bytes"
	"fmt"

	"github.com/rhizome-chat/rhizome/mls"
)

func init() { register(KindTranscriptHashes, runTranscriptHashes) }

// transcriptHashesCase is one case of transcript-hashes.json: a commit's
// AuthenticatedContent and the transcript hashes around it.
type transcriptHashesCase struct {
	CipherSuite                  uint16   `json:"cipher_suite"`
	ConfirmationKey              hexBytes `json:"confirmation_key"`
	AuthenticatedContent         hexBytes `json:"authenticated_content"`
	InterimTranscriptHashBefore  hexBytes `json:"interim_transcript_hash_before"`
	ConfirmedTranscriptHashAfter hexBytes `json:"confirmed_transcript_hash_after"`
	InterimTranscriptHashAfter   hexBytes `json:"interim_transcript_hash_after"`
}

func runTranscriptHashes(data []byte, r *Result) error {
	return runSuiteCases(data, r, func(c *transcriptHashesCase) uint16 { return c.CipherSuite }, anyIndex(checkTranscriptHashes))
}

func checkTranscriptHashes(cs mls.CipherSuite, c *transcriptHashesCase) error {
	ac, err := mls.UnmarshalAuthenticatedContent(c.AuthenticatedContent)
	if err != nil {
		return err
	}
	if enc, err := ac.Marshal(); err != nil || !bytes.Equal(enc, c.AuthenticatedContent) {
		return fmt.Errorf("AuthenticatedContent does not re-encode to its bytes (%v)", err)
	}
	if err := mls.VerifyConfirmationTag(cs, c.ConfirmationKey, c.ConfirmedTranscriptHashAfter, ac.Auth.ConfirmationTag); err != nil {
		return fmt.Errorf("confirmation tag: %w", err)
	}
	confirmed, err := mls.ConfirmedTranscriptHash(cs, c.InterimTranscriptHashBefore, ac)
	if err != nil {
		return err
	}
	if !bytes.Equal(confirmed, c.ConfirmedTranscriptHashAfter) {
		return fmt.Errorf("confirmed transcript hash %x, want %x", confirmed, []byte(c.ConfirmedTranscriptHashAfter))
	}
	interim, err := mls.InterimTranscriptHash(cs, confirmed, ac.Auth.ConfirmationTag)
	if err != nil {
		return err
	}
	if !bytes.Equal(interim, c.InterimTranscriptHashAfter) {
		return fmt.Errorf("interim transcript hash %x, want %x", interim, []byte(c.InterimTranscriptHashAfter))
	}
	return nil
}
