package mimicontent

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

const examplesDir = "testdata/examples"

// The draft's message examples (every .cbor but implied-original, which
// holds MessageDerivedValues). A loader that finds fewer fails, so a
// broken glob cannot pass silently.
var exampleNames = []string{
	"attachment", "conferencing", "delete", "edit", "expiring",
	"mention-html", "mention", "multipart-1", "multipart-2", "multipart-3",
	"original", "reaction", "reply", "unlike",
}

type example struct {
	name      string
	cbor      []byte
	edn       string
	id        MessageID // from the "# message ID = h'...'" comment
	timestamp uint64    // from the "# timestamp = N" comment, 0 if none
}

func readFile(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(examplesDir, name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

var (
	hexLiteral = regexp.MustCompile(`(?s)h'([0-9a-fA-F\s#]*)'`)
	idComment  = regexp.MustCompile(`(?s)# message ID = h'([^']*)'`)
	tsComment  = regexp.MustCompile(`# timestamp\s*=\s*(\d+)`)
)

// hexOf strips whitespace and comment markers from the body of an EDN hex
// string literal.
func hexOf(t testing.TB, s string) []byte {
	t.Helper()
	s = strings.NewReplacer("#", "", " ", "", "\n", "", "\t", "").Replace(s)
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatalf("bad hex %q: %v", s, err)
	}
	return b
}

func loadExample(t testing.TB, name string) example {
	t.Helper()
	ex := example{name: name, cbor: readFile(t, name+".cbor"), edn: string(readFile(t, name+".edn"))}
	m := idComment.FindStringSubmatch(ex.edn)
	if m == nil {
		t.Fatalf("%s.edn: no message ID comment", name)
	}
	id, err := MessageIDFromBytes(hexOf(t, m[1]))
	if err != nil {
		t.Fatalf("%s.edn: %v", name, err)
	}
	ex.id = id
	if m := tsComment.FindStringSubmatch(ex.edn); m != nil {
		ex.timestamp, _ = strconv.ParseUint(m[1], 10, 64)
	}
	return ex
}

func loadExamples(t testing.TB) []example {
	t.Helper()
	files, _ := filepath.Glob(filepath.Join(examplesDir, "*.cbor"))
	if len(files) != len(exampleNames)+1 {
		t.Fatalf("found %d .cbor files in %s, want %d", len(files), examplesDir, len(exampleNames)+1)
	}
	var out []example
	for _, n := range exampleNames {
		out = append(out, loadExample(t, n))
	}
	return out
}

// TestExamples decodes every example, re-encodes it byte for byte, and
// checks the message ID against the one the draft prints in the EDN.
func TestExamples(t *testing.T) {
	t.Parallel()
	for _, ex := range loadExamples(t) {
		t.Run(ex.name, func(t *testing.T) {
			t.Parallel()
			c, err := Decode(ex.cbor)
			if err != nil {
				t.Fatalf("Decode: %v", err)
			}
			enc, err := c.Encode()
			if err != nil {
				t.Fatalf("Encode: %v", err)
			}
			if !bytes.Equal(enc, ex.cbor) {
				t.Fatalf("re-encoding differs:\n got %x\nwant %x", enc, ex.cbor)
			}
			// The salt is the first h'' literal of the EDN document.
			doc := ex.edn[strings.Index(ex.edn, "\n["):]
			if salt := hexOf(t, hexLiteral.FindStringSubmatch(doc)[1]); !bytes.Equal(c.Salt[:], salt) {
				t.Errorf("salt = %x, EDN says %x", c.Salt, salt)
			}
			id, err := ComputeMessageID(c.Extensions.SenderURI, c.Extensions.RoomURI, ex.cbor)
			if err != nil {
				t.Fatal(err)
			}
			if id != ex.id {
				t.Errorf("message ID = %s, EDN says %s", id, ex.id)
			}
			_, id2, err := c.EncodeWithID()
			if err != nil || id2 != ex.id {
				t.Errorf("EncodeWithID = %s, %v; want %s", id2, err, ex.id)
			}
		})
	}
}

// TestExamplesValidate runs the semantic checks over the examples. The
// multiple-reactions example of Appendix B.2 has no inReplyTo, so it names
// no target; we hold reactions to Section 5.3 and reject it.
func TestExamplesValidate(t *testing.T) {
	t.Parallel()
	wantKind := map[string]Kind{
		"attachment": KindNew, "conferencing": KindNew, "delete": KindDelete,
		"edit": KindEdit, "expiring": KindNew, "mention-html": KindReply,
		"mention": KindReply, "multipart-1": KindNew, "multipart-2": KindReaction,
		"multipart-3": KindNew, "original": KindNew, "reaction": KindReaction,
		"reply": KindReply, "unlike": KindUnlike,
	}
	for _, ex := range loadExamples(t) {
		t.Run(ex.name, func(t *testing.T) {
			c, err := Decode(ex.cbor)
			if err != nil {
				t.Fatal(err)
			}
			err = c.Validate()
			if ex.name == "multipart-2" {
				if !errors.Is(err, ErrReactionTarget) || !errors.Is(err, ErrInvalid) {
					t.Errorf("Validate = %v, want ErrReactionTarget", err)
				}
			} else if err != nil {
				t.Errorf("Validate: %v", err)
			}
			if k := c.Kind(); k != wantKind[ex.name] {
				t.Errorf("Kind = %v, want %v", k, wantKind[ex.name])
			}
		})
	}
}

// TestImpliedOriginal decodes the MessageDerivedValues example. Its CBOR
// still holds the draft-07 message ID of the original message (no URI
// length prefixes), while its EDN shows the draft-08 one; we check both
// against constructions computed here, independently of the package.
func TestImpliedOriginal(t *testing.T) {
	t.Parallel()
	raw := readFile(t, "implied-original.cbor")
	edn := string(readFile(t, "implied-original.edn"))
	orig := loadExample(t, "original")
	v, err := DecodeDerivedValues(raw)
	if err != nil {
		t.Fatal(err)
	}
	enc, err := v.Encode()
	if err != nil || !bytes.Equal(enc, raw) {
		t.Fatalf("re-encoding differs (%v):\n got %x\nwant %x", err, enc, raw)
	}
	const alice, room = "mimi://example.com/u/alice-smith", "mimi://example.com/r/engineering_team"
	if v.SenderUserURL != alice || v.RoomURL != room || v.SenderLeafIndex != 4 ||
		v.SenderClientURL != "mimi://example.com/d/3b52249d-68f9-45ce-8bf5-c799f3cad7ec/0003" {
		t.Errorf("decoded %+v", v)
	}
	if v.Timestamp.Millis != orig.timestamp || v.Timestamp.Extended != nil {
		t.Errorf("timestamp = %+v, original.edn says %d", v.Timestamp, orig.timestamp)
	}
	if want := hexOf(t, hexLiteral.FindStringSubmatch(edn)[1]); !bytes.Equal(orig.id[:], want) {
		t.Errorf("implied-original.edn messageId %x != original.edn %s", want, orig.id)
	}
	// Draft-07 construction: SHA-256(sender || room || message || salt).
	h := sha256.New()
	h.Write([]byte(alice))
	h.Write([]byte(room))
	h.Write(orig.cbor)
	h.Write(orig.cbor[2:18])
	v07 := append([]byte{1}, h.Sum(nil)[:31]...)
	if !bytes.Equal(v.MessageID[:], v07) {
		t.Errorf("implied-original.cbor messageId = %s, want the draft-07 ID %x", v.MessageID, v07)
	}
}

// TestMessageIDConstruction recomputes one example's ID from the
// draft-08 formula written out here, not through the package.
func TestMessageIDConstruction(t *testing.T) {
	t.Parallel()
	ex := loadExample(t, "attachment")
	const sender, room = "mimi://example.com/u/bob-jones", "mimi://example.com/r/engineering_team"
	in := []byte{0, byte(len(sender))}
	in = append(in, sender...)
	in = append(in, 0, byte(len(room)))
	in = append(in, room...)
	in = append(in, ex.cbor...)
	in = append(in, ex.cbor[2:18]...)
	sum := sha256.Sum256(in)
	want := append([]byte{0x01}, sum[:31]...)
	got, err := ComputeMessageID(sender, room, ex.cbor)
	if err != nil || !bytes.Equal(got[:], want) || got != ex.id {
		t.Fatalf("ComputeMessageID = %s, %v; formula gives %x, EDN %s", got, err, want, ex.id)
	}
	// Changing any input changes the ID.
	for name, f := range map[string]func() (MessageID, error){
		"sender": func() (MessageID, error) { return ComputeMessageID(sender+"x", room, ex.cbor) },
		"room":   func() (MessageID, error) { return ComputeMessageID(sender, room+"x", ex.cbor) },
		"split": func() (MessageID, error) {
			return ComputeMessageID(sender[:len(sender)-1], sender[len(sender)-1:]+room, ex.cbor)
		},
	} {
		if id, _ := f(); id == got {
			t.Errorf("%s: ID unchanged", name)
		}
	}
	if _, err := ComputeMessageID(sender, room, ex.cbor[1:]); !errors.Is(err, ErrMalformed) {
		t.Errorf("no salt prefix: err = %v", err)
	}
	if _, err := ComputeMessageID(strings.Repeat("a", 1<<16), room, ex.cbor); !errors.Is(err, ErrInvalid) {
		t.Errorf("long URI: err = %v", err)
	}
}
