package mimicontent

import (
	"bytes"
	"math"
)

// DerivedValues are the values a client knows about a message without
// their being in it: the MessageDerivedValues array of
// draft-ietf-mimi-content-08, Section 4.6 and Appendix A.2. The draft gives
// it a CDDL and an encoding (examples/implied-original), although it never
// travels inside a message; Rhizome's client may use it to store them.
type DerivedValues struct {
	MessageID       MessageID // computed by ComputeMessageID
	Timestamp       Timestamp // hubAcceptedTimestamp
	MLSGroupID      []byte    // {12}
	SenderLeafIndex uint32    // {13}
	SenderClientURL string    // {14}
	SenderUserURL   string    // {15} "From"
	RoomURL         string    // {16} "To"
}

// Timestamp is the hub accepted timestamp (Sections 3.4 and 4.6): either
// whole milliseconds since the UNIX epoch, or an RFC 9581 extended time
// (tag 1001 around a map), kept as encoded in Extended.
type Timestamp struct {
	Millis   uint64
	Extended []byte // the whole tag-1001 data item; nil when Millis is used
}

// tagExtendedTime is the RFC 9581 extended time tag.
const tagExtendedTime = 1001

// DecodeDerivedValues parses a MessageDerivedValues array with the same
// strictness as [Decode]. Errors match [ErrMalformed].
func DecodeDerivedValues(b []byte) (*DerivedValues, error) {
	if len(b) > MaxSize {
		return nil, &DecodeError{Detail: "larger than MaxSize", Err: ErrTooLarge}
	}
	var v DerivedValues
	d := &decoder{data: b, field: "MessageDerivedValues"}
	if _, err := d.array(7, 7); err != nil {
		return nil, err
	}
	d.field = "messageId"
	id, err := d.optionalMessageID()
	if err != nil {
		return nil, err
	}
	if id == nil {
		return nil, d.fail(d.off-1, ErrSchema, "messageId is null")
	}
	v.MessageID = *id
	d.field = "hubAcceptedTimestamp"
	if v.Timestamp, err = d.timestamp(); err != nil {
		return nil, err
	}
	d.field = "mlsGroupId"
	if v.MLSGroupID, err = d.bytes(); err != nil {
		return nil, err
	}
	d.field = "senderLeafIndex"
	leaf, err := d.uint(math.MaxUint32)
	if err != nil {
		return nil, err
	}
	v.SenderLeafIndex = uint32(leaf)
	for _, f := range []struct {
		name string
		dst  *string
	}{{"senderClientUrl", &v.SenderClientURL}, {"senderUserUrl", &v.SenderUserURL}, {"roomUrl", &v.RoomURL}} {
		d.field = f.name
		if *f.dst, err = d.text(); err != nil {
			return nil, err
		}
	}
	if err := d.end(); err != nil {
		return nil, err
	}
	return &v, nil
}

// timestamp reads MsecsSinceEpoch / ExtendedTime.
func (d *decoder) timestamp() (Timestamp, error) {
	begin := d.off
	m, arg, start, err := d.head()
	if err != nil {
		return Timestamp{}, err
	}
	switch {
	case m == majorUint:
		return Timestamp{Millis: arg}, nil
	case m != majorTag || arg != tagExtendedTime:
		return Timestamp{}, d.fail(start, ErrSchema, "expected milliseconds or tag 1001")
	case d.off >= len(d.data) || d.data[d.off]>>5 != majorMap:
		return Timestamp{}, d.fail(d.off, ErrSchema, "tag 1001 must hold a map")
	}
	if _, err := d.item(1, MaxExtensionDepth); err != nil {
		return Timestamp{}, err
	}
	return Timestamp{Extended: bytes.Clone(d.data[begin:d.off])}, nil
}

// Encode returns the deterministic encoding of v. Errors match
// [ErrInvalid].
func (v *DerivedValues) Encode() ([]byte, error) {
	b := appendArray(nil, 7)
	b = appendBytes(b, v.MessageID[:])
	if v.Timestamp.Extended != nil {
		d := &decoder{data: v.Timestamp.Extended}
		ts, err := d.timestamp()
		if err == nil {
			err = d.end()
		}
		if err != nil || ts.Extended == nil {
			return nil, invalid("hubAcceptedTimestamp", "Extended is not one tag-1001 item")
		}
		b = append(b, v.Timestamp.Extended...)
	} else {
		b = appendUint(b, v.Timestamp.Millis)
	}
	b = appendBytes(b, v.MLSGroupID)
	b = appendUint(b, uint64(v.SenderLeafIndex))
	b = appendText(b, v.SenderClientURL)
	b = appendText(b, v.SenderUserURL)
	b = appendText(b, v.RoomURL)
	return b, nil
}
