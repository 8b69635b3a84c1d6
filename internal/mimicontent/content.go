package mimicontent

// Content is one MIMI content message, the mimiContent array of
// draft-ietf-mimi-content-08, Section 4.1:
//
//	mimiContent = [
//	  salt: bstr .size 16,
//	  replaces: null / MessageId,       ; {1}
//	  topicId: bstr,                    ; {2}
//	  expires: null / Expiration,       ; {3}
//	  inReplyTo: null / MessageId,      ; {4}
//	  mimiExtensions: extensions,       ; {6}
//	  nestedPart: NestedPart            ; {7}
//	]
type Content struct {
	// Salt is the per-message random salt. It must come from a
	// cryptographically secure source (Section 9.2); this package never
	// generates it.
	Salt [SaltSize]byte
	// Replaces is the ID of the first version of the message this one
	// edits or deletes, or nil (Sections 5.5 to 5.7).
	Replaces *MessageID
	// TopicID groups messages into a topic; empty means no topic
	// (Section 5.11). At most [MaxTopicIDSize] bytes.
	TopicID []byte
	// Expires asks receivers to delete the message at or after a time, or
	// is nil for no expiry (Section 5.8).
	Expires *Expiration
	// InReplyTo is the ID of the specific message version this one
	// replies or reacts to, or nil (Section 4.1).
	InReplyTo *MessageID
	// Extensions is the mimiExtensions map (Section 4.3).
	Extensions Extensions
	// Body is the nestedPart (Section 4.4).
	Body NestedPart
}

// SaltSize is the length of the salt in octets (Section 3.3).
const SaltSize = 16

// Limits from draft Sections 6.3 and 9.1, and our size bound.
const (
	// MaxNestedPartDepth is how deep NestedParts may nest, counting the
	// body as level 1 (Section 6.3).
	MaxNestedPartDepth = 4
	// MaxParts is the most NestedParts one message may hold (Section 9.1).
	MaxParts = 1024
	// MaxTopicIDSize is the longest topicId we accept (Section 9.1).
	MaxTopicIDSize = 4096
	// MaxSize is the largest encoded message Decode accepts. It matches
	// the 64 KiB limit on a whole Rhizome event, which carries the content
	// inside an MLS PrivateMessage; larger media go in an ExternalPart.
	MaxSize = 64 << 10
)

// Expiration is the Expiration array of Section 4.1:
// [relative: bool, time: uint .size 4].
type Expiration struct {
	// Relative is true if Time counts seconds after the receiver reads the
	// message, false if Time is an absolute UNIX time in seconds.
	Relative bool
	// Time is seconds, relative or since the UNIX epoch.
	Time uint32
}

// Well-known extension keys (Section 8.2.1).
const (
	ExtensionSenderURI = 1 // senderUri: the sender as a MIMI participant
	ExtensionRoomURI   = 2 // roomUri: the MIMI room URI
)

// Extensions is the mimiExtensions map of Section 4.3. The registered keys
// 1 (senderUri) and 2 (roomUri) have their own fields; every other entry
// is kept, as encoded, in Other.
type Extensions struct {
	// SenderURI is key 1, the sender's MIMI URI; empty means absent.
	SenderURI string
	// RoomURI is key 2, the room's MIMI URI; empty means absent.
	RoomURI string
	// Other holds the remaining extensions. Decode returns them in
	// encoded-key order; Encode accepts any order and sorts them.
	Other []Extension
}

// Extension is one extension map entry other than senderUri and roomUri.
type Extension struct {
	Key ExtensionKey
	// Value is the entry's value as one deterministic CBOR data item,
	// nested at most [MaxExtensionDepth]-1 levels (see [CheckRawValue]).
	Value []byte
}

// ExtensionKey is an extension map key: an integer, or a text string of 1
// to 255 octets (Section 4.3). A key with a non-empty Text is a text key;
// otherwise it is the integer Int. Integer keys lie within ±(2^53-1)
// (Section 6.2); negative and text keys are for private use.
type ExtensionKey struct {
	Int  int64
	Text string
}

// MaxExtensionKeyText is the longest text extension key (Section 4.3).
const MaxExtensionKeyText = 255

// NestedPart is a body part (Section 4.4):
//
//	NestedPart = [
//	  disposition: baseDispos / $extDispos / unknownDispos,  ; {10}
//	  language: tstr,                                        ; {11}
//	  ( NullPart // SinglePart // ExternalPart // MultiPart)
//	]
type NestedPart struct {
	// Disposition is the intended handling of the part.
	Disposition Disposition
	// Language is empty or a comma-separated list of RFC 5646 tags.
	Language string
	// Part is the cardinality-specific rest of the part: a [NullPart],
	// [SinglePart], [ExternalPart] or [MultiPart].
	Part Part
}

