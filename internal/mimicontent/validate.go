package mimicontent

import "bytes"

// Validate checks the rules of draft-ietf-mimi-content-08 that a single
// message can be held to, beyond what [Decode] already enforces:
//
//   - everything [Content.Encode] requires (parts, depth, sizes, UTF-8,
//     extension keys and values);
//   - replaces and inReplyTo start with a known hash algorithm octet
//     (0x01, SHA-256; Sections 3.3 and 9.1);
//   - replaces and inReplyTo differ;
//   - a NullPart is the whole body and only with replaces set: a delete or
//     an unlike (Sections 4.4, 5.6, 5.7);
//   - a reaction (body disposition reaction, not a NullPart) names its
//     target in inReplyTo (Section 5.3).
//
// Rules that need other messages (reply loops, edits only by the original
// sender) are in [ValidateReplacement] and the client; rules that need the
// clock are in [Content.CheckExpiry]. Errors match [ErrInvalid].
func (c *Content) Validate() error {
	if _, err := c.Encode(); err != nil {
		return err
	}
	for _, ref := range []struct {
		field string
		id    *MessageID
	}{{"replaces", c.Replaces}, {"inReplyTo", c.InReplyTo}} {
		if ref.id != nil && ref.id.HashAlg() != HashAlgSHA256 {
			return invalidErr(ref.field, ErrUnknownHashAlg, "")
		}
	}
	if c.Replaces != nil && c.InReplyTo != nil && *c.Replaces == *c.InReplyTo {
		return invalidErr("replaces", ErrSelfReference, "")
	}
	if _, ok := c.Body.Part.(NullPart); ok && c.Replaces == nil {
		return invalidErr("nestedPart", ErrNullBody, "an empty body needs replaces")
	}
	if m, ok := c.Body.Part.(MultiPart); ok && hasNullPart(m) {
		return invalidErr("nestedPart", ErrNullBody, "NullPart inside a MultiPart")
	}
	if c.Body.Disposition == DispositionReaction && c.InReplyTo == nil {
		if _, ok := c.Body.Part.(NullPart); !ok {
			return invalidErr("inReplyTo", ErrReactionTarget, "")
		}
	}
	return nil
}

func hasNullPart(m MultiPart) bool {
	for _, p := range m.Parts {
		switch part := p.Part.(type) {
		case NullPart:
			return true
		case MultiPart:
			if hasNullPart(part) {
				return true
			}
		}
	}
	return false
}

// ValidateReplacement checks that repl may edit or delete orig, whose
// message ID is origID (Sections 5.5 and 9.3): repl has replaces set to
// the first version of orig, comes from the same sender in the same room,
// and keeps orig's topicId and inReplyTo, since only the NestedPart may
// change. Expiry is not compared. It relies on the senderUri extensions;
// the client must have checked each against the MLS-authenticated sender.
// A room policy that lets moderators edit or delete is the caller's
// business. Errors match [ErrInvalid].
func ValidateReplacement(orig *Content, origID MessageID, repl *Content) error {
	if repl.Replaces == nil {
		return invalidErr("replaces", ErrChangedSemantics, "not a replacement")
	}
	if *repl.Replaces != *firstVersion(orig, origID) {
		return invalidErr("replaces", ErrChangedSemantics, "does not name the first version")
	}
	if repl.Extensions.SenderURI != orig.Extensions.SenderURI {
		return invalidErr("senderUri", ErrNotOriginalSender, "")
	}
	if repl.Extensions.RoomURI != orig.Extensions.RoomURI {
		return invalidErr("roomUri", ErrChangedSemantics, "different room")
	}
	if !bytes.Equal(repl.TopicID, orig.TopicID) {
		return invalidErr("topicId", ErrChangedSemantics, "")
	}
	if (repl.InReplyTo == nil) != (orig.InReplyTo == nil) ||
		(repl.InReplyTo != nil && *repl.InReplyTo != *orig.InReplyTo) {
		return invalidErr("inReplyTo", ErrChangedSemantics, "")
	}
	return nil
}

// CheckReplyChain follows the inReplyTo chain of a received message, whose
// ID is id and whose inReplyTo field is inReplyTo, and reports
// [ErrReplyLoop] if the chain comes back to a message already on it
// (Section 4.1). parent returns the inReplyTo of a stored message, or
// false if the message is unknown or not a reply; an unknown target is
// legitimate (it may predate the client's join, Section 9.1) and ends the
// walk. The walk ends because every step visits a new stored message.
func CheckReplyChain(id MessageID, inReplyTo *MessageID, parent func(MessageID) (MessageID, bool)) error {
	seen := map[MessageID]bool{id: true}
	for next := inReplyTo; next != nil; {
		if seen[*next] {
			return invalidErr("inReplyTo", ErrReplyLoop, "chain returns to "+next.String())
		}
		seen[*next] = true
		p, ok := parent(*next)
		if !ok {
			return nil
		}
		next = &p
	}
	return nil
}

// maxExpiryDistance is how far from now an expiration may lie (Section
// 9.1 says a year; we allow a leap year).
const maxExpiryDistance = 366 * 24 * 60 * 60

// CheckExpiry checks the expires field against now, in seconds since the
// UNIX epoch (Section 9.1): an absolute expiration may lie at most a year
// in the past or future, a relative one at most a year ahead. A nil
// Expires passes. Errors match [ErrInvalid] and [ErrExpiry].
func (c *Content) CheckExpiry(now int64) error {
	e := c.Expires
	if e == nil {
		return nil
	}
	if e.Relative {
		if int64(e.Time) > maxExpiryDistance {
			return invalidErr("expires", ErrExpiry, "relative expiry more than a year")
		}
		return nil
	}
	if d := int64(e.Time) - now; d > maxExpiryDistance || d < -maxExpiryDistance {
		return invalidErr("expires", ErrExpiry, "absolute expiry more than a year away")
	}
	return nil
}

// Kind classifies a message by the fields that give it meaning.
type Kind uint8

// Kinds of message (Section 5).
const (
	KindNew      Kind = iota // a new message
	KindReply                // inReplyTo set, not a reaction (Section 5.2)
	KindReaction             // reaction disposition (Section 5.3)
	KindEdit                 // replaces set, body not a NullPart (Section 5.5)
	KindDelete               // replaces set, NullPart body (Section 5.6)
	KindUnlike               // a delete whose NullPart has the reaction disposition (Section 5.7)
)

// String returns the kind's name.
func (k Kind) String() string {
	switch k {
	case KindNew:
		return "new"
	case KindReply:
		return "reply"
	case KindReaction:
		return "reaction"
	case KindEdit:
		return "edit"
	case KindDelete:
		return "delete"
	case KindUnlike:
		return "unlike"
	}
	return "unknown"
}

// Kind classifies c. Unknown dispositions count as render (Section 9.1).
func (c *Content) Kind() Kind {
	_, null := c.Body.Part.(NullPart)
	reaction := c.Body.Disposition.Effective() == DispositionReaction
	switch {
	case c.Replaces != nil && null && reaction:
		return KindUnlike
	case c.Replaces != nil && null:
		return KindDelete
	case c.Replaces != nil:
		return KindEdit
	case reaction:
		return KindReaction
	case c.InReplyTo != nil:
		return KindReply
	}
	return KindNew
}
