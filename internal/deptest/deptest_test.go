package deptest

import (
	"bufio"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// pureCores are the packages the design brief declares pure.
var pureCores = []string{"mls", "mls/conformance", "roomstate", "consensus", "dag"}

func repoModule(t *testing.T) Module {
	t.Helper()
	dir, err := filepath.Abs(".")
	if err != nil {
		t.Fatal(err)
	}
	for {
		f, err := os.Open(filepath.Join(dir, "go.mod"))
		if err == nil {
			defer f.Close()
			sc := bufio.NewScanner(f)
			for sc.Scan() {
				if rest, ok := strings.CutPrefix(sc.Text(), "module "); ok {
					return Module{Path: strings.TrimSpace(rest), Dir: dir}
				}
			}
			t.Fatal("go.mod without module line")
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("go.mod not found")
		}
		dir = parent
	}
}

// TestPureCores is the boundary the brief asks for: it fails, naming the
// file, line and import, when a pure core reaches for I/O, clock or goroutines.
func TestPureCores(t *testing.T) {
	mod := repoModule(t)
	for _, p := range pureCores {
		t.Run(p, func(t *testing.T) {
			vs, err := Check(mod, mod.Path+"/"+p, PureCoreRules)
			if err != nil {
				t.Fatal(err)
			}
			for _, v := range vs {
				t.Errorf("pure core boundary broken: %s", v)
			}
		})
	}
}

// TestCheckFindsViolations shows the checker failing on a module that adds
// forbidden imports, a forbidden call through a renamed import, a goroutine,
// and a forbidden import reached through another package of the module.
func TestCheckFindsViolations(t *testing.T) {
	dir, _ := filepath.Abs(filepath.Join("testdata", "bad"))
	mod := Module{Path: "example.com/bad", Dir: dir}
	vs, err := Check(mod, "example.com/bad/pure", PureCoreRules)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, v := range vs {
		got = append(got, v.String())
	}
	want := []string{
		`helper.go:4: imports "net" (package example.com/bad/helper)`,
		`pure.go:14: starts a goroutine (package example.com/bad/pure)`,
		`pure.go:15: uses time.Now (package example.com/bad/pure)`,
		`pure.go:5: imports "log/slog" (package example.com/bad/pure)`,
		`pure.go:6: imports "os" (package example.com/bad/pure)`,
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("violations:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}

	clean, err := Check(mod, "example.com/bad/clean", PureCoreRules)
	if err != nil || len(clean) != 0 {
		t.Fatalf("clean package: %v, %v", clean, err)
	}
}

func TestForbiddenPrefixes(t *testing.T) {
	tests := []struct {
		path string
		want bool
	}{
		{"os", true}, {"os/exec", true}, {"net/http", true}, {"network/x", false},
		{"github.com/dgraph-io/badger/v4", true}, {"github.com/libp2p/go-libp2p", true},
		{"math/rand/v2", true}, {"math/bits", false}, {"crypto/rand", true}, {"crypto/ed25519", false},
		{"log/slog", true}, {"time", false},
	}
	for _, tt := range tests {
		if got := forbidden(tt.path, PureCoreRules.ForbiddenImports); got != tt.want {
			t.Errorf("forbidden(%q) = %v, want %v", tt.path, got, tt.want)
		}
	}
}
