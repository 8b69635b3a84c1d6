package roomstate

import (
	"strings"
	"unicode/utf8"
)

// URI is a MIMI URI (draft-mahy-mimi-identity, Section 4), for example
// "mimi://example.com/u/alice" for a user or "mimi://example.com/r/club" for
// a room. Room state compares URIs byte-wise; it never normalizes them.
type URI string

// ValidUserURI reports whether u has the form mimi://<domain>/u/<name>,
// where domain and name are non-empty and contain no '/', whitespace,
// control characters or invalid UTF-8.
func ValidUserURI(u URI) bool {
	domain, rest, ok := splitMIMI(string(u))
	if !ok || domain == "" {
		return false
	}
	name, ok := strings.CutPrefix(rest, "u/")
	return ok && name != "" && !strings.Contains(name, "/")
}

// Domain returns the provider domain of a MIMI URI ("example.com" for
// "mimi://example.com/u/alice"), or "" if u is not a MIMI URI.
func (u URI) Domain() string {
	domain, _, ok := splitMIMI(string(u))
	if !ok {
		return ""
	}
	return domain
}

// splitMIMI splits "mimi://domain/rest" into domain and rest.
func splitMIMI(s string) (domain, rest string, ok bool) {
	if !validText(s) || strings.ContainsAny(s, " \t\r\n") {
		return "", "", false
	}
	after, ok := strings.CutPrefix(s, "mimi://")
	if !ok {
		return "", "", false
	}
	domain, rest, ok = strings.Cut(after, "/")
	if !ok || domain == "" {
		return "", "", false
	}
	return domain, rest, true
}

// validText reports whether s is valid UTF-8 without NUL or other C0/C1
// control characters; MIMI's UTF8String is "valid UTF8 without nulls"
// (draft-ietf-mimi-protocol-06, Section 7.6) and we also refuse the other
// controls so that names cannot carry terminal escapes.
func validText(s string) bool {
	if !utf8.ValidString(s) {
		return false
	}
	for _, r := range s {
		if r < 0x20 || (r >= 0x7f && r < 0xa0) {
			return false
		}
	}
	return true
}

// validDomain reports whether d looks like a provider domain: non-empty
// printable text without '/', whitespace or '@'.
func validDomain(d string) bool {
	return d != "" && validText(d) && !strings.ContainsAny(d, "/@ \t")
}
