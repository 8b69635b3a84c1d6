package consensus

import (
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// TestPurity keeps the package a pure core: no I/O, clock, randomness,
// logging or goroutines in non-test files. (internal/deptest checks the
// import graph repo-wide; this also catches time.Now and go statements.)
func TestPurity(t *testing.T) {
	banned := map[string]bool{"os": true, "net": true, "log": true, "log/slog": true, "crypto/rand": true,
		"math/rand": true, "math/rand/v2": true, "time": true, "sync": true, "unsafe": true}
	files, _ := filepath.Glob("*.go")
	checked := 0
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		src, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		af, err := parser.ParseFile(token.NewFileSet(), f, src, parser.ImportsOnly)
		if err != nil {
			t.Fatal(err)
		}
		checked++
		for _, imp := range af.Imports {
			p, _ := strconv.Unquote(imp.Path.Value)
			if banned[p] || strings.Contains(p, "badger") || strings.Contains(p, "libp2p") {
				t.Errorf("%s imports %s", f, p)
			}
		}
		for _, bad := range []string{"go func", "time.Now(", "\tgo "} {
			if strings.Contains(string(src), bad) {
				t.Errorf("%s contains %q", f, bad)
			}
		}
	}
	if checked < 5 {
		t.Fatalf("checked only %d files", checked)
	}
}
