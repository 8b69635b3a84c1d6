package cmd

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rhizome-chat/rhizome/internal/sim"
)

func TestSimCommandDeterministic(t *testing.T) {
	file := filepath.Join("..", "internal", "sim", "testdata", "three-way.txt")
	code1, out1, err1 := run(t, "sim", "--format", "json", "--seed", "7", "--seeds", "2", file)
	code2, out2, _ := run(t, "sim", "--format", "json", "--seed", "7", "--seeds", "2", "--jobs", "1", file)
	if code1 != 0 || code2 != 0 {
		t.Fatalf("exit %d/%d: %s", code1, code2, err1)
	}
	if out1 != out2 {
		t.Fatal("same scenario and seeds gave different reports (parallel vs one job)")
	}
	lines := strings.Split(strings.TrimSpace(out1), "\n")
	if len(lines) != 3 || !strings.Contains(lines[0], `"seed":7`) || !strings.Contains(lines[1], `"seed":8`) || !strings.Contains(lines[0], `"messages_lost":0`) {
		t.Fatalf("unexpected json reports:\n%s", out1)
	}
	var sum struct{ Summary sim.Summary }
	if err := json.Unmarshal([]byte(lines[2]), &sum); err != nil || sum.Summary.Scenario != "three-way" || sum.Summary.Runs != 2 {
		t.Fatalf("summary line %q: %v %+v", lines[2], err, sum)
	}
	code, out, _ := run(t, "sim", "--format", "csv", file)
	rows := strings.Split(strings.TrimSpace(out), "\n")
	if code != 0 || len(rows) != 5 || !strings.HasPrefix(rows[0], "scenario,seed,converged") || rows[2] != "" ||
		!strings.HasPrefix(rows[3], "scenario,runs,failed") || !strings.HasPrefix(rows[4], "three-way,1,0,") {
		t.Fatalf("csv: exit %d\n%s", code, out)
	}
}

func TestSimCommandSummary(t *testing.T) {
	file := filepath.Join("..", "internal", "sim", "testdata", "hub-minority.txt")
	code, out, errOut := run(t, "sim", "--seeds", "3", "--report", "summary", file)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	if strings.Contains(out, "seed") || !strings.Contains(out, "converge after heal") || !strings.Contains(out, "hub-minority") {
		t.Fatalf("summary-only text output:\n%s", out)
	}
	code, out, _ = run(t, "sim", "--seeds", "3", "--format", "csv", "--report", "runs", file)
	if rows := strings.Split(strings.TrimSpace(out), "\n"); code != 0 || len(rows) != 4 {
		t.Fatalf("runs-only csv: exit %d\n%s", code, out)
	}
}

func TestSimCommandErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
		code int
		msg  string
	}{
		{"bad format", []string{"sim", "--format", "xml"}, 2, "use text, json or csv"},
		{"bad report", []string{"sim", "--report", "all"}, 2, "use runs, summary"},
		{"zero seeds", []string{"sim", "--seeds", "0"}, 2, "at least 1"},
		{"missing file", []string{"sim", "no-such.txt"}, 1, "no such file"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if code, _, errOut := run(t, tc.args...); code != tc.code || !strings.Contains(errOut, tc.msg) {
				t.Fatalf("exit %d, stderr %q; want %d and %q", code, errOut, tc.code, tc.msg)
			}
		})
	}
}

// TestSimCommandFailsLostPoint checks that a scenario whose expectation
// fails makes the command exit 1 and print the replay command.
func TestSimCommandFailsLostPoint(t *testing.T) {
	file := filepath.Join(t.TempDir(), "calm.txt")
	if err := os.WriteFile(file, []byte("name calm\nservers 3\nclients 1\nticks 300\nexpect reorgs >= 1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	code, _, errOut := run(t, "sim", "--seed", "5", file)
	if code != 1 || !strings.Contains(errOut, "FAIL calm seed 5") || !strings.Contains(errOut, "replay: rhizome sim --seed 5 "+file) {
		t.Fatalf("exit %d, stderr:\n%s", code, errOut)
	}
}

// TestSimRunAllStopsOnCancel checks that an interrupt stops handing out
// runs instead of finishing thousands of them.
func TestSimRunAllStopsOnCancel(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	sc := sim.DefaultScenario()
	if _, err := runAll(ctx, io.Discard, []sim.Scenario{sc}, 1, 1000, 2, false); !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
}
