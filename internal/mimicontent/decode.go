package mimicontent

import (
	"bytes"
	"math"
	"unicode/utf8"
)

// Decode parses one mimiContent message. It accepts only the deterministic
// encoding (RFC 8949, Section 4.2.1) of a value matching the CDDL of
// draft-ietf-mimi-content-08, Appendix A.1, within the draft's depth
// restrictions and our bounds ([MaxSize], [MaxParts], [MaxTopicIDSize]);
// so encoding the result gives back exactly b. Every error is a
// [*DecodeError] matching [ErrMalformed]. Decode does not check the
// semantic rules of [Content.Validate].
func Decode(b []byte) (*Content, error) {
	if len(b) > MaxSize {
		return nil, &DecodeError{Detail: "message larger than MaxSize", Err: ErrTooLarge}
	}
	d := &decoder{data: b}
	c, err := d.content()
	if err != nil {
		return nil, err
	}
	if err := d.end(); err != nil {
		return nil, err
	}
	return c, nil
}

func (d *decoder) content() (*Content, error) {
	var c Content
	d.field = "mimiContent"
	if _, err := d.array(7, 7); err != nil {
		return nil, err
	}
	d.field = "salt"
	salt, start, err := d.expect(majorBytes, "byte string")
	if err != nil {
		return nil, err
	}
	if salt != SaltSize {
		return nil, d.fail(start, ErrSchema, "salt is not 16 octets")
	}
	s, err := d.payload(salt, start)
	if err != nil {
		return nil, err
	}
	copy(c.Salt[:], s)
	d.field = "replaces"
	if c.Replaces, err = d.optionalMessageID(); err != nil {
		return nil, err
	}
	d.field = "topicId"
	tstart := d.off
	if c.TopicID, err = d.bytes(); err != nil {
		return nil, err
	}
	if len(c.TopicID) > MaxTopicIDSize {
		return nil, d.fail(tstart, ErrTooLarge, "topicId longer than 4096 octets")
	}
	d.field = "expires"
	if !d.null() {
		if _, err := d.array(2, 2); err != nil {
			return nil, err
		}
		var e Expiration
		if e.Relative, err = d.bool(); err != nil {
			return nil, err
		}
		t, err := d.uint(math.MaxUint32)
		if err != nil {
			return nil, err
		}
		e.Time = uint32(t)
		c.Expires = &e
	}
	d.field = "inReplyTo"
	if c.InReplyTo, err = d.optionalMessageID(); err != nil {
		return nil, err
	}
	d.field = "mimiExtensions"
	if err := d.extensions(&c.Extensions); err != nil {
		return nil, err
	}
	parts := 0
	if err := d.nestedPart(&c.Body, 1, &parts); err != nil {
		return nil, err
	}
	return &c, nil
}

// optionalMessageID reads null / MessageId.
func (d *decoder) optionalMessageID() (*MessageID, error) {
	if d.null() {
		return nil, nil
	}
	n, start, err := d.expect(majorBytes, "null or message ID")
	if err != nil {
		return nil, err
	}
	if n != MessageIDSize {
		return nil, d.fail(start, ErrSchema, "message ID is not 32 octets")
	}
	b, err := d.payload(n, start)
	if err != nil {
		return nil, err
	}
	var id MessageID
	copy(id[:], b)
	return &id, nil
}

// extensions reads the mimiExtensions map (Section 4.3): keys are integers
// within ±(2^53-1) or text of 1 to 255 octets, sorted and unique; keys 1
// and 2 carry non-empty text; other values are kept as encoded.
func (d *decoder) extensions(x *Extensions) error {
	n, start, err := d.expect(majorMap, "map")
	if err != nil {
		return err
	}
	if n > uint64(len(d.data)-d.off)/2 {
		return d.fail(start, ErrTruncated, "map longer than input")
	}
	var prev []byte
	for range n {
		kstart := d.off
		key, err := d.extensionKey()
		if err != nil {
			return err
		}
		if err := d.checkKeyOrder(prev, d.data[kstart:d.off], kstart); err != nil {
			return err
		}
		prev = d.data[kstart:d.off]
		if key.Text == "" && (key.Int == ExtensionSenderURI || key.Int == ExtensionRoomURI) {
			vstart := d.off
			s, err := d.text()
			if err != nil {
				return err
			}
			if s == "" {
				return d.fail(vstart, ErrSchema, "empty senderUri or roomUri")
			}
			if key.Int == ExtensionSenderURI {
				x.SenderURI = s
			} else {
				x.RoomURI = s
			}
			continue
		}
		v, err := d.item(1, MaxExtensionDepth)
		if err != nil {
			return err
		}
		x.Other = append(x.Other, Extension{Key: key, Value: bytes.Clone(v)})
	}
	return nil
}

