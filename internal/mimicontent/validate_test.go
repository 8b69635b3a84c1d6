package mimicontent

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rhizome-chat/rhizome/internal/deptest"
)

func testSalt(b byte) [SaltSize]byte {
	var s [SaltSize]byte
	s[0] = b
	return s
}

func idWith(first byte) *MessageID {
	var id MessageID
	id[0] = first
	id[31] = 0x42
	return &id
}

// TestValidateRejects covers each semantic rule of Content.Validate.
func TestValidateRejects(t *testing.T) {
	t.Parallel()
	target := *idWith(HashAlgSHA256)
	tests := []struct {
		name  string
		build func() *Content
		want  error
	}{
		{"unknown hash alg in replaces", func() *Content {
			c := NewText(alice, room, "x", testSalt(1))
			c.Replaces = idWith(2)
			return c
		}, ErrUnknownHashAlg},
		{"unknown hash alg in inReplyTo", func() *Content {
			return Reply(alice, room, *idWith(0), "x", testSalt(1))
		}, ErrUnknownHashAlg},
		{"replaces equals inReplyTo", func() *Content {
			c := Reply(alice, room, target, "x", testSalt(1))
			c.Replaces = &target
			return c
		}, ErrSelfReference},
		{"null body without replaces", func() *Content {
			c := NewText(alice, room, "", testSalt(1))
			c.Body.Part = NullPart{}
			return c
		}, ErrNullBody},
		{"null part inside multipart", func() *Content {
			c := NewText(alice, room, "", testSalt(1))
			c.Replaces = &target
			c.Body.Part = MultiPart{Parts: []NestedPart{
				{Part: SinglePart{}},
				{Part: MultiPart{Parts: []NestedPart{{Part: SinglePart{}}, {Part: NullPart{}}}}},
			}}
			return c
		}, ErrNullBody},
		{"reaction without target", func() *Content {
			c := Reaction(alice, room, target, "+1", testSalt(1))
			c.InReplyTo = nil
			return c
		}, ErrReactionTarget},
		{"structural error from Encode", func() *Content {
			c := NewText(alice, room, "", testSalt(1))
			c.Body.Part = nil
			return c
		}, ErrInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			err := tt.build().Validate()
			var ve *ValidationError
			if !errors.As(err, &ve) || !errors.Is(err, ErrInvalid) || !errors.Is(err, tt.want) {
				t.Fatalf("Validate = %v, want *ValidationError matching %v", err, tt.want)
			}
		})
	}
}

// TestValidateAcceptsHelpers checks that every constructor yields a valid
// message of the expected kind.
func TestValidateAcceptsHelpers(t *testing.T) {
	t.Parallel()
	to := *idWith(HashAlgSHA256)
	orig := NewText(alice, room, "hello", testSalt(1))
	_, origID, err := orig.EncodeWithID()
	if err != nil {
		t.Fatal(err)
	}
	react := Reaction(alice, room, to, "+1", testSalt(3))
	_, reactID, _ := react.EncodeWithID()
	tests := []struct {
		name string
		c    *Content
		want Kind
	}{
		{"NewText", orig, KindNew},
		{"NewPlainText", NewPlainText(alice, room, "<b>", testSalt(2)), KindNew},
		{"Reply", Reply(bob, room, origID, "hi", testSalt(2)), KindReply},
		{"Reaction", react, KindReaction},
		{"Reactions", Reactions(bob, room, origID, []string{"a", "b"}, testSalt(4)), KindReaction},
		{"Edit", Edit(orig, origID, "hello!", testSalt(5)), KindEdit},
		{"Delete", Delete(orig, origID, testSalt(6)), KindDelete},
		{"Unlike", Delete(react, reactID, testSalt(7)), KindUnlike},
		{"Attachment", Attachment(alice, room, "", ExternalPart{URL: "https://x"}, testSalt(8)), KindNew},
		{"Expiring", Expiring(alice, room, "x", Expiration{Relative: true, Time: 60}, testSalt(9)), KindNew},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if err := tt.c.Validate(); err != nil {
				t.Errorf("Validate: %v", err)
			}
			if k := tt.c.Kind(); k != tt.want {
				t.Errorf("Kind = %v, want %v", k, tt.want)
			}
			b, err := tt.c.Encode()
			if err != nil {
				t.Fatal(err)
			}
			if _, err := Decode(b); err != nil {
				t.Errorf("Decode(Encode) = %v", err)
			}
		})
	}
}

