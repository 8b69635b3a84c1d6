package mimicontent

import (
	"bytes"
	"encoding/hex"
	"errors"
	"testing"
)

// Inputs of the draft's examples, typed in from the .edn files.
const (
	alice = "mimi://example.com/u/alice-smith"
	bob   = "mimi://example.com/u/bob-jones"
	cathy = "mimi://example.com/u/cathy-washington"
	room  = "mimi://example.com/r/engineering_team"
)

func saltHex(t testing.TB, s string) [SaltSize]byte {
	t.Helper()
	var salt [SaltSize]byte
	b, err := hex.DecodeString(s)
	if err != nil || len(b) != SaltSize {
		t.Fatalf("bad salt %q", s)
	}
	copy(salt[:], b)
	return salt
}

func mustHex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func decodeExample(t testing.TB, ex example) *Content {
	t.Helper()
	c, err := Decode(ex.cbor)
	if err != nil {
		t.Fatalf("decode %s: %v", ex.name, err)
	}
	return c
}

// TestHelpersReproduceExamples builds each example of Section 5 and
// Appendix B with the constructors, from the inputs printed in the draft,
// and compares the encoding with the example file and the ID with the EDN.
func TestHelpersReproduceExamples(t *testing.T) {
	t.Parallel()
	original := loadExample(t, "original")
	reply := loadExample(t, "reply")
	reaction := loadExample(t, "reaction")
	html := func(s string) SinglePart {
		return SinglePart{ContentType: "text/html;charset=utf-8", Content: []byte(s)}
	}
	single := func(disp Disposition, lang, ct string, content []byte) NestedPart {
		return NestedPart{Disposition: disp, Language: lang, Part: SinglePart{ContentType: ct, Content: content}}
	}
	multi := func(sem PartSemantics, parts ...NestedPart) NestedPart {
		return NestedPart{Disposition: DispositionRender, Part: MultiPart{PartSemantics: sem, Parts: parts}}
	}
	welcome := func(cid string) NestedPart {
		return multi(ChooseOne,
			NestedPart{Disposition: DispositionRender, Language: "en", Part: html(
				"<html><body><h1>Welcome!</h1>\n<img src=\"cid:" + cid + "@local.invalid\" alt=\"Welcome image\"/>\n</body></html>")},
			NestedPart{Disposition: DispositionRender, Language: "fr", Part: html(
				"<html><body><h1>Bienvenue!</h1>\n<img src=\"cid:" + cid + "@local.invalid\" alt=\"Image bienvenue\"/>\n</body></html>")},
		)
	}

	tests := []struct {
		name  string
		build func(t *testing.T) *Content
	}{
		{"original", func(t *testing.T) *Content {
			return NewText(alice, room, "Hi everyone, we just shipped release 2.0. __Good  work__!",
				saltHex(t, "5eed9406c2545547ab6f09f20a18b003"))
		}},
		{"reply", func(t *testing.T) *Content {
			return Reply(bob, room, original.id, "Right on! _Congratulations_ 'all!",
				saltHex(t, "11a458c73b8dd2cf404db4b378b8fe4d"))
		}},
		{"reaction", func(t *testing.T) *Content {
			// The EDN comment says U+2665, but its bytes e2 9d a4 are U+2764.
			return Reaction(cathy, room, original.id, "\u2764", saltHex(t, "d37bc0e6a8b4f04e9e6382375f587bf6"))
		}},
		{"mention", func(t *testing.T) *Content {
			return Reply(cathy, room, original.id,
				"Kudos to [@Alice Smith](mimi://example.com/u/alice-smith) for making the release happen!",
				saltHex(t, "04f290e215d0f82d1750bfa8b7dc089d"))
		}},
		{"mention-html", func(t *testing.T) *Content {
			c := Reply(cathy, room, original.id, "", saltHex(t, "15d9705fd5bf5e02b0af47c85f8b98fe"))
			c.Body.Part = html(`<p>Kudos to <a href="mimi://example.com/u/alice-smith">@Alice Smith</a> for making the release happen!</p>`)
			return c
		}},
		{"edit", func(t *testing.T) *Content {
			return Edit(decodeExample(t, reply), reply.id, "Right on! _Congratulations_ y'all!",
				saltHex(t, "b8c2e6d8800ecf45df39be6c45f4c042"))
		}},
		{"delete", func(t *testing.T) *Content {
			return Delete(decodeExample(t, reply), reply.id, saltHex(t, "0a590d73b2c7761c39168be5ebf7f2e6"))
		}},
		{"unlike", func(t *testing.T) *Content {
			return Delete(decodeExample(t, reaction), reaction.id, saltHex(t, "c5ba86dc9fd272e58ca52ec805b79199"))
		}},
		{"expiring", func(t *testing.T) *Content {
			return Expiring(alice, room, "__*VPN GOING DOWN*__ I'm rebooting the VPN in ten minutes unless anyone objects.",
				Expiration{Relative: false, Time: 1644390004}, saltHex(t, "33be993eb39f418f9295afc2ae160d2d"))
		}},
		{"attachment", func(t *testing.T) *Content {
			return Attachment(bob, room, "en", ExternalPart{
				ContentType: "video/mp4",
				URL:         "https://example.com/storage/8ksB4bSrrRE.mp4",
				Size:        708234961,
				EncAlg:      EncAlgAES128GCM,
				Key:         mustHex(t, "21399320958a6f4c745dde670d95e0d8"),
				Nonce:       mustHex(t, "c86cf2c33f21527d1dd76f5b"),
				HashAlg:     HashAlgSHA256,
				ContentHash: mustHex(t, "9ab17a8cf0890baaae7ee016c7312fcc080ba46498389458ee44f0276e783163"),
				Description: "2 hours of key signing video",
				Filename:    "bigfile.mp4",
			}, saltHex(t, "18fac6371e4e53f1aeaf8a013155c166"))
		}},
		{"conferencing", func(t *testing.T) *Content {
			c := NewText(alice, room, "", saltHex(t, "678ac6cd54de049c3e9665cd212470fa"))
			c.TopicID = []byte("Foo 118")
			c.Body = NestedPart{Disposition: DispositionSession, Part: ExternalPart{
				URL:         "https://example.com/join/12345",
				Description: "Join the Foo 118 conference",
			}}
			return c
		}},
		{"multipart-1", func(t *testing.T) *Content {
			c := NewText(alice, room, "", saltHex(t, "261c953e178af653fe3d42641b91d814"))
			c.Body = multi(ChooseOne,
				single(DispositionRender, "", MediaTypeMarkdown, []byte("# Welcome!")),
				single(DispositionRender, "", "application/vnd.examplevendor-fancy-im-message", mustHex(t, "dc861ebaa718fd7c3ca159f71a2001")))
			return c
		}},
		{"multipart-2", func(t *testing.T) *Content {
			c := Reactions(alice, room, original.id, []string{"\u2764", "\U0001F973", "\U0001F91E"},
				saltHex(t, "8528dc2d92e4f1944d62042907ab94d0"))
			c.InReplyTo = nil // Appendix B.2 names no target
			return c
		}},
		{"multipart-3", func(t *testing.T) *Content {
			c := NewText(alice, room, "", saltHex(t, "b8362793168d18c049b882d4642a2274"))
			c.Body = multi(ChooseOne,
				multi(ProcessAll, welcome("5"), single(DispositionInline, "", "image/gif", mustHex(t, "dc861ebaa718fd7c3ca159f71a2001a7"))),
				multi(ProcessAll, welcome("10"), single(DispositionInline, "", "image/png", mustHex(t, "fa444237451a05a72bb0f67037cc1669"))),
			)
			return c
		}},
	}
	if len(tests) != len(exampleNames) {
		t.Fatalf("%d helper cases for %d examples", len(tests), len(exampleNames))
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ex := loadExample(t, tt.name)
			enc, id, err := tt.build(t).EncodeWithID()
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(enc, ex.cbor) {
				t.Errorf("encoding differs from %s.cbor:\n got %x\nwant %x", tt.name, enc, ex.cbor)
			}
			if id != ex.id {
				t.Errorf("message ID = %s, EDN says %s", id, ex.id)
			}
		})
	}
}

