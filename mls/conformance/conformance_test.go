package conformance

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
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

func TestOfficialVectors(t *testing.T) {
	for _, path := range vectorFiles(t) {
		t.Run(filepath.Base(path), func(t *testing.T) {
			kind, err := KindFromFileName(path)
			if err != nil {
				t.Fatal(err)
			}
			data, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			res, err := Run(kind, data)
			if err != nil {
				t.Fatal(err)
			}
			for _, f := range res.Failures {
				t.Error(f)
			}
			if res.Skipped > 0 {
				t.Logf("%d cases skipped: %s", res.Skipped, res.SkipSummary())
			}
			if Implemented(kind) && res.Passed == 0 {
				t.Errorf("runner for %s passed no case", kind)
			}
			t.Logf("%s: %d passed, %d failed, %d skipped", kind, res.Passed, res.Failed, res.Skipped)
		})
	}
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
