package cmd

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func run(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	code = Main(context.Background(), args, strings.NewReader(""), &out, &errb)
	return code, out.String(), errb.String()
}

func TestHelpShowsCommandTree(t *testing.T) {
	code, out, _ := run(t, "--help")
	if code != 0 {
		t.Fatalf("exit %d", code)
	}
	for _, want := range []string{"Usage: rhizome", "version", "config default", "config check", "mls-vectors", "--log-level"} {
		if !strings.Contains(out, want) {
			t.Errorf("help lacks %q:\n%s", want, out)
		}
	}
}

func TestDispatch(t *testing.T) {
	tests := []struct {
		name     string
		args     []string
		code     int
		stdout   string // substring
		stderr   string // substring
		noStdout bool
	}{
		{name: "no args", args: nil, code: 2, stderr: "Commands:"},
		{name: "version", args: []string{"version"}, code: 0, stdout: "rhizome " + Version},
		{name: "version extra arg", args: []string{"version", "x"}, code: 2, stderr: "takes no arguments"},
		{name: "unknown command suggests", args: []string{"verison"}, code: 2, stderr: `did you mean "version"`},
		{name: "help subcommand", args: []string{"help", "mls-vectors"}, code: 0, stdout: "--kind"},
		{name: "command --help", args: []string{"mls-vectors", "--help"}, code: 0, stdout: "passive-client"},
		{name: "nested help", args: []string{"help", "config", "check"}, code: 0, stdout: "Usage: rhizome config check FILE"},
		{name: "group without subcommand", args: []string{"config"}, code: 2, stderr: "default  print"},
		{name: "bad flag", args: []string{"mls-vectors", "--nope"}, code: 2, stderr: "flag provided but not defined"},
		{name: "bad log level", args: []string{"--log-level", "loud", "version"}, code: 2, stderr: "unknown log level"},
		{name: "mls-vectors needs files", args: []string{"mls-vectors"}, code: 2, stderr: "needs at least one FILE"},
		{name: "mls-vectors bad kind", args: []string{"mls-vectors", "--kind", "nope", "x.json"}, code: 2, stderr: "unknown vector kind"},
		{name: "mls-vectors missing file", args: []string{"mls-vectors", "no-such-file.json"}, code: 1, stdout: "0 passed, 0 failed"},
		{name: "config default", args: []string{"config", "default"}, code: 0, stdout: `"version": 1`},
		{name: "config check missing file", args: []string{"config", "check", "nope.hujson"}, code: 1, stderr: "no such file"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, out, errOut := run(t, tt.args...)
			if code != tt.code {
				t.Errorf("exit %d, want %d\nstdout: %s\nstderr: %s", code, tt.code, out, errOut)
			}
			if !strings.Contains(out, tt.stdout) {
				t.Errorf("stdout %q lacks %q", out, tt.stdout)
			}
			if !strings.Contains(errOut, tt.stderr) {
				t.Errorf("stderr %q lacks %q", errOut, tt.stderr)
			}
		})
	}
}

func TestConfigCheckNamesLine(t *testing.T) {
	path := filepath.Join(t.TempDir(), "node.hujson")
	if err := os.WriteFile(path, []byte("{\n  \"version\": 1,\n  \"p2p\": {\"mnds\": true}\n}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	code, _, errOut := run(t, "config", "check", path)
	if code != 1 || !strings.Contains(errOut, path+":3:") || !strings.Contains(errOut, `"p2p.mnds"`) {
		t.Fatalf("exit %d, stderr %q", code, errOut)
	}
}

// TestMLSVectorsCommand runs the shipped official files through the command
// and checks the report format and the exit status on a corrupted file.
func TestMLSVectorsCommand(t *testing.T) {
	dir := filepath.Join("..", "mls", "testdata", "mlswg")
	good := filepath.Join(dir, "tree-math.json")
	code, out, errOut := run(t, "mls-vectors", good)
	if code != 0 {
		t.Fatalf("exit %d\n%s%s", code, out, errOut)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 2 || !strings.HasPrefix(lines[0], "tree-math.json: 10 passed, 0 failed, 0 skipped") || lines[1] != "10 passed, 0 failed" {
		t.Fatalf("unexpected report:\n%s", out)
	}

	// The same file under another name needs --kind; a corrupted copy fails.
	data, err := os.ReadFile(good)
	if err != nil {
		t.Fatal(err)
	}
	bad := strings.Replace(string(data), `"root": 0`, `"root": 7`, 1)
	if bad == string(data) {
		t.Fatal("fixture edit did not apply")
	}
	other := filepath.Join(t.TempDir(), "my-tree.json")
	if err := os.WriteFile(other, []byte(bad), 0o600); err != nil {
		t.Fatal(err)
	}
	if code, out, _ := run(t, "mls-vectors", other); code != 1 || !strings.Contains(out, "my-tree.json: error:") {
		t.Fatalf("uninferable name: exit %d\n%s", code, out)
	}
	code, out, _ = run(t, "mls-vectors", "--kind", "tree-math", other)
	if code != 1 || !strings.Contains(out, "my-tree.json: 9 passed, 1 failed") {
		t.Fatalf("corrupted file: exit %d\n%s", code, out)
	}
}
