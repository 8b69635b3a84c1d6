package conformance

import (
	"bytes"
	"fmt"

	"github.com/rhizome-chat/rhizome/mls"
)

func init() { register(KindSecretTree, runSecretTree) }

type secretTreeCase struct {
	CipherSuite      uint16   `json:"cipher_suite"`
	EncryptionSecret hexBytes `json:"encryption_secret"`
	SenderData       struct {
		SenderDataSecret hexBytes `json:"sender_data_secret"`
		Ciphertext       hexBytes `json:"ciphertext"`
		Key              hexBytes `json:"key"`
		Nonce            hexBytes `json:"nonce"`
	} `json:"sender_data"`
	Leaves [][]struct {
		Generation       uint32   `json:"generation"`
		HandshakeKey     hexBytes `json:"handshake_key"`
		HandshakeNonce   hexBytes `json:"handshake_nonce"`
		ApplicationKey   hexBytes `json:"application_key"`
		ApplicationNonce hexBytes `json:"application_nonce"`
	} `json:"leaves"`
}

func runSecretTree(data []byte, r *Result) error {
	return runSuiteCases(data, r, func(c *secretTreeCase) uint16 { return c.CipherSuite }, func(_ int, cs mls.CipherSuite, c *secretTreeCase) error {
		if err := checkSecretTree(cs, c); err != nil {
			return fmt.Errorf("%d leaves: %w", len(c.Leaves), err)
		}
		return nil
	})
}

func checkSecretTree(cs mls.CipherSuite, c *secretTreeCase) error {
	sd := c.SenderData
	key, nonce, err := cs.SenderDataKeyNonce(sd.SenderDataSecret, sd.Ciphertext)
	if err != nil {
		return fmt.Errorf("sender data: %v", err)
	}
	if !bytes.Equal(key, sd.Key) || !bytes.Equal(nonce, sd.Nonce) {
		return fmt.Errorf("sender data key/nonce = %x/%x, want %x/%x", key, nonce, sd.Key, sd.Nonce)
	}
	if len(c.Leaves) == 0 {
		return fmt.Errorf("no leaves")
	}
	// The tree is derived lazily; the generations listed per leaf are
	// ascending, so one receiving tree serves them all (and exercises
	// forward derivation across skipped generations).
	st, err := mls.NewSecretTree(cs, c.EncryptionSecret, uint32(len(c.Leaves)))
	if err != nil {
		return err
	}
	// A sending tree hands out the same keys through Next.
	sender, err := mls.NewSecretTree(cs, c.EncryptionSecret, uint32(len(c.Leaves)))
	if err != nil {
		return err
	}
	for leaf, gens := range c.Leaves {
		for _, g := range gens {
			for _, rt := range []struct {
				t          mls.RatchetType
				key, nonce []byte
			}{
				{mls.RatchetHandshake, g.HandshakeKey, g.HandshakeNonce},
				{mls.RatchetApplication, g.ApplicationKey, g.ApplicationNonce},
			} {
				key, nonce, err := st.Get(mls.LeafIndex(leaf), rt.t, g.Generation)
				if err != nil {
					return fmt.Errorf("leaf %d %v generation %d: %v", leaf, rt.t, g.Generation, err)
				}
				if !bytes.Equal(key, rt.key) || !bytes.Equal(nonce, rt.nonce) {
					return fmt.Errorf("leaf %d %v generation %d: key/nonce = %x/%x, want %x/%x",
						leaf, rt.t, g.Generation, key, nonce, rt.key, rt.nonce)
				}
				for {
					gen, key, nonce, err := sender.Next(mls.LeafIndex(leaf), rt.t)
					if err != nil {
						return fmt.Errorf("leaf %d %v: Next: %v", leaf, rt.t, err)
					}
					if gen < g.Generation {
						continue
					}
					if gen != g.Generation || !bytes.Equal(key, rt.key) || !bytes.Equal(nonce, rt.nonce) {
						return fmt.Errorf("leaf %d %v: Next = generation %d %x/%x, want %d %x/%x",
							leaf, rt.t, gen, key, nonce, g.Generation, rt.key, rt.nonce)
					}
					break
				}
			}
		}
	}
	return nil
}