func (d *decoder) extensionKey() (ExtensionKey, error) {
	m, arg, start, err := d.head()
	if err != nil {
		return ExtensionKey{}, err
	}
	switch m {
	case majorUint:
		if arg > maxSafeInt {
			return ExtensionKey{}, d.fail(start, ErrSchema, "extension key beyond 2^53-1")
		}
		return ExtensionKey{Int: int64(arg)}, nil
	case majorNeg:
		if arg > maxSafeInt-1 {
			return ExtensionKey{}, d.fail(start, ErrSchema, "extension key beyond -(2^53-1)")
		}
		return ExtensionKey{Int: -1 - int64(arg)}, nil
	case majorText:
		b, err := d.payload(arg, start)
		if err != nil {
			return ExtensionKey{}, err
		}
		if len(b) == 0 || len(b) > MaxExtensionKeyText {
			return ExtensionKey{}, d.fail(start, ErrSchema, "text extension key not 1 to 255 octets")
		}
		if !utf8.Valid(b) {
			return ExtensionKey{}, d.fail(start, ErrInvalidUTF8, "")
		}
		return ExtensionKey{Text: string(b)}, nil
	}
	return ExtensionKey{}, d.fail(start, ErrSchema, "extension key must be an integer or text")
}

// partItems is the array length of a NestedPart for each cardinality.
var partItems = [...]uint64{CardinalityNull: 3, CardinalitySingle: 5, CardinalityExternal: 15, CardinalityMulti: 5}

// nestedPart reads a NestedPart at the given depth (the body is depth 1),
// counting parts into *parts.
func (d *decoder) nestedPart(p *NestedPart, depth int, parts *int) error {
	d.field = "nestedPart"
	at := d.off
	if depth > MaxNestedPartDepth {
		return d.fail(at, ErrTooDeep, "NestedParts nested more than 4 levels")
	}
	*parts++
	if *parts > MaxParts {
		return d.fail(at, ErrTooLarge, "more than 1024 parts")
	}
	n, err := d.array(3, 15)
	if err != nil {
		return err
	}
	d.field = "nestedPart.disposition"
	disp, err := d.uint(math.MaxUint8)
	if err != nil {
		return err
	}
	p.Disposition = Disposition(disp)
	d.field = "nestedPart.language"
	if p.Language, err = d.text(); err != nil {
		return err
	}
	d.field = "nestedPart.cardinality"
	cstart := d.off
	card, err := d.uint(math.MaxUint8)
	if err != nil {
		return err
	}
	if card >= uint64(len(partItems)) {
		return d.fail(cstart, ErrSchema, "unknown cardinality")
	}
	if n != partItems[card] {
		return d.fail(at, ErrSchema, "wrong number of items for the cardinality")
	}
	switch Cardinality(card) {
	case CardinalityNull:
		p.Part = NullPart{}
	case CardinalitySingle:
		var s SinglePart
		d.field = "nestedPart.contentType"
		if s.ContentType, err = d.text(); err != nil {
			return err
		}
		d.field = "nestedPart.content"
		if s.Content, err = d.bytes(); err != nil {
			return err
		}
		p.Part = s
	case CardinalityExternal:
		e, err := d.externalPart()
		if err != nil {
			return err
		}
		p.Part = e
	case CardinalityMulti:
		m, err := d.multiPart(depth, parts)
		if err != nil {
			return err
		}
		p.Part = m
	}
	return nil
}

func (d *decoder) externalPart() (ExternalPart, error) {
	var e ExternalPart
	var err error
	var v uint64
	steps := []struct {
		field string
		read  func() error
	}{
		{"contentType", func() error { e.ContentType, err = d.text(); return err }},
		{"url", func() error { e.URL, err = d.text(); return err }},
		{"expires", func() error { v, err = d.uint(math.MaxUint32); e.Expires = uint32(v); return err }},
		{"size", func() error { e.Size, err = d.uint(math.MaxUint64); return err }},
		{"encAlg", func() error { v, err = d.uint(math.MaxUint16); e.EncAlg = uint16(v); return err }},
		{"key", func() error { e.Key, err = d.bytes(); return err }},
		{"nonce", func() error { e.Nonce, err = d.bytes(); return err }},
		{"aad", func() error { e.AAD, err = d.bytes(); return err }},
		{"hashAlg", func() error { v, err = d.uint(math.MaxUint8); e.HashAlg = uint8(v); return err }},
		{"contentHash", func() error { e.ContentHash, err = d.bytes(); return err }},
		{"description", func() error { e.Description, err = d.text(); return err }},
		{"filename", func() error { e.Filename, err = d.text(); return err }},
	}
	for _, s := range steps {
		d.field = "nestedPart." + s.field
		if err := s.read(); err != nil {
			return ExternalPart{}, err
		}
	}
	return e, nil
}

func (d *decoder) multiPart(depth int, parts *int) (MultiPart, error) {
	var m MultiPart
	d.field = "nestedPart.partSemantics"
	pstart := d.off
	ps, err := d.uint(math.MaxUint8)
	if err != nil {
		return m, err
	}
	if PartSemantics(ps) > ProcessAll {
		// Section 9.1: an unknown PartSemantics marks a bogus message.
		return m, d.fail(pstart, ErrSchema, "unknown partSemantics")
	}
	m.PartSemantics = PartSemantics(ps)
	d.field = "nestedPart.parts"
	n, err := d.array(2, math.MaxUint64)
	if err != nil {
		return m, err
	}
	m.Parts = make([]NestedPart, n)
	for i := range m.Parts {
		if err := d.nestedPart(&m.Parts[i], depth+1, parts); err != nil {
			return m, err
		}
	}
	return m, nil
}
