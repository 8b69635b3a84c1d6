package mimicontent

import "bytes"

// Constructors for the messages a chat client sends. Each sets the
// senderUri and roomUri extensions (which the message ID covers), and
// builds exactly the shape of the corresponding example in
// draft-ietf-mimi-content-08, Section 5: given the same inputs, the
// result encodes byte for byte like the draft's example. The salt is a
// parameter: callers draw it from a cryptographically secure source
// (Section 9.2).

func newContent(sender, room string, salt [SaltSize]byte, body NestedPart) *Content {
	return &Content{
		Salt:       salt,
		TopicID:    []byte{},
		Extensions: Extensions{SenderURI: sender, RoomURI: room},
		Body:       body,
	}
}

// markdownPart is a render SinglePart of GFM-MIMI markdown (Section 7.1.1).
func markdownPart(text string) NestedPart {
	return NestedPart{
		Disposition: DispositionRender,
		Part:        SinglePart{ContentType: MediaTypeMarkdown, Content: []byte(text)},
	}
}

// NewText returns a new message with text as GFM-MIMI markdown
// (Section 5.1). Text that must not be read as markdown should be escaped
// by the caller, or sent with [NewPlainText].
func NewText(sender, room, text string, salt [SaltSize]byte) *Content {
	return newContent(sender, room, salt, markdownPart(text))
}

// NewPlainText returns a new message with text as text/plain.
func NewPlainText(sender, room, text string, salt [SaltSize]byte) *Content {
	return newContent(sender, room, salt, NestedPart{
		Disposition: DispositionRender,
		Part:        SinglePart{ContentType: MediaTypePlainText, Content: []byte(text)},
	})
}

// Reply returns a markdown message replying to the message version with
// ID to (Section 5.2). Mentions are markdown links to the mentioned
// user's URI inside text (Section 5.4).
func Reply(sender, room string, to MessageID, text string, salt [SaltSize]byte) *Content {
	c := NewText(sender, room, text, salt)
	c.InReplyTo = &to
	return c
}

// Reaction returns a reaction to the message version with ID to: a
// text/plain SinglePart with the reaction disposition and inReplyTo set
// (Section 5.3). reaction is one reaction, typically one emoji; several
// reactions go in separate messages or in [Reactions], never concatenated.
func Reaction(sender, room string, to MessageID, reaction string, salt [SaltSize]byte) *Content {
	c := newContent(sender, room, salt, NestedPart{
		Disposition: DispositionReaction,
		Part:        SinglePart{ContentType: MediaTypePlainText, Content: []byte(reaction)},
	})
	c.InReplyTo = &to
	return c
}

// Reactions returns several reactions to one message as a processAll
// MultiPart with one reaction part each (Appendix B.2). It needs at least
// two reactions; use [Reaction] for one.
func Reactions(sender, room string, to MessageID, reactions []string, salt [SaltSize]byte) *Content {
	parts := make([]NestedPart, len(reactions))
	for i, r := range reactions {
		parts[i] = NestedPart{
			Disposition: DispositionReaction,
			Part:        SinglePart{ContentType: MediaTypePlainText, Content: []byte(r)},
		}
	}
	c := newContent(sender, room, salt, NestedPart{
		Disposition: DispositionReaction,
		Part:        MultiPart{PartSemantics: ProcessAll, Parts: parts},
	})
	c.InReplyTo = &to
	return c
}

// firstVersion returns the ID an edit or delete of prev must name in
// replaces: the first version of the message (Section 5.5). If prev is
// itself an edit, that is prev's own replaces; otherwise prevID.
func firstVersion(prev *Content, prevID MessageID) *MessageID {
	if prev.Replaces != nil {
		id := *prev.Replaces
		return &id
	}
	return &prevID
}

// Edit returns a new version of prev, whose message ID is prevID, with
// text as its GFM-MIMI markdown body (Section 5.5). replaces names the
// first version of the message; sender, room, topicId, expires and
// inReplyTo are those of prev, because an edit may change only the body
// (Section 9.3); the body keeps prev's disposition and language.
func Edit(prev *Content, prevID MessageID, text string, salt [SaltSize]byte) *Content {
	body := markdownPart(text)
	body.Disposition = prev.Body.Disposition
	body.Language = prev.Body.Language
	c := newContent(prev.Extensions.SenderURI, prev.Extensions.RoomURI, salt, body)
	c.Replaces = firstVersion(prev, prevID)
	c.TopicID = bytes.Clone(prev.TopicID)
	c.Expires = cloneExpiration(prev.Expires)
	c.InReplyTo = cloneID(prev.InReplyTo)
	return c
}

// Delete returns the retraction of prev, whose message ID is prevID: a
// NullPart body with replaces naming the first version (Section 5.6). The
// NullPart keeps prev's disposition, so deleting a reaction is an unlike
// (Section 5.7); sender, room, topicId and inReplyTo are those of prev.
func Delete(prev *Content, prevID MessageID, salt [SaltSize]byte) *Content {
	c := newContent(prev.Extensions.SenderURI, prev.Extensions.RoomURI, salt, NestedPart{
		Disposition: prev.Body.Disposition,
		Language:    prev.Body.Language,
		Part:        NullPart{},
	})
	c.Replaces = firstVersion(prev, prevID)
	c.TopicID = bytes.Clone(prev.TopicID)
	c.InReplyTo = cloneID(prev.InReplyTo)
	return c
}

// Attachment returns a message whose body is the external content ext
// with the attachment disposition and the given language (Section 5.9).
// Private content is encrypted before upload and ext carries the key
// material (Section 4.5).
func Attachment(sender, room, language string, ext ExternalPart, salt [SaltSize]byte) *Content {
	return newContent(sender, room, salt, NestedPart{
		Disposition: DispositionAttachment,
		Language:    language,
		Part:        ext,
	})
}

// Expiring returns a markdown message that receivers should delete as
// exp says (Section 5.8).
func Expiring(sender, room, text string, exp Expiration, salt [SaltSize]byte) *Content {
	c := NewText(sender, room, text, salt)
	c.Expires = &exp
	return c
}

func cloneID(id *MessageID) *MessageID {
	if id == nil {
		return nil
	}
	c := *id
	return &c
}

func cloneExpiration(e *Expiration) *Expiration {
	if e == nil {
		return nil
	}
	c := *e
	return &c
}