// Part is the cardinality-specific tail of a NestedPart. It is implemented
// only by NullPart, SinglePart, ExternalPart and MultiPart.
type Part interface {
	// Cardinality is the value that tags this kind of part on the wire.
	Cardinality() Cardinality
	isPart()
}

// Cardinality tags the kind of a part (Section 4.4).
type Cardinality uint8

// Cardinality values.
const (
	CardinalityNull     Cardinality = 0 // NullPart
	CardinalitySingle   Cardinality = 1 // SinglePart
	CardinalityExternal Cardinality = 2 // ExternalPart
	CardinalityMulti    Cardinality = 3 // MultiPart
)

// NullPart is an empty body, used to delete or unlike (Sections 5.6, 5.7).
type NullPart struct{}

// SinglePart is inline content of one media type.
type SinglePart struct {
	// ContentType is the IANA media type with parameters {8}.
	ContentType string
	// Content is the raw content.
	Content []byte
}

// ExternalPart references content stored elsewhere (Section 4.5).
type ExternalPart struct {
	ContentType string // IANA media type; may be empty
	URL         string // where the content can be fetched
	Expires     uint32 // seconds since the UNIX epoch after which the URL is invalid; 0 = never
	Size        uint64 // size of the content in octets; 0 = not given
	EncAlg      uint16 // IANA AEAD algorithm (1 = AES-128-GCM); 0 = not encrypted
	Key         []byte // AEAD key
	Nonce       []byte // AEAD nonce
	AAD         []byte // AEAD additional authenticated data; empty by default
	HashAlg     uint8  // IANA Named Information hash algorithm (1 = sha-256); 0 = none
	ContentHash []byte // hash of the content at URL
	Description string // optional text description
	Filename    string // optional suggested file name
}

// MultiPart holds two or more nested parts and how to process them.
type MultiPart struct {
	PartSemantics PartSemantics
	Parts         []NestedPart
}

// Cardinality returns CardinalityNull.
func (NullPart) Cardinality() Cardinality { return CardinalityNull }

// Cardinality returns CardinalitySingle.
func (SinglePart) Cardinality() Cardinality { return CardinalitySingle }

// Cardinality returns CardinalityExternal.
func (ExternalPart) Cardinality() Cardinality { return CardinalityExternal }

// Cardinality returns CardinalityMulti.
func (MultiPart) Cardinality() Cardinality { return CardinalityMulti }

func (NullPart) isPart()     {}
func (SinglePart) isPart()   {}
func (ExternalPart) isPart() {}
func (MultiPart) isPart()    {}

// PartSemantics says how the parts of a MultiPart relate (Section 4.4).
type PartSemantics uint8

// PartSemantics values.
const (
	ChooseOne  PartSemantics = 0 // receiver picks exactly one part
	SingleUnit PartSemantics = 1 // all parts form a single unit
	ProcessAll PartSemantics = 2 // each part is processed individually
)

// Disposition is a MIMI Content Disposition registry value, 0 to 255
// (Section 8.2.2). Unknown values are kept and should be treated as
// [DispositionRender] (Section 9.1).
type Disposition uint8

// Disposition values (Section 8.2.2).
const (
	DispositionUnspecified Disposition = 0
	DispositionRender      Disposition = 1
	DispositionReaction    Disposition = 2
	DispositionProfile     Disposition = 3
	DispositionInline      Disposition = 4
	DispositionIcon        Disposition = 5
	DispositionAttachment  Disposition = 6
	DispositionSession     Disposition = 7
	DispositionPreview     Disposition = 8
)

// Effective returns the disposition a receiver acts on: unknown values
// (9 to 255) count as render (Section 9.1).
func (d Disposition) Effective() Disposition {
	if d > DispositionPreview {
		return DispositionRender
	}
	return d
}

// Media types the draft requires receivers to handle (Section 7.1).
const (
	MediaTypeMIMIContent = "application/mimi-content"
	MediaTypePlainText   = "text/plain;charset=utf-8"
	MediaTypeMarkdown    = "text/markdown;variant=GFM-MIMI"
)

// Algorithm identifiers used by ExternalPart.
const (
	EncAlgNone      = 0 // not encrypted
	EncAlgAES128GCM = 1 // IANA AEAD registry: AEAD_AES_128_GCM
	HashAlgNone     = 0
	HashAlgSHA256   = 1 // IANA Named Information registry: sha-256
)