// TestEncodeRejects checks that Encode refuses values Decode would reject.
func TestEncodeRejects(t *testing.T) {
	t.Parallel()
	deep := NestedPart{Part: SinglePart{}}
	for range MaxNestedPartDepth {
		deep = NestedPart{Part: MultiPart{Parts: []NestedPart{deep, {Part: SinglePart{}}}}}
	}
	many := make([]NestedPart, MaxParts)
	for i := range many {
		many[i] = NestedPart{Part: SinglePart{}}
	}
	tests := []struct {
		name   string
		mutate func(c *Content)
	}{
		{"no part", func(c *Content) { c.Body.Part = nil }},
		{"multipart of one", func(c *Content) { c.Body.Part = MultiPart{Parts: []NestedPart{{Part: NullPart{}}}} }},
		{"unknown partSemantics", func(c *Content) {
			c.Body.Part = MultiPart{PartSemantics: 3, Parts: []NestedPart{{Part: NullPart{}}, {Part: NullPart{}}}}
		}},
		{"nested 5 deep", func(c *Content) { c.Body = deep }},
		{"1025 parts", func(c *Content) { c.Body.Part = MultiPart{Parts: many} }},
		{"topicId too long", func(c *Content) { c.TopicID = make([]byte, MaxTopicIDSize+1) }},
		{"language not UTF-8", func(c *Content) { c.Body.Language = "\xff" }},
		{"content type not UTF-8", func(c *Content) { c.Body.Part = SinglePart{ContentType: "\xff"} }},
		{"url not UTF-8", func(c *Content) { c.Body.Part = ExternalPart{URL: "\xff"} }},
		{"sender not UTF-8", func(c *Content) { c.Extensions.SenderURI = "\xff" }},
		{"key 1 in Other", func(c *Content) { c.Extensions.Other = []Extension{{Key: ExtensionKey{Int: 1}, Value: []byte{0}}} }},
		{"duplicate key", func(c *Content) {
			c.Extensions.Other = []Extension{{Key: ExtensionKey{Int: 7}, Value: []byte{0}}, {Key: ExtensionKey{Int: 7}, Value: []byte{1}}}
		}},
		{"key beyond 2^53-1", func(c *Content) {
			c.Extensions.Other = []Extension{{Key: ExtensionKey{Int: 1 << 53}, Value: []byte{0}}}
		}},
		{"text key too long", func(c *Content) {
			c.Extensions.Other = []Extension{{Key: ExtensionKey{Text: strings.Repeat("k", 256)}, Value: []byte{0}}}
		}},
		{"value not deterministic", func(c *Content) {
			c.Extensions.Other = []Extension{{Key: ExtensionKey{Int: 3}, Value: []byte{0x18, 0x01}}}
		}},
		{"value of two items", func(c *Content) { c.Extensions.Other = []Extension{{Key: ExtensionKey{Int: 3}, Value: []byte{0, 0}}} }},
		{"empty value", func(c *Content) { c.Extensions.Other = []Extension{{Key: ExtensionKey{Int: 3}}} }},
		{"value too deep", func(c *Content) {
			c.Extensions.Other = []Extension{{Key: ExtensionKey{Int: 3}, Value: []byte{0x81, 0x81, 0x81, 0x81, 0}}}
		}},
		{"too large", func(c *Content) { c.Body.Part = SinglePart{Content: make([]byte, MaxSize)} }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c := NewText(alice, room, "x", testSalt(1))
			tt.mutate(c)
			if b, err := c.Encode(); !errors.Is(err, ErrInvalid) {
				t.Fatalf("Encode = %x, %v; want ErrInvalid", b, err)
			}
		})
	}
}

