package mimicontent

import (
	"fmt"
	"unicode/utf8"
)

// Encode returns the deterministic CBOR encoding (RFC 8949, Section 4.2.1)
// of c. It fails with an error matching [ErrInvalid] if c cannot be
// encoded as a mimiContent that [Decode] accepts: a missing Part, a
// MultiPart with fewer than two parts, nesting deeper than
// [MaxNestedPartDepth], more than [MaxParts] parts, an oversized topicId,
// text that is not UTF-8, a bad or duplicate extension key, or an
// extension value that is not one deterministic data item. It does not
// check the semantic rules of [Content.Validate].
func (c *Content) Encode() ([]byte, error) {
	if len(c.TopicID) > MaxTopicIDSize {
		return nil, invalid("topicId", "longer than 4096 octets")
	}
	b := appendArray(make([]byte, 0, 256), 7)
	b = appendBytes(b, c.Salt[:])
	b = appendOptionalID(b, c.Replaces)
	b = appendBytes(b, c.TopicID)
	if c.Expires == nil {
		b = appendNull(b)
	} else {
		b = appendArray(b, 2)
		b = appendBool(b, c.Expires.Relative)
		b = appendUint(b, uint64(c.Expires.Time))
	}
	b = appendOptionalID(b, c.InReplyTo)
	b, err := c.Extensions.append(b)
	if err != nil {
		return nil, err
	}
	parts := 0
	b, err = c.Body.append(b, 1, &parts)
	if err != nil {
		return nil, err
	}
	if len(b) > MaxSize {
		return nil, invalid("mimiContent", "encoding larger than MaxSize")
	}
	return b, nil
}

func appendOptionalID(b []byte, id *MessageID) []byte {
	if id == nil {
		return appendNull(b)
	}
	return appendBytes(b, id[:])
}

func (x *Extensions) append(b []byte) ([]byte, error) {
	var entries []mapEntry
	for _, uri := range []struct {
		key   int64
		value string
	}{{ExtensionSenderURI, x.SenderURI}, {ExtensionRoomURI, x.RoomURI}} {
		if uri.value == "" {
			continue
		}
		if !utf8.ValidString(uri.value) {
			return nil, invalid("mimiExtensions", "URI is not UTF-8")
		}
		entries = append(entries, mapEntry{appendInt(nil, uri.key), appendText(nil, uri.value)})
	}
	for i, e := range x.Other {
		field := fmt.Sprintf("mimiExtensions[%d]", i)
		key, err := e.Key.encode()
		if err != nil {
			return nil, invalid(field, err.Error())
		}
		if err := CheckRawValue(e.Value, MaxExtensionDepth-1); err != nil {
			return nil, invalid(field, "value: "+err.Error())
		}
		entries = append(entries, mapEntry{key, e.Value})
	}
	b, ok := appendMap(b, entries)
	if !ok {
		return nil, invalid("mimiExtensions", "duplicate key")
	}
	return b, nil
}

// encode returns the key's encoding after checking the rules of Sections
// 4.3 and 6.2. Keys 1 and 2 belong in SenderURI and RoomURI.
func (k ExtensionKey) encode() ([]byte, error) {
	if k.Text != "" {
		if len(k.Text) > MaxExtensionKeyText {
			return nil, fmt.Errorf("text key longer than 255 octets")
		}
		if !utf8.ValidString(k.Text) {
			return nil, fmt.Errorf("text key is not UTF-8")
		}
		return appendText(nil, k.Text), nil
	}
	if k.Int > maxSafeInt || k.Int < -maxSafeInt {
		return nil, fmt.Errorf("integer key outside ±(2^53-1)")
	}
	if k.Int == ExtensionSenderURI || k.Int == ExtensionRoomURI {
		return nil, fmt.Errorf("key %d goes in SenderURI or RoomURI", k.Int)
	}
	return appendInt(nil, k.Int), nil
}

func (p *NestedPart) append(b []byte, depth int, parts *int) ([]byte, error) {
	if depth > MaxNestedPartDepth {
		return nil, invalid("nestedPart", "nested more than 4 levels")
	}
	if *parts++; *parts > MaxParts {
		return nil, invalid("nestedPart", "more than 1024 parts")
	}
	if !utf8.ValidString(p.Language) {
		return nil, invalid("nestedPart.language", "not UTF-8")
	}
	if p.Part == nil {
		return nil, invalid("nestedPart", "no Part")
	}
	card := p.Part.Cardinality()
	b = appendArray(b, int(partItems[card]))
	b = appendUint(b, uint64(p.Disposition))
	b = appendText(b, p.Language)
	b = appendUint(b, uint64(card))
	switch part := p.Part.(type) {
	case NullPart:
		return b, nil
	case SinglePart:
		if !utf8.ValidString(part.ContentType) {
			return nil, invalid("nestedPart.contentType", "not UTF-8")
		}
		b = appendText(b, part.ContentType)
		return appendBytes(b, part.Content), nil
	case ExternalPart:
		for _, s := range []string{part.ContentType, part.URL, part.Description, part.Filename} {
			if !utf8.ValidString(s) {
				return nil, invalid("nestedPart", "ExternalPart text is not UTF-8")
			}
		}
		b = appendText(b, part.ContentType)
		b = appendText(b, part.URL)
		b = appendUint(b, uint64(part.Expires))
		b = appendUint(b, part.Size)
		b = appendUint(b, uint64(part.EncAlg))
		b = appendBytes(b, part.Key)
		b = appendBytes(b, part.Nonce)
		b = appendBytes(b, part.AAD)
		b = appendUint(b, uint64(part.HashAlg))
		b = appendBytes(b, part.ContentHash)
		b = appendText(b, part.Description)
		return appendText(b, part.Filename), nil
	case MultiPart:
		if part.PartSemantics > ProcessAll {
			return nil, invalid("nestedPart.partSemantics", "unknown value")
		}
		if len(part.Parts) < 2 {
			return nil, invalid("nestedPart.parts", "a MultiPart needs at least two parts")
		}
		b = appendUint(b, uint64(part.PartSemantics))
		b = appendArray(b, len(part.Parts))
		for i := range part.Parts {
			var err error
			if b, err = part.Parts[i].append(b, depth+1, parts); err != nil {
				return nil, err
			}
		}
		return b, nil
	}
	return nil, invalid("nestedPart", "unknown Part type")
}
