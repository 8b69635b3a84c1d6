package mimicontent

import (
	"strconv"
	"strings"
)

// Walk calls fn for p and every part nested in it, depth first, with each
// part's implied part index (draft-ietf-mimi-content-08, Section 4.4 and
// Appendix B.3): the body is index 0, and indices count in the order the
// parts appear. Walk stops early if fn returns false.
func (p *NestedPart) Walk(fn func(index int, part *NestedPart) bool) {
	next := 0
	p.walk(&next, fn)
}

func (p *NestedPart) walk(next *int, fn func(int, *NestedPart) bool) bool {
	i := *next
	*next++
	if !fn(i, p) {
		return false
	}
	if m, ok := p.Part.(MultiPart); ok {
		for j := range m.Parts {
			if !m.Parts[j].walk(next, fn) {
				return false
			}
		}
	}
	return true
}

// PartByIndex returns the part of c with the given implied part index.
func (c *Content) PartByIndex(index int) (*NestedPart, bool) {
	var found *NestedPart
	c.Body.Walk(func(i int, p *NestedPart) bool {
		if i == index {
			found = p
			return false
		}
		return i < index
	})
	return found, found != nil
}

// cidHost is the fixed host of MIMI content ID URIs.
const cidHost = "@local.invalid"

// ResolveCID returns the part a content ID URI of the form
// cid:<partIndex>@local.invalid names inside c (Section 4.4, RFC 2392).
// Such a URI may only name a SinglePart or ExternalPart; anything else,
// or a malformed URI, reports false.
func (c *Content) ResolveCID(uri string) (*NestedPart, bool) {
	rest, ok := strings.CutPrefix(uri, "cid:")
	if !ok {
		return nil, false
	}
	digits, ok := strings.CutSuffix(rest, cidHost)
	if !ok || digits == "" || len(digits) > 9 || (len(digits) > 1 && digits[0] == '0') ||
		strings.Trim(digits, "0123456789") != "" {
		return nil, false
	}
	index, err := strconv.Atoi(digits)
	if err != nil {
		return nil, false
	}
	p, ok := c.PartByIndex(index)
	if !ok {
		return nil, false
	}
	switch p.Part.(type) {
	case SinglePart, ExternalPart:
		return p, true
	}
	return nil, false
}

// CID returns the content ID URI for the part with the given index.
func CID(index int) string { return "cid:" + strconv.Itoa(index) + cidHost }
