package cmd

import (
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// TestAllowAndKeyPackagesCommands drives `rhizome allow` and `rhizome
// keypackages` against a real node.
func TestAllowAndKeyPackagesCommands(t *testing.T) {
	n := startClientTestNode(t, "a.test")
	url := "http://" + n.APIAddr()
	bobDir := filepath.Join(t.TempDir(), "bob")
	var reg map[string]string
	runJSON(t, &reg, "register", "--server", url, "--user", "bob", "--device", "laptop", "--dir", bobDir)

	var allowed struct {
		Allowed []string `json:"allowed"`
	}
	runJSON(t, &allowed, "allow", "--dir", bobDir, "alice")
	if !slices.Equal(allowed.Allowed, []string{"mimi://a.test/u/alice"}) {
		t.Fatalf("allow alice: %v", allowed.Allowed)
	}
	runJSON(t, &allowed, "allow", "--dir", bobDir, "mimi://b.test/u/carol")
	runJSON(t, &allowed, "allow", "--dir", bobDir, "--list")
	if !slices.Equal(allowed.Allowed, []string{"mimi://a.test/u/alice", "mimi://b.test/u/carol"}) {
		t.Fatalf("allow --list: %v", allowed.Allowed)
	}
	runJSON(t, &allowed, "allow", "--dir", bobDir, "--remove", "alice")
	if !slices.Equal(allowed.Allowed, []string{"mimi://b.test/u/carol"}) {
		t.Fatalf("allow --remove alice: %v", allowed.Allowed)
	}
	if code, _, errs := run(t, "allow", "--dir", bobDir, "--remove", "alice"); code != 1 || !strings.Contains(errs, "not allowed") {
		t.Fatalf("removing a consent twice: exit %d: %s", code, errs)
	}
	if code, _, errs := run(t, "allow", "--dir", bobDir); code != 2 || !strings.Contains(errs, "give a USER") {
		t.Fatalf("allow without a user: exit %d: %s", code, errs)
	}
	if code, _, errs := run(t, "allow", "--dir", bobDir, "not a user!"); code != 1 || !strings.Contains(errs, "user URI") {
		t.Fatalf("allow of a malformed user: exit %d: %s", code, errs)
	}

	var kp struct {
		Uploaded int `json:"uploaded"`
		Held     int `json:"held"`
	}
	runJSON(t, &kp, "keypackages", "--dir", bobDir, "--count", "7")
	if kp.Uploaded != 7 || kp.Held < 7 {
		t.Fatalf("keypackages --count 7: %+v", kp)
	}
	if code, _, errs := run(t, "keypackages", "--dir", bobDir, "--count", "500"); code != 1 || !strings.Contains(errs, "0 to 200") {
		t.Fatalf("keypackages --count 500: exit %d: %s", code, errs)
	}
}
