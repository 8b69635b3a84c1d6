package dag

import (
	"go/ast"
	"go/parser"
	"go/token"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// TestPurity keeps package dag a pure core (design brief, "Pure cores"): its
// non-test files import no I/O, logger, randomness, badger or libp2p, call
// no time.Now and start no goroutines. internal/deptest checks the whole
// repository; this test names the rule next to the code.
func TestPurity(t *testing.T) {
	t.Parallel()
	forbidden := []string{"os", "net", "log", "log/slog", "crypto/rand", "math/rand", "math/rand/v2", "unsafe", "syscall"}
	forbiddenPrefixes := []string{"github.com/dgraph-io/", "github.com/libp2p/", "net/", "os/"}
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	checked := 0
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		checked++
		f, err := parser.ParseFile(token.NewFileSet(), name, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		for _, imp := range f.Imports {
			path, _ := strconv.Unquote(imp.Path.Value)
			for _, bad := range forbidden {
				if path == bad {
					t.Errorf("%s imports %s", name, path)
				}
			}
			for _, p := range forbiddenPrefixes {
				if strings.HasPrefix(path, p) {
					t.Errorf("%s imports %s", name, path)
				}
			}
		}
		ast.Inspect(f, func(n ast.Node) bool {
			switch n := n.(type) {
			case *ast.GoStmt:
				t.Errorf("%s starts a goroutine", name)
			case *ast.SelectorExpr:
				if x, ok := n.X.(*ast.Ident); ok && x.Name == "time" && n.Sel.Name == "Now" {
					t.Errorf("%s calls time.Now", name)
				}
			}
			return true
		})
	}
	if checked < 5 {
		t.Fatalf("checked only %d files: wrong directory?", checked)
	}
}
