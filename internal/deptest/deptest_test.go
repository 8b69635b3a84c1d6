package deptest

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// pureCore is a package the design declares pure.
type pureCore struct {
	path string
	// rules are the package's rules: PureCoreRules, or stricter.
	rules Rules
	// optional: the package is being written; it is checked once its
	// directory holds Go files.
	optional bool
}

// pureCores are every pure package of the module. The mls, roomstate,
// consensus and dag cores, and the codecs they share; dag/badgerstore and
// dag/dagtest are not pure. consensus keeps the stricter rule its own doc
// comment states: it counts logical ticks, so it imports neither time nor
// sync.
var pureCores = []pureCore{
	{path: "mls", rules: PureCoreRules},
	{path: "mls/conformance", rules: PureCoreRules},
	{path: "roomstate", rules: PureCoreRules},
	{path: "consensus", rules: PureCoreRules.With("time", "sync")},
	{path: "dag", rules: PureCoreRules},
	{path: "room", rules: PureCoreRules, optional: true},
	{path: "internal/roomevent", rules: PureCoreRules},
	{path: "internal/tlspl", rules: PureCoreRules},
	{path: "internal/mimicontent", rules: PureCoreRules},
}

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

// TestPureCores is the boundary the design asks for: it fails, naming the
// file, line and what was used, when a pure core reaches for I/O, the
// clock, randomness or goroutines.
func TestPureCores(t *testing.T) {
	mod := repoModule(t)
	for _, p := range pureCores {
		t.Run(p.path, func(t *testing.T) {
			if p.optional {
				files, _ := filepath.Glob(filepath.Join(mod.Dir, filepath.FromSlash(p.path), "*.go"))
				if len(files) == 0 {
					t.Fatalf("pure package %s has no Go files: remove it from the list or restore it", p.path)
				}
			}
			vs, err := Check(mod, mod.Path+"/"+p.path, p.rules)
			if err != nil {
				t.Fatal(err)
			}
			for _, v := range vs {
				t.Errorf("pure core boundary broken: %s", v)
			}
		})
	}
}

// wantComment is an expectation written on the offending line of a
// testdata file: // want `what`.
var wantComment = regexp.MustCompile("// want `([^`]*)`")

// wants returns the violations the testdata package in dir (an element of
// module example.com/bad) is annotated with, as Violation strings.
func wants(t *testing.T, root, dir string) []string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(root, dir, "*.go"))
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		src, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		for i, line := range strings.Split(string(src), "\n") {
			for _, m := range wantComment.FindAllStringSubmatch(line, -1) {
				v := Violation{Package: "example.com/bad/" + dir, Pos: fmt.Sprintf("%s:%d", filepath.Base(name), i+1), What: m[1]}
				out = append(out, v.String())
			}
		}
	}
	return out
}

// TestCheckFindsViolations runs the checker over testdata/bad, a module
// with one package per rule; each offending line carries the violation it
// must produce (// want `...`), and the check must report exactly those,
// with file and line. The clean package, which uses what the rules allow
// (time values, locks, an injected clock), must pass.
func TestCheckFindsViolations(t *testing.T) {
	root, err := filepath.Abs(filepath.Join("testdata", "bad"))
	if err != nil {
		t.Fatal(err)
	}
	mod := Module{Path: "example.com/bad", Dir: root}
	tests := []struct {
		name string
		pkg  string
		dirs []string // packages whose annotations apply: pkg and what it imports
		min  int      // annotations the case must hold, so that it can fail
	}{
		{"imports, goroutine, renamed time.Now, through an imported package", "pure", []string{"pure", "helper"}, 5},
		{"sync.WaitGroup, its Go method, errgroup, sync.Cond", "waitgroup", []string{"waitgroup"}, 6},
		{"the runtime package itself", "runtimeimport", []string{"runtimeimport"}, 1},
		{"time.Now by function value, renamed and dot imports", "timealias", []string{"timealias"}, 6},
		{"crypto/rand and math/rand under other names", "randalias", []string{"randalias"}, 3},
		{"select statement", "selectstmt", []string{"selectstmt"}, 1},
		{"files of other platforms and cgo", "platform", []string{"platform"}, 2},
		{"clean", "clean", []string{"clean"}, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var want []string
			for _, d := range tt.dirs {
				want = append(want, wants(t, root, d)...)
			}
			if len(want) < tt.min {
				t.Fatalf("testdata %s holds %d want annotations, at least %d expected", tt.pkg, len(want), tt.min)
			}
			slices.Sort(want)
			vs, err := Check(mod, mod.Path+"/"+tt.pkg, PureCoreRules)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, v := range vs {
				got = append(got, v.String())
			}
			slices.Sort(got)
			if !slices.Equal(got, want) {
				t.Fatalf("violations:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
			}
		})
	}
}

// TestStricterRules checks that With adds imports for one package without
// changing the rules it was made from.
func TestStricterRules(t *testing.T) {
	root, err := filepath.Abs(filepath.Join("testdata", "bad"))
	if err != nil {
		t.Fatal(err)
	}
	mod := Module{Path: "example.com/bad", Dir: root}
	strict := PureCoreRules.With("time", "sync")
	vs, err := Check(mod, mod.Path+"/clean", strict)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, v := range vs {
		got = append(got, v.What)
	}
	if want := []string{`imports "sync"`, `imports "time"`}; !slices.Equal(got, want) {
		t.Fatalf("clean under stricter rules: %q, want %q", got, want)
	}
	if forbidden("time", PureCoreRules.ForbiddenImports) || forbidden("sync", PureCoreRules.ForbiddenImports) {
		t.Fatal("With changed PureCoreRules")
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
		{"log/slog", true}, {"time", false}, {"runtime", true}, {"runtime/debug", true},
		{"sync", false}, {"sync/atomic", false}, {"golang.org/x/sync/errgroup", true}, {"C", true},
	}
	for _, tt := range tests {
		if got := forbidden(tt.path, PureCoreRules.ForbiddenImports); got != tt.want {
			t.Errorf("forbidden(%q) = %v, want %v", tt.path, got, tt.want)
		}
	}
}

func TestDefaultName(t *testing.T) {
	tests := []struct{ path, want string }{
		{"time", "time"}, {"math/rand/v2", "rand"}, {"github.com/dgraph-io/badger/v4", "badger"},
		{"github.com/foo/bar/v3", "bar"}, {"golang.org/x/crypto/cryptobyte", "cryptobyte"},
	}
	for _, tt := range tests {
		if got := defaultName(tt.path); got != tt.want {
			t.Errorf("defaultName(%q) = %q, want %q", tt.path, got, tt.want)
		}
	}
}