// TestEncodeSortsExtensions checks that Other is written in bytewise key
// order whatever its order in memory, so equal values encode equally.
func TestEncodeSortsExtensions(t *testing.T) {
	t.Parallel()
	c := NewText(alice, room, "x", testSalt(1))
	c.Extensions.Other = []Extension{
		{Key: ExtensionKey{Text: "a"}, Value: []byte{0xf5}},
		{Key: ExtensionKey{Int: -1}, Value: []byte{0x01}},
		{Key: ExtensionKey{Int: 24}, Value: []byte{0x02}},
	}
	b, err := c.Encode()
	if err != nil {
		t.Fatal(err)
	}
	want := decodeHex(t, strings.Replace(newTextHex(), extHex(), extHex("1818"+"02", "20"+"01", "6161"+"f5"), 1))
	if string(b) != string(want) {
		t.Fatalf("got %x\nwant %x", b, want)
	}
}

// newTextHex is NewText(alice, room, "x", testSalt(1)) written by hand.
func newTextHex() string {
	f := originalFields()
	f.salt = "50" + "01" + strings.Repeat("00", 15)
	f.body = "85" + "01" + "60" + "01" + textHex(MediaTypeMarkdown) + "4178"
	return f.hex()
}

// TestCheckExpiry covers the one-year plausibility window of Section 9.1.
func TestCheckExpiry(t *testing.T) {
	t.Parallel()
	const now = 1644389403 // the expiring example's timestamp, in seconds
	const year = 366 * 24 * 3600
	tests := []struct {
		name string
		exp  *Expiration
		ok   bool
	}{
		{"none", nil, true},
		{"example: 10 minutes ahead", &Expiration{Time: 1644390004}, true},
		{"absolute a year ahead", &Expiration{Time: now + year}, true},
		{"absolute past a year ahead", &Expiration{Time: now + year + 1}, false},
		{"absolute a year ago", &Expiration{Time: now - year}, true},
		{"absolute past a year ago", &Expiration{Time: now - year - 1}, false},
		{"relative a minute", &Expiration{Relative: true, Time: 60}, true},
		{"relative past a year", &Expiration{Relative: true, Time: year + 1}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c := NewText(alice, room, "x", testSalt(1))
			c.Expires = tt.exp
			err := c.CheckExpiry(now)
			if tt.ok != (err == nil) || (err != nil && !errors.Is(err, ErrExpiry)) {
				t.Fatalf("CheckExpiry = %v, want ok=%v", err, tt.ok)
			}
		})
	}
}

// TestCompareOrder checks the sort of Section 5.11: timestamp first, then
// the lexically lowest message ID.
func TestCompareOrder(t *testing.T) {
	t.Parallel()
	lo, hi := *idWith(1), *idWith(1)
	hi[5] = 9
	tests := []struct {
		name   string
		at, bt uint64
		a, b   MessageID
		want   int
	}{
		{"earlier timestamp wins over ID", 1, 2, hi, lo, -1},
		{"later timestamp", 3, 2, lo, hi, 1},
		{"tie broken by lower ID", 2, 2, lo, hi, -1},
		{"tie broken by higher ID", 2, 2, hi, lo, 1},
		{"same message", 2, 2, lo, lo, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := CompareOrder(tt.at, tt.a, tt.bt, tt.b); got != tt.want {
				t.Errorf("CompareOrder = %d, want %d", got, tt.want)
			}
		})
	}
}

// TestPure enforces the package's purity with the repository's import
// boundary checker: no os, net, log, crypto/rand, math/rand, clock or
// goroutines outside tests.
func TestPure(t *testing.T) {
	t.Parallel()
	dir, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "go.mod")); err != nil {
		t.Fatalf("module root not at %s: %v", dir, err)
	}
	mod := deptest.Module{Path: "github.com/rhizome-chat/rhizome", Dir: dir}
	vs, err := deptest.Check(mod, mod.Path+"/internal/mimicontent", deptest.PureCoreRules)
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range vs {
		t.Errorf("purity broken: %s", v)
	}
}
