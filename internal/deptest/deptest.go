// Package deptest enforces the import boundary of Rhizome's pure cores.
//
// The ordering, room-state, MLS and event-validation code must behave the
// same on every server and in the simulator, so it may not reach for the
// network, the disk, a logger, the wall clock, global randomness or
// goroutines. [Check] parses a package and every package of the same module
// it imports, and reports each forbidden import, call or go statement with
// its file and line. The repository's own test runs it over the pure cores.
package deptest

import (
	"fmt"
	"go/ast"
	"go/build"
	"go/parser"
	"go/token"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

// Rules says what a pure package may not use.
type Rules struct {
	// ForbiddenImports are import paths, or prefixes ending in "/", that may
	// not be imported.
	ForbiddenImports []string
	// ForbiddenCalls are package-qualified functions, e.g. "time.Now".
	ForbiddenCalls []string
	// NoGoroutines forbids go statements.
	NoGoroutines bool
}

// PureCoreRules are the rules for mls, roomstate, consensus and dag.
var PureCoreRules = Rules{
	ForbiddenImports: []string{
		"os", "os/", "net", "net/", "syscall", "io/ioutil", "log", "log/",
		"crypto/rand", "math/rand", "math/rand/", "runtime/", "plugin", "unsafe",
		"github.com/dgraph-io/badger/", "github.com/libp2p/",
	},
	ForbiddenCalls: []string{
		"time.Now", "time.Since", "time.Until", "time.Sleep", "time.After",
		"time.AfterFunc", "time.Tick", "time.NewTimer", "time.NewTicker",
	},
	NoGoroutines: true,
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
// checked; build constraints are honoured for the host platform.
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
		for _, name := range bp.GoFiles {
			path := filepath.Join(dir, name)
			f, err := parser.ParseFile(fset, path, nil, parser.SkipObjectResolution)
			if err != nil {
				return nil, fmt.Errorf("deptest: parse %s: %w", path, err)
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

func checkFile(fset *token.FileSet, f *ast.File, pkg string, rules Rules) ([]Violation, []string) {
	var out []Violation
	var imports []string
	local := map[string]string{} // local name -> import path
	for _, is := range f.Imports {
		path, _ := strconv.Unquote(is.Path.Value)
		imports = append(imports, path)
		name := path[strings.LastIndex(path, "/")+1:]
		if is.Name != nil {
			name = is.Name.Name
		}
		local[name] = path
		if forbidden(path, rules.ForbiddenImports) {
			out = append(out, Violation{Package: pkg, Pos: position(fset, is.Pos()), What: fmt.Sprintf("imports %q", path)})
		}
	}
	ast.Inspect(f, func(n ast.Node) bool {
		switch n := n.(type) {
		case *ast.GoStmt:
			if rules.NoGoroutines {
				out = append(out, Violation{Package: pkg, Pos: position(fset, n.Pos()), What: "starts a goroutine"})
			}
		case *ast.SelectorExpr:
			id, ok := n.X.(*ast.Ident)
			if !ok {
				break
			}
			path, ok := local[id.Name]
			if !ok {
				break
			}
			call := path + "." + n.Sel.Name
			if slices.Contains(rules.ForbiddenCalls, call) {
				out = append(out, Violation{Package: pkg, Pos: position(fset, n.Pos()), What: "uses " + call})
			}
		}
		return true
	})
	return out, imports
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
