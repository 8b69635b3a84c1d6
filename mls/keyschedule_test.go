package mls

import (
	"bytes"
	"testing"
)

func TestKeyScheduleZeroSecrets(t *testing.T) {
	t.Parallel()
	for _, cs := range SupportedCipherSuites() {
		t.Run(cs.String(), func(t *testing.T) {
			nh := cs.Nh()
			init := bytes.Repeat([]byte{1}, nh)
			gc := []byte("group context bytes")
			// nil commit_secret and psk_secret mean Nh zero bytes ("0" in
			// RFC 9420), not the empty string.
			a, err := cs.AdvanceEpoch(init, nil, nil, gc)
			if err != nil {
				t.Fatal(err)
			}
			b, err := cs.AdvanceEpoch(init, make([]byte, nh), make([]byte, nh), gc)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(a.EpochAuthenticator, b.EpochAuthenticator) || !bytes.Equal(a.InitSecret, b.InitSecret) {
				t.Error("nil secrets differ from zero secrets")
			}
			// An empty (non-nil) secret has the wrong length.
			if _, err := cs.AdvanceEpoch(init, []byte{}, nil, gc); err == nil {
				t.Error("empty commit_secret accepted")
			}
			// No PSKs give psk_secret = 0.
			if z, err := cs.PSKSecret(nil); err != nil || !bytes.Equal(z, make([]byte, nh)) {
				t.Errorf("PSKSecret(nil) = %x, %v", z, err)
			}
			// Every derived secret is distinct and Nh bytes.
			seen := map[string]string{}
			for _, f := range a.derivedFields() {
				if len(*f.dst) != nh {
					t.Errorf("%s is %d bytes", f.label, len(*f.dst))
				}
				if other, dup := seen[string(*f.dst)]; dup {
					t.Errorf("%s equals %s", f.label, other)
				}
				seen[string(*f.dst)] = f.label
			}
			// The group context is bound in.
			c, _ := cs.AdvanceEpoch(init, nil, nil, []byte("other context"))
			if bytes.Equal(a.EpochAuthenticator, c.EpochAuthenticator) {
				t.Error("group context does not change the epoch")
			}
			// welcome_secret and the Welcome keys.
			w, err := cs.WelcomeSecret(a.JoinerSecret, nil)
			if err != nil || !bytes.Equal(w, a.WelcomeSecret) {
				t.Errorf("WelcomeSecret = %x, %v", w, err)
			}
			k, n, err := cs.WelcomeKeyNonce(w)
			if err != nil || len(k) != cs.Nk() || len(n) != cs.Nn() {
				t.Errorf("WelcomeKeyNonce: %d/%d bytes, %v", len(k), len(n), err)
			}
		})
	}
}

func TestKeyScheduleBadLengths(t *testing.T) {
	t.Parallel()
	cs := MLS128DHKEMX25519AES128GCMSHA256Ed25519
	ok := make([]byte, 32)
	tests := []struct {
		name                      string
		init, commit, psk, joiner []byte
	}{
		{"short init", ok[:31], ok, ok, ok},
		{"long commit", ok, append(ok, 0), ok, ok},
		{"short psk", ok, ok, ok[:1], ok},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := cs.AdvanceEpoch(tt.init, tt.commit, tt.psk, nil); err == nil {
				t.Error("accepted")
			}
		})
	}
	if _, err := cs.EpochSecretsFromJoiner(ok[:16], nil, nil); err == nil {
		t.Error("short joiner_secret accepted")
	}
}

func TestExporterAndErase(t *testing.T) {
	t.Parallel()
	cs := MLS128DHKEMP256AES128GCMSHA256P256
	es, err := cs.AdvanceEpoch(make([]byte, 32), nil, nil, []byte("gc"))
	if err != nil {
		t.Fatal(err)
	}
	a, _ := es.Exporter("label", []byte("ctx"), 42)
	b, _ := es.Exporter("label", []byte("ctx"), 42)
	c, _ := es.Exporter("label2", []byte("ctx"), 42)
	d, _ := es.Exporter("label", []byte("ctx2"), 42)
	if len(a) != 42 || !bytes.Equal(a, b) || bytes.Equal(a, c) || bytes.Equal(a, d) {
		t.Error("exporter outputs wrong")
	}
	if _, err := es.Exporter("label", nil, 1<<16); err == nil {
		t.Error("exporter length 2^16 accepted")
	}
	priv, pub, err := es.ExternalKeyPair()
	if err != nil || len(priv) != 32 || len(pub) != 65 {
		t.Errorf("ExternalKeyPair: %d/%d bytes, %v", len(priv), len(pub), err)
	}
	es.Erase()
	for _, s := range [][]byte{es.JoinerSecret, es.WelcomeSecret, es.EncryptionSecret, es.InitSecret, es.EpochAuthenticator} {
		if !bytes.Equal(s, make([]byte, len(s))) {
			t.Errorf("secret not erased: %x", s)
		}
	}
}
