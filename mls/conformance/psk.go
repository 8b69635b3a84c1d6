package conformance

import (
	"bytes"
	"encoding/json"
	"fmt"

	"github.com/rhizome-chat/rhizome/mls"
)

func init() { register(KindPSKSecret, runPSKSecret) }

type pskSecretCase struct {
	CipherSuite uint16 `json:"cipher_suite"`
	PSKs        []struct {
		PSKID    hexBytes `json:"psk_id"`
		PSK      hexBytes `json:"psk"`
		PSKNonce hexBytes `json:"psk_nonce"`
	} `json:"psks"`
	PSKSecret hexBytes `json:"psk_secret"`
}

func runPSKSecret(data []byte, r *Result) error {
	var cases []pskSecretCase
	if err := json.Unmarshal(data, &cases); err != nil {
		return err
	}
	for i, c := range cases {
		cs := mls.CipherSuite(c.CipherSuite)
		if reason := suiteSkipReason(cs); reason != "" {
			r.Skip(reason)
			continue
		}
		// The vectors hold external PSKs only (test-vectors.md).
		psks := make([]mls.PSKWithSecret, len(c.PSKs))
		for j, p := range c.PSKs {
			psks[j] = mls.PSKWithSecret{
				ID:  mls.PreSharedKeyID{PSKType: mls.PSKTypeExternal, PSKID: p.PSKID, PSKNonce: p.PSKNonce},
				PSK: p.PSK,
			}
		}
		got, err := cs.PSKSecret(psks)
		switch {
		case err != nil:
			r.Fail("case %d (suite 0x%04x, %d PSKs): %v", i, c.CipherSuite, len(psks), err)
		case !bytes.Equal(got, c.PSKSecret):
			r.Fail("case %d (suite 0x%04x, %d PSKs): %s", i, c.CipherSuite, len(psks),
				fmt.Sprintf("psk_secret = %x, want %x", got, c.PSKSecret))
		default:
			r.Pass()
		}
	}
	return nil
}
