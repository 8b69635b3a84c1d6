package mimicontent

import (
	"errors"
	"regexp"
	"strconv"
	"testing"
)

// TestPartIndexMultipart3 checks the implied part indices against the
// table of Appendix B.3 and the "# partIndex = N" comments of the EDN, and
// resolves the cid: URIs the HTML parts contain.
func TestPartIndexMultipart3(t *testing.T) {
	t.Parallel()
	ex := loadExample(t, "multipart-3")
	c := decodeExample(t, ex)

	// The EDN numbers the parts in document order ("# partIndex = N"),
	// which is the depth-first order Walk must follow.
	comments := regexp.MustCompile(`# partIndex = (\d+)`).FindAllStringSubmatch(ex.edn, -1)
	for i, m := range comments {
		if m[1] != strconv.Itoa(i) {
			t.Fatalf("EDN comment %d says partIndex %s", i, m[1])
		}
	}
	visited := 0
	c.Body.Walk(func(i int, p *NestedPart) bool {
		if i != visited {
			t.Errorf("Walk gave index %d at step %d", i, visited)
		}
		if q, _ := c.PartByIndex(i); q != p {
			t.Errorf("PartByIndex(%d) differs from Walk", i)
		}
		visited++
		return true
	})
	if visited != len(comments) || visited != 11 {
		t.Fatalf("Walk visited %d parts; EDN numbers %d, Appendix B.3 lists 11", visited, len(comments))
	}
	if got := CID(5); got != "cid:5@local.invalid" {
		t.Errorf("CID(5) = %s", got)
	}
	// Appendix B.3: 0 choose, 1 and 6 process all, 2 and 7 choose,
	// 3/4 and 8/9 English/French HTML, 5 GIF, 10 PNG.
	wantType := map[int]string{3: "text/html;charset=utf-8", 4: "text/html;charset=utf-8", 5: "image/gif",
		8: "text/html;charset=utf-8", 9: "text/html;charset=utf-8", 10: "image/png"}
	wantSem := map[int]PartSemantics{0: ChooseOne, 1: ProcessAll, 2: ChooseOne, 6: ProcessAll, 7: ChooseOne}
	for i := range 11 {
		p, ok := c.PartByIndex(i)
		if !ok {
			t.Fatalf("no part %d", i)
		}
		switch part := p.Part.(type) {
		case SinglePart:
			if part.ContentType != wantType[i] {
				t.Errorf("part %d: content type %q, want %q", i, part.ContentType, wantType[i])
			}
		case MultiPart:
			if s, ok := wantSem[i]; !ok || part.PartSemantics != s {
				t.Errorf("part %d: semantics %d, want %d (%v)", i, part.PartSemantics, s, ok)
			}
		default:
			t.Errorf("part %d: unexpected %T", i, part)
		}
	}
	if _, ok := c.PartByIndex(11); ok {
		t.Error("PartByIndex(11) found a part")
	}

	// The HTML of parts 3 and 8 references the GIF and the PNG by cid.
	cidRef := regexp.MustCompile(`cid:\d+@local\.invalid`)
	for html, img := range map[int]string{3: "image/gif", 8: "image/png"} {
		p, _ := c.PartByIndex(html)
		uri := cidRef.FindString(string(p.Part.(SinglePart).Content))
		target, ok := c.ResolveCID(uri)
		if !ok || target.Part.(SinglePart).ContentType != img {
			t.Errorf("part %d: %q resolves to %+v, %v; want %s", html, uri, target, ok, img)
		}
	}
}

// TestResolveCIDRejects covers malformed URIs and references to parts a
// cid may not name (Section 4.4: only SinglePart or ExternalPart).
func TestResolveCIDRejects(t *testing.T) {
	t.Parallel()
	c := decodeExample(t, loadExample(t, "multipart-3"))
	for _, uri := range []string{
		"cid:0@local.invalid",  // the root MultiPart
		"cid:2@local.invalid",  // a nested MultiPart
		"cid:11@local.invalid", // no such part
		"cid:05@local.invalid", // leading zero
		"cid:+5@local.invalid",
		"cid:-1@local.invalid",
		"cid:@local.invalid",
		"cid:5@example.com",
		"5@local.invalid",
		"cid:99999999999999999999@local.invalid",
	} {
		t.Run(uri, func(t *testing.T) {
			if p, ok := c.ResolveCID(uri); ok {
				t.Errorf("resolved to %+v", p)
			}
		})
	}
	if _, ok := c.ResolveCID("cid:5@local.invalid"); !ok {
		t.Error("cid:5 does not resolve")
	}
}

// TestCheckReplyChain follows inReplyTo through a store of messages.
func TestCheckReplyChain(t *testing.T) {
	t.Parallel()
	id := func(b byte) MessageID { return *idWith(b) }
	a, b, c, d := id(0xa), id(0xb), id(0xc), id(0xd)
	tests := []struct {
		name    string
		store   map[MessageID]MessageID // message -> its inReplyTo
		msg     MessageID
		replyTo *MessageID
		wantErr bool
	}{
		{"not a reply", nil, d, nil, false},
		{"reply to unknown", nil, d, &c, false},
		{"chain ends", map[MessageID]MessageID{c: b, b: a}, d, &c, false},
		{"reply to itself", nil, d, &d, true},
		{"loop back to the new message", map[MessageID]MessageID{c: b, b: d}, d, &c, true},
		{"loop further up", map[MessageID]MessageID{c: b, b: a, a: b}, d, &c, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			err := CheckReplyChain(tt.msg, tt.replyTo, func(m MessageID) (MessageID, bool) {
				p, ok := tt.store[m]
				return p, ok
			})
			if tt.wantErr != (err != nil) || (err != nil && !errors.Is(err, ErrReplyLoop)) {
				t.Fatalf("CheckReplyChain = %v, want error %v", err, tt.wantErr)
			}
		})
	}
}
