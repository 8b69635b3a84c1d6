// Package mimicontent implements the MIMI content format,
// draft-ietf-mimi-content-08: the body of every Rhizome chat message.
//
// A message is a [Content], encoded as deterministic CBOR. [Decode] parses
// peer bytes strictly and [Content.Encode] produces the one accepted
// encoding, so decode-then-encode is the identity on every accepted input.
// [ComputeMessageID] derives the message ID that replies, reactions,
// edits and deletes refer to. Constructors ([NewText], [Reply],
// [Reaction], [Edit], [Delete], [Attachment], [Expiring]) build the
// message shapes of the draft's Section 5.
//
// # Deterministic CBOR
//
// The package carries its own small CBOR codec (cbor*.go), limited to
// what the format needs. It enforces the core deterministic encoding of
// RFC 8949, Section 4.2.1, and the data model restrictions of the draft's
// Section 6: shortest integers, lengths, tags and floats; definite
// lengths; map keys sorted bytewise by encoding and unique; UTF-8 text;
// no undefined or other simple values; the only NaN is f9 7e00; at most
// four levels of NestedPart and of extension nesting. Extension values
// other than senderUri and roomUri are kept as their validated encoding.
//
// # Why our own codec
//
// The message ID hashes the sender's exact bytes, and Rhizome re-sends a
// message from a losing branch under the same ID, so the encoding must be
// a pure function of the value. A general CBOR library accepts many
// encodings of one value; a strict decoder that rejects all but one makes
// parse-then-encode the identity, which the fuzz test checks.
//
// # Purity
//
// The package does no I/O, reads no clock and draws no randomness: the
// salt and any time are parameters.
//
// See docs/content.md for the decisions where the draft leaves room.
package mimicontent
