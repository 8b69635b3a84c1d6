// Package conformance runs the MLS working group's interoperability test
// vectors (the JSON files of mlswg/mls-implementations, test-vectors.md)
// against package mls.
//
// Each vector format is a [Kind] with a runner registered in this package.
// The same runners back `go test ./mls/...` (on the vendored copies in
// mls/testdata/mlswg) and the `rhizome mls-vectors` command (on any file a
// user supplies), so what CI checks is exactly what users can check.
package conformance

import (
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"sort"
	"strings"
)

// Kind names a test-vector format.
type Kind string

// The vector formats of mlswg/mls-implementations. Passive-client files
// (passive-client-welcome, -handling-commit, -random, and any other file in
// that format) share one Kind.
const (
	KindCryptoBasics      Kind = "crypto-basics"
	KindTreeMath          Kind = "tree-math"
	KindKeySchedule       Kind = "key-schedule"
	KindPSKSecret         Kind = "psk_secret"
	KindSecretTree        Kind = "secret-tree"
	KindMessageProtection Kind = "message-protection"
	KindTranscriptHashes  Kind = "transcript-hashes"
	KindMessages          Kind = "messages"
	KindDeserialization   Kind = "deserialization"
	KindWelcome           Kind = "welcome"
	KindTreeValidation    Kind = "tree-validation"
	KindTreeOperations    Kind = "tree-operations"
	KindTreeKEM           Kind = "treekem"
	KindPassiveClient     Kind = "passive-client"
)

// AllKinds lists every known format in a stable order.
var AllKinds = []Kind{
	KindCryptoBasics, KindTreeMath, KindKeySchedule, KindPSKSecret, KindSecretTree,
	KindMessageProtection, KindTranscriptHashes, KindMessages, KindDeserialization,
	KindWelcome, KindTreeValidation, KindTreeOperations, KindTreeKEM, KindPassiveClient,
}

// ErrUnknownKind is returned when a file's format cannot be inferred or is not
// one of [AllKinds].
var ErrUnknownKind = errors.New("conformance: unknown vector kind")

// ErrNoCases is returned for a file that holds no test cases: a loader that
// silently finds nothing must never look like a pass.
var ErrNoCases = errors.New("conformance: file holds no test cases")

// Result is the outcome of one vector file.
type Result struct {
	Kind    Kind
	Passed  int
	Failed  int
	Skipped int
	// SkipReasons counts skipped cases by reason, e.g.
	// "cipher suite 0x0004 not supported": 11.
	SkipReasons map[string]int
	// Failures describes each failed case ("case 3 (suite 0x0002): ...").
	Failures []string
}

// Pass records a passed case.
func (r *Result) Pass() { r.Passed++ }

// Fail records a failed case with a description.
func (r *Result) Fail(format string, args ...any) {
	r.Failed++
	r.Failures = append(r.Failures, fmt.Sprintf(format, args...))
}

// Skip records a skipped case and why.
func (r *Result) Skip(reason string) {
	r.Skipped++
	if r.SkipReasons == nil {
		r.SkipReasons = make(map[string]int)
	}
	r.SkipReasons[reason]++
}

// SkipSummary renders the skip reasons in a stable order, e.g.
// "cipher suite 0x0004 not supported x11; ...".
func (r *Result) SkipSummary() string {
	reasons := make([]string, 0, len(r.SkipReasons))
	for k := range r.SkipReasons {
		reasons = append(reasons, k)
	}
	sort.Strings(reasons)
	parts := make([]string, len(reasons))
	for i, k := range reasons {
		parts[i] = fmt.Sprintf("%s x%d", k, r.SkipReasons[k])
	}
	return strings.Join(parts, "; ")
}

// A runner checks every case in one file's JSON and records each outcome in r.
// It returns an error only when the file as a whole cannot be read (bad JSON).
type runner func(data []byte, r *Result) error

var runners = map[Kind]runner{}

// register adds the runner for a kind; each kind's file calls it from init.
func register(k Kind, run runner) {
	if _, dup := runners[k]; dup {
		panic("conformance: duplicate runner for " + string(k))
	}
	runners[k] = run
}

// Implemented reports whether a runner exists for k in this build.
func Implemented(k Kind) bool { _, ok := runners[k]; return ok }

// KindFromFileName infers the vector format from a file name such as
// "mls/testdata/mlswg/secret-tree.json" or "passive-client-random.json".
func KindFromFileName(name string) (Kind, error) {
	base := strings.TrimSuffix(filepath.Base(name), filepath.Ext(name))
	norm := strings.ToLower(strings.ReplaceAll(base, "_", "-"))
	if strings.HasPrefix(norm, "passive-client") {
		return KindPassiveClient, nil
	}
	for _, k := range AllKinds {
		if norm == strings.ReplaceAll(string(k), "_", "-") {
			return k, nil
		}
	}
	return "", fmt.Errorf("%w: cannot infer it from file name %q (use --kind)", ErrUnknownKind, filepath.Base(name))
}

// ParseKind accepts a kind name as the --kind flag spells it.
func ParseKind(s string) (Kind, error) {
	norm := strings.ToLower(strings.ReplaceAll(s, "_", "-"))
	for _, k := range AllKinds {
		if norm == strings.ReplaceAll(string(k), "_", "-") {
			return k, nil
		}
	}
	return "", fmt.Errorf("%w: %q (known: %s)", ErrUnknownKind, s, kindList())
}

func kindList() string {
	names := make([]string, len(AllKinds))
	for i, k := range AllKinds {
		names[i] = string(k)
	}
	return strings.Join(names, ", ")
}

// Run checks the vector file contents data as format k. Cases this build
// cannot run (an unsupported cipher suite, a kind with no runner yet) are
// counted as skipped with a reason, never as passed. A file with no cases
// is an error.
func Run(k Kind, data []byte) (*Result, error) {
	r := &Result{Kind: k}
	var cases []json.RawMessage
	if err := json.Unmarshal(data, &cases); err != nil {
		return nil, fmt.Errorf("conformance: %s: file is not a JSON array of cases: %w", k, err)
	}
	if len(cases) == 0 {
		return nil, fmt.Errorf("%w (%s)", ErrNoCases, k)
	}
	run, ok := runners[k]
	if !ok {
		for range cases {
			r.Skip("kind " + string(k) + " not implemented in this build")
		}
		return r, nil
	}
	if err := run(data, r); err != nil {
		return nil, fmt.Errorf("conformance: %s: %w", k, err)
	}
	if r.Passed+r.Failed+r.Skipped == 0 {
		return nil, fmt.Errorf("%w (%s runner recorded nothing)", ErrNoCases, k)
	}
	return r, nil
}
