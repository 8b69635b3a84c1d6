package node

import (
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// TestLayers: the packages under node/ depend downwards only. The HTTP API
// does not import the node (it reaches the room driver through
// httpapi.Rooms), accounts and the feed import neither, and the internal
// packages import none of them.
func TestLayers(t *testing.T) {
	const mod = "github.com/rhizome-chat/rhizome/"
	above := map[string][]string{
		"httpapi":            {"node", "node/nodetest"},
		"accounts":           {"node", "node/nodetest", "node/httpapi", "node/feed"},
		"feed":               {"node", "node/nodetest", "node/httpapi", "node/accounts"},
		"internal/apierror":  {"node", "node/nodetest", "node/httpapi", "node/accounts", "node/feed"},
		"internal/localdb":   {"node", "node/nodetest", "node/httpapi", "node/accounts", "node/feed"},
		"internal/ratelimit": {"node", "node/nodetest", "node/httpapi", "node/accounts", "node/feed"},
	}
	for dir, banned := range above {
		files, err := filepath.Glob(filepath.Join(dir, "*.go"))
		if err != nil || len(files) == 0 {
			t.Fatalf("%s: no Go files (%v)", dir, err)
		}
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
			for _, imp := range af.Imports {
				path, _ := strconv.Unquote(imp.Path.Value)
				for _, b := range banned {
					if path == mod+b {
						t.Errorf("%s imports %s, a package above it", f, path)
					}
				}
			}
		}
	}
}
