// Package deptest enforces the boundary of Rhizome's pure cores.
//
// The ordering, room-state, MLS and event-validation code must behave the
// same on every server and in the simulator, so it may not reach for the
// network, the disk, a logger, the wall clock, global randomness or
// goroutines. [Check] parses a package and every package of the same module
// it imports, and reports each forbidden import, name, go statement, Go
// method or select statement with its file and line. The repository's own
// test runs it over every pure package; it is the only purity checker.
//
// The check is syntactic (go/parser, no type checking), so it is
// conservative where it cannot know what a name is: any method or field
// named Go is reported, and a local variable named like an imported package
// is taken for the package. Packages outside the module are trusted.
package deptest

import (
	"fmt"
	"go/ast"
	"go/build"
	"go/parser"
	"go/token"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

// Rules says what a pure package may not use.
type Rules struct {
	// ForbiddenImports are import paths, or prefixes ending in "/", that may
	// not be imported, under any name.
	ForbiddenImports []string
	// ForbiddenNames are package-qualified names, e.g. "time.Now" or
	// "sync.WaitGroup", that may not be referred to: called, taken as a
	// function value, or used as a type. A dot import of their package is
	// forbidden too, since it would hide them.
	ForbiddenNames []string
	// NoGoroutines forbids go statements, any selector named Go (the
	// goroutine-starting method of sync.WaitGroup and errgroup.Group, as a
	// call or as a method value) and select statements (which only make
	// sense against other goroutines, and pick among ready cases at random).
	NoGoroutines bool
}

// PureCoreRules are the rules for the pure cores: mls, roomstate,
// consensus, dag and the codecs they share.
//
// sync is allowed for its locks (sync.Mutex, sync.RWMutex, sync.Once,
// sync/atomic): a lock makes a value safe for its callers' goroutines (the
// in-memory store, a key cache) without starting or waiting for any, and
// changes no result. sync.WaitGroup and sync.Cond exist only to wait for
// other goroutines, so they are forbidden, as is golang.org/x/sync.
var PureCoreRules = Rules{
	ForbiddenImports: []string{
		"os", "os/", "net", "net/", "syscall", "io/ioutil", "log", "log/",
		"crypto/rand", "math/rand", "math/rand/", "runtime", "runtime/",
		"plugin", "unsafe", "C", "golang.org/x/sync/",
		"github.com/dgraph-io/badger/", "github.com/libp2p/",
	},
	ForbiddenNames: []string{
		"time.Now", "time.Since", "time.Until", "time.Sleep", "time.After",
		"time.AfterFunc", "time.Tick", "time.NewTimer", "time.NewTicker",
		"time.Local", "time.LoadLocation",
		"sync.WaitGroup", "sync.Cond", "sync.NewCond",
	},
	NoGoroutines: true,
}

// With returns a copy of r that also forbids the given imports.
func (r Rules) With(imports ...string) Rules {
	r.ForbiddenImports = append(slices.Clip(r.ForbiddenImports), imports...)
	return r
}

// Violation is one breach of the rules.
type Violation struct {
	Package string // import path of the offending package
	Pos     string // file:line
	What    string // e.g. `imports "os"`
}

func (v Violation) String() string {
	return fmt.Sprintf("%s: %s (package %s)", v.Pos, v.What, v.Package)
}

// Module describes the module the checked packages belong to.
type Module struct {
	Path string // module path, e.g. "github.com/rhizome-chat/rhizome"
	Dir  string // directory holding go.mod
}

// Check applies rules to the package with import path pkg and, transitively,
// to every package of the same module it imports. Test files are not
// checked. Every other file of the package is, whatever its build
// constraints (a file for another platform or for cgo counts too), as are
// the imports of each.
func Check(mod Module, pkg string, rules Rules) ([]Violation, error) {
	var out []Violation
	seen := map[string]bool{}
	queue := []string{pkg}
	for len(queue) > 0 {
		p := queue[0]
		queue = queue[1:]
		if seen[p] {
			continue
		}
		seen[p] = true
		rel := strings.TrimPrefix(strings.TrimPrefix(p, mod.Path), "/")
		dir := filepath.Join(mod.Dir, filepath.FromSlash(rel))
		bp, err := build.Default.ImportDir(dir, 0)
		if err != nil {
			return nil, fmt.Errorf("deptest: load %s: %w", p, err)
		}
		fset := token.NewFileSet()
		for _, name := range sourceFiles(bp) {
			path := filepath.Join(dir, name)
			f, err := parser.ParseFile(fset, path, nil, parser.SkipObjectResolution)
			if err != nil {
				return nil, fmt.Errorf("deptest: parse %s: %w", path, err)
			}
			if f.Name.Name != bp.Name {
				continue // a generator (package main, build-ignored) kept beside the package
			}
			vs, imports := checkFile(fset, f, p, rules)
			out = append(out, vs...)
			for _, imp := range imports {
				if imp == mod.Path || strings.HasPrefix(imp, mod.Path+"/") {
					queue = append(queue, imp)
				}
			}
		}
	}
	slices.SortFunc(out, func(a, b Violation) int { return strings.Compare(a.String(), b.String()) })
	return out, nil
}

// sourceFiles returns the package's non-test Go files for every platform:
// those of this build and those its constraints leave out.
func sourceFiles(bp *build.Package) []string {
	files := slices.Concat(bp.GoFiles, bp.CgoFiles)
	for _, name := range bp.IgnoredGoFiles {
		if !strings.HasSuffix(name, "_test.go") {
			files = append(files, name)
		}
	}
	slices.Sort(files)
	return files
}

func checkFile(fset *token.FileSet, f *ast.File, pkg string, rules Rules) ([]Violation, []string) {
	var out []Violation
	report := func(p token.Pos, what string) {
		out = append(out, Violation{Package: pkg, Pos: position(fset, p), What: what})
	}
	var imports []string
	local := map[string]string{} // local name -> import path
	for _, is := range f.Imports {
		path, _ := strconv.Unquote(is.Path.Value)
		imports = append(imports, path)
		name := defaultName(path)
		if is.Name != nil {
			name = is.Name.Name
		}
		switch {
		case forbidden(path, rules.ForbiddenImports):
			report(is.Pos(), fmt.Sprintf("imports %q", path))
		case name == "." && namesIn(path, rules.ForbiddenNames):
			report(is.Pos(), fmt.Sprintf("dot-imports %q, hiding its forbidden names", path))
		}
		local[name] = path
	}
	ast.Inspect(f, func(n ast.Node) bool {
		switch n := n.(type) {
		case *ast.GoStmt:
			if rules.NoGoroutines {
				report(n.Pos(), "starts a goroutine")
			}
		case *ast.SelectStmt:
			if rules.NoGoroutines {
				report(n.Pos(), "has a select statement")
			}
		case *ast.SelectorExpr:
			id, ok := n.X.(*ast.Ident)
			path, isPkg := "", false
			if ok {
				path, isPkg = local[id.Name]
			}
			if !isPkg {
				if rules.NoGoroutines && n.Sel.Name == "Go" {
					report(n.Sel.Pos(), "uses a Go method (it starts a goroutine)")
				}
				break
			}
			name := path + "." + n.Sel.Name
			if slices.Contains(rules.ForbiddenNames, name) {
				report(n.Pos(), "uses "+name)
			}
		}
		return true
	})
	return out, imports
}

// majorVersion matches the last element of a module path's major version
// suffix ("v2"), which is not the package name.
var majorVersion = regexp.MustCompile(`^v[0-9]+$`)

// defaultName returns the name an import path is known by without a
// rename: its last element, skipping a major version suffix. (A package
// whose name differs from its path cannot hide a forbidden name: those are
// all in the standard library.)
func defaultName(path string) string {
	elems := strings.Split(path, "/")
	name := elems[len(elems)-1]
	if len(elems) > 1 && majorVersion.MatchString(name) {
		name = elems[len(elems)-2]
	}
	return name
}

// namesIn reports whether any of the package-qualified names belongs to the
// package with the given import path.
func namesIn(path string, names []string) bool {
	return slices.ContainsFunc(names, func(n string) bool {
		i := strings.LastIndex(n, ".")
		return i >= 0 && n[:i] == path
	})
}

func forbidden(path string, rules []string) bool {
	for _, r := range rules {
		if strings.HasSuffix(r, "/") {
			if strings.HasPrefix(path, r) {
				return true
			}
			continue
		}
		if path == r {
			return true
		}
	}
	return false
}

func position(fset *token.FileSet, p token.Pos) string {
	pos := fset.Position(p)
	return fmt.Sprintf("%s:%d", filepath.Base(pos.Filename), pos.Line)
}
