package accounts

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/hex"
	"strings"
	"testing"
)

func TestNameGrammar(t *testing.T) {
	tests := []struct {
		name string
		ok   bool
		msg  string // a substring of the refusal
	}{
		{"alice", true, ""},
		{"a", true, ""},
		{"bob.smith", true, ""},
		{"a_b-c.d9", true, ""},
		{"0day", true, ""},
		{strings.Repeat("a", 64), true, ""},
		{"", false, "missing"},
		{strings.Repeat("a", 65), false, "at most 64"},
		{"alice.", false, "only between"},
		{".alice", false, "only between"},
		{"a..b", false, "only between"},
		{"a.-b", false, "only between"},
		{"-", false, "only between"},
		{"Alice", false, "lowercase"},
		{"alice!", false, "only between"},
		{"al ice", false, "only between"},
		{"аlice", false, "ASCII only"}, // Cyrillic а
		{"alicе", false, "ASCII only"}, // Cyrillic е
		{"ａlice", false, "ASCII only"}, // fullwidth a
		{"al\u200bice", false, "ASCII only"},
		{"a/b", false, "only between"},
	}
	for _, tc := range tests {
		err := CheckName("user", tc.name)
		if (err == nil) != tc.ok || err != nil && !strings.Contains(err.Error(), tc.msg) {
			t.Errorf("CheckName(%q) = %v, want ok=%v with %q", tc.name, err, tc.ok, tc.msg)
		}
		if validName(tc.name) != tc.ok {
			t.Errorf("validName(%q) = %v", tc.name, !tc.ok)
		}
	}
	// The KeyPackage directory resolves local users with the same grammar.
	a := &Store{domain: "a.test"}
	for _, tc := range tests {
		if _, ok := a.LocalUser("mimi://a.test/u/" + tc.name); ok != tc.ok {
			t.Errorf("LocalUser(%q) = %v, want %v", tc.name, ok, tc.ok)
		}
	}
}

func TestSignatureKeyCheck(t *testing.T) {
	pub, _, _ := ed25519.GenerateKey(rand.Reader)
	hexKey := func(s string) []byte {
		b, err := hex.DecodeString(s)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	identity := make([]byte, 32)
	identity[0] = 1 // y = 1: the neutral element
	tests := []struct {
		name string
		key  []byte
		msg  string // "" for a valid key
	}{
		{"real key", pub, ""},
		{"3 bytes", []byte{1, 2, 3}, "got 3 bytes"},
		{"empty", nil, "got 0 bytes"},
		{"33 bytes", append(append([]byte{}, pub...), 0), "got 33 bytes"},
		{"identity", identity, "small-order"},
		{"zero (order 4)", make([]byte, 32), "small-order"},
		// y = 2 has no x on the curve.
		{"not a point", append([]byte{2}, make([]byte, 31)...), "not a point"},
		// A point of order 8 (from the Ed25519 small-order list).
		{"order 8", hexKey("c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a"), "small-order"},
	}
	for _, tc := range tests {
		err := CheckSignatureKey(tc.key)
		if tc.msg == "" && err != nil || tc.msg != "" && (err == nil || !strings.Contains(err.Error(), tc.msg)) {
			t.Errorf("%s: %v, want %q", tc.name, err, tc.msg)
		}
	}
}
