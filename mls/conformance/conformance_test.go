package conformance

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/rhizome-chat/rhizome/mls"
)

// requiredKinds must have a runner in this build; every other kind is run if
// implemented and otherwise logged as skipped with its reason.
var requiredKinds = []Kind{
	KindCryptoBasics, KindTreeMath, KindKeySchedule, KindPSKSecret, KindSecretTree,
	KindMessageProtection, KindTranscriptHashes, KindMessages, KindDeserialization,
	KindWelcome,
}

func vectorFiles(t *testing.T) []string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join("..", "testdata", "mlswg", "*.json"))
	if err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 {
		t.Fatal("no vector files found in mls/testdata/mlswg")
	}
	return files
}

// TestOfficialVectors runs every shipped vector file, one cipher suite at a
// time (cases without a cipher_suite field run as one group), so the log
// shows per-suite counts. Every case of a supported suite must pass; a
// skipped case must carry a reason.
func TestOfficialVectors(t *testing.T) {
	seen := map[Kind]bool{}
	for _, path := range vectorFiles(t) {
		t.Run(filepath.Base(path), func(t *testing.T) {
			kind, err := KindFromFileName(path)
			if err != nil {
				t.Fatal(err)
			}
			seen[kind] = true
			data, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			groups, suites, err := splitBySuite(data)
			if err != nil {
				t.Fatal(err)
			}
			var summary []string
			for _, suite := range suites {
				cases := groups[suite]
				res, err := Run(kind, cases.data)
				if err != nil {
					t.Fatalf("suite %s: %v", suiteName(suite), err)
				}
				for _, f := range res.Failures {
					t.Errorf("suite %s: %s", suiteName(suite), f)
				}
				if res.Skipped > 0 {
					if len(res.SkipReasons) == 0 {
						t.Errorf("suite %s: %d cases skipped without a reason", suiteName(suite), res.Skipped)
					}
					t.Logf("suite %s: %d cases skipped: %s", suiteName(suite), res.Skipped, res.SkipSummary())
				}
				supported := suite < 0 || mls.CipherSuite(suite).Supported()
				if Implemented(kind) && supported && res.Passed != cases.n {
					t.Errorf("suite %s: %d of %d cases passed", suiteName(suite), res.Passed, cases.n)
				}
				summary = append(summary, fmt.Sprintf("%s %d/%d", suiteName(suite), res.Passed, cases.n))
			}
			t.Logf("%s (%s): passed per suite: %s", filepath.Base(path), kind, strings.Join(summary, ", "))
		})
	}
	for _, k := range AllKinds {
		if !seen[k] {
			t.Errorf("no shipped vector file of kind %s", k)
		}
	}
}

// suiteCases is the JSON array of one suite's cases and their number.
type suiteCases struct {
	data []byte
	n    int
}

// splitBySuite groups a vector file's cases by their cipher_suite field
// (-1 for cases without one) and returns the groups and their keys in
// ascending order.
func splitBySuite(data []byte) (map[int]*suiteCases, []int, error) {
	var cases []json.RawMessage
	if err := json.Unmarshal(data, &cases); err != nil {
		return nil, nil, err
	}
	parts := map[int][]json.RawMessage{}
	for _, c := range cases {
		var head struct {
			CipherSuite *int `json:"cipher_suite"`
		}
		if err := json.Unmarshal(c, &head); err != nil {
			return nil, nil, err
		}
		suite := -1
		if head.CipherSuite != nil {
			suite = *head.CipherSuite
		}
		parts[suite] = append(parts[suite], c)
	}
	groups := map[int]*suiteCases{}
	suites := make([]int, 0, len(parts))
	for suite, cs := range parts {
		enc, err := json.Marshal(cs)
		if err != nil {
			return nil, nil, err
		}
		groups[suite] = &suiteCases{data: enc, n: len(cs)}
		suites = append(suites, suite)
	}
	sort.Ints(suites)
	return groups, suites, nil
}

func suiteName(suite int) string {
	if suite < 0 {
		return "(any)"
	}
	return fmt.Sprintf("0x%04x", suite)
}

func TestRequiredKindsImplemented(t *testing.T) {
	for _, k := range requiredKinds {
		if !Implemented(k) {
			t.Errorf("no runner for required vector kind %s", k)
		}
	}
}

func TestKindFromFileName(t *testing.T) {
	tests := []struct {
		name string
		want Kind
		err  bool
	}{
		{"a/b/secret-tree.json", KindSecretTree, false},
		{"psk_secret.json", KindPSKSecret, false},
		{"psk-secret.json", KindPSKSecret, false},
		{"passive-client-random.json", KindPassiveClient, false},
		{"passive-client-handling-commit.json", KindPassiveClient, false},
		{"TreeKEM.json", KindTreeKEM, false},
		{"commit.json", "", true},
	}
	for _, tt := range tests {
		got, err := KindFromFileName(tt.name)
		if (err != nil) != tt.err || got != tt.want {
			t.Errorf("KindFromFileName(%q) = %q, %v; want %q, err=%v", tt.name, got, err, tt.want, tt.err)
		}
		if tt.err && !errors.Is(err, ErrUnknownKind) {
			t.Errorf("KindFromFileName(%q) error %v does not wrap ErrUnknownKind", tt.name, err)
		}
	}
}

func TestRunRejectsEmptyAndNonArray(t *testing.T) {
	if _, err := Run(KindTreeMath, []byte(`[]`)); !errors.Is(err, ErrNoCases) {
		t.Errorf("empty file: err = %v, want ErrNoCases", err)
	}
	if _, err := Run(KindTreeMath, []byte(`{"n_leaves":1}`)); err == nil {
		t.Error("non-array file accepted")
	}
}