// TestEditChain checks that editing or deleting an edit still names the
// first version (Section 5.5) and that ValidateReplacement enforces it.
func TestEditChain(t *testing.T) {
	t.Parallel()
	reply := loadExample(t, "reply")
	edit := loadExample(t, "edit")
	replyC, editC := decodeExample(t, reply), decodeExample(t, edit)

	second := Edit(editC, edit.id, "third version", saltHex(t, "000102030405060708090a0b0c0d0e0f"))
	if *second.Replaces != reply.id {
		t.Errorf("edit of an edit replaces %s, want first version %s", second.Replaces, reply.id)
	}
	if err := ValidateReplacement(editC, edit.id, second); err != nil {
		t.Errorf("ValidateReplacement(second edit): %v", err)
	}
	del := Delete(editC, edit.id, saltHex(t, "0f0e0d0c0b0a09080706050403020100"))
	if *del.Replaces != reply.id || del.Kind() != KindDelete {
		t.Errorf("delete of an edit: replaces %s kind %v", del.Replaces, del.Kind())
	}

	for _, name := range []string{"edit", "delete"} {
		ex := loadExample(t, name)
		if err := ValidateReplacement(replyC, reply.id, decodeExample(t, ex)); err != nil {
			t.Errorf("ValidateReplacement(reply, %s): %v", name, err)
		}
	}
	reaction := loadExample(t, "reaction")
	if err := ValidateReplacement(decodeExample(t, reaction), reaction.id, decodeExample(t, loadExample(t, "unlike"))); err != nil {
		t.Errorf("ValidateReplacement(reaction, unlike): %v", err)
	}
}

