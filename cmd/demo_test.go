package cmd

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/rhizome-chat/rhizome/internal/demo"
)

func TestDemoFlags(t *testing.T) {
	full := t.TempDir()
	if err := os.WriteFile(filepath.Join(full, "old"), []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		args   []string
		code   int
		stdout []string
		stderr string
	}{
		{name: "help", args: []string{"demo", "--help"}, code: 0, stdout: []string{"Usage: rhizome demo", "--dir", "--keep", "--seed", "--json", "-v", "cut off", "exit status is 0 only if"}},
		{name: "listed in the command tree", args: []string{"--help"}, code: 0, stdout: []string{"demo", "through a partition"}},
		{name: "positional argument", args: []string{"demo", "now"}, code: 2, stderr: "takes no arguments"},
		{name: "unknown flag", args: []string{"demo", "--fast"}, code: 2, stderr: "flag provided but not defined"},
		{name: "bad seed", args: []string{"demo", "--seed", "x"}, code: 2, stderr: "invalid value"},
		{name: "dir not empty", args: []string{"demo", "--dir", full}, code: 2, stderr: "is not empty"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, out, errOut := run(t, tt.args...)
			if code != tt.code {
				t.Fatalf("exit %d, want %d\nstdout: %s\nstderr: %s", code, tt.code, out, errOut)
			}
			for _, s := range tt.stdout {
				if !strings.Contains(out, s) {
					t.Errorf("stdout lacks %q:\n%s", s, out)
				}
			}
			if !strings.Contains(errOut, tt.stderr) {
				t.Errorf("stderr lacks %q:\n%s", tt.stderr, errOut)
			}
		})
	}
	if _, err := os.Stat(filepath.Join(full, "servers")); err == nil {
		t.Fatal("the demo wrote into a folder that was not empty")
	}
}

// TestDemoRunJSON runs the whole demo through the command line with --json:
// exit status 0, stdout is the report alone (passed, nothing lost), the
// progress goes to stderr, and the temporary data folder is removed.
func TestDemoRunJSON(t *testing.T) {
	code, out, errOut := run(t, "demo", "--json", "--seed", "3")
	if code != 0 {
		t.Fatalf("exit %d\nstdout: %s\nstderr: %s", code, out, errOut)
	}
	var rep demo.Report
	dec := json.NewDecoder(strings.NewReader(out))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&rep); err != nil {
		t.Fatalf("stdout is not the JSON report: %v\n%s", err, out)
	}
	if dec.More() {
		t.Fatal("stdout holds more than the report")
	}
	if !rep.Passed || rep.Seed != 3 || rep.Totals.Lost != 0 || rep.Totals.Sent == 0 || rep.Totals.Delivered != rep.Totals.Expected || len(rep.Devices) != 5 {
		t.Fatalf("report: passed %v seed %d totals %+v devices %d failures %v", rep.Passed, rep.Seed, rep.Totals, len(rep.Devices), rep.Failures)
	}
	for _, want := range []string{"cut off", "healed", "converged", "PASS"} {
		if !strings.Contains(errOut, want) {
			t.Errorf("progress on stderr lacks %q:\n%s", want, errOut)
		}
	}
	m := regexp.MustCompile(`data in (\S+)`).FindStringSubmatch(errOut)
	if m == nil {
		t.Fatalf("stderr does not name the data folder:\n%s", errOut)
	}
	if _, err := os.Stat(m[1]); !os.IsNotExist(err) {
		t.Fatalf("temporary data folder %s still exists after the run (stat: %v)", m[1], err)
	}
}