// TestValidateReplacementRejects covers each rule of Section 9.3 that
// ValidateReplacement enforces.
func TestValidateReplacementRejects(t *testing.T) {
	t.Parallel()
	reply := loadExample(t, "reply")
	orig := decodeExample(t, reply)
	salt := saltHex(t, "00000000000000000000000000000001")
	other := loadExample(t, "original").id
	tests := []struct {
		name   string
		mutate func(c *Content)
		want   error
	}{
		{"not a replacement", func(c *Content) { c.Replaces = nil }, ErrChangedSemantics},
		{"wrong target", func(c *Content) { c.Replaces = &other }, ErrChangedSemantics},
		{"other sender", func(c *Content) { c.Extensions.SenderURI = cathy }, ErrNotOriginalSender},
		{"other room", func(c *Content) { c.Extensions.RoomURI = "mimi://example.com/r/other" }, ErrChangedSemantics},
		{"topic changed", func(c *Content) { c.TopicID = []byte("t") }, ErrChangedSemantics},
		{"inReplyTo dropped", func(c *Content) { c.InReplyTo = nil }, ErrChangedSemantics},
		{"inReplyTo changed", func(c *Content) { id := reply.id; c.InReplyTo = &id }, ErrChangedSemantics},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c := Edit(orig, reply.id, "x", salt)
			tt.mutate(c)
			err := ValidateReplacement(orig, reply.id, c)
			if !errors.Is(err, tt.want) || !errors.Is(err, ErrInvalid) {
				t.Errorf("err = %v, want %v", err, tt.want)
			}
		})
	}
}

// TestHelpersDoNotAlias checks that a reply or edit does not share
// memory with the message it was built from.
func TestHelpersDoNotAlias(t *testing.T) {
	t.Parallel()
	reply := loadExample(t, "reply")
	prev := decodeExample(t, reply)
	e := Edit(prev, reply.id, "x", saltHex(t, "00000000000000000000000000000002"))
	e.InReplyTo[0] ^= 0xff
	prev.Replaces = &reply.id
	if *prev.InReplyTo != loadExample(t, "original").id || e.Replaces == prev.Replaces {
		t.Error("Edit shares pointers with prev")
	}
}
