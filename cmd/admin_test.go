package cmd

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/rhizome-chat/rhizome/clientapi"
	"github.com/rhizome-chat/rhizome/node"
	"github.com/rhizome-chat/rhizome/node/nodetest"
)

// registerHTTP registers user with a fresh key and the registration token,
// returning the HTTP status.
func registerHTTP(t *testing.T, n *node.Node, user, regToken string) int {
	t.Helper()
	pub, _, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := json.Marshal(map[string]string{"user": user, "device": "phone", "signature_key": base64.StdEncoding.EncodeToString(pub), "registration_token": regToken})
	resp, err := http.Post("http://"+n.APIAddr()+"/v1/register", "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// TestAdminTokenCommands issues, lists, uses and revokes registration
// tokens through rhizome admin token against a real node in token mode.
func TestAdminTokenCommands(t *testing.T) {
	dir := t.TempDir()
	n := nodetest.Start(t, nodetest.Options{Dir: dir, Config: func(c *node.Config) { c.API.Registration = node.RegistrationToken }})

	if code := registerHTTP(t, n, "nobody", ""); code != 403 {
		t.Fatalf("register without a token: %d, want 403", code)
	}
	var first, second clientapi.IssuedToken
	runJSON(t, &first, "admin", "token", "create", "--data-dir", dir, "--note", "for bob")
	runJSON(t, &second, "admin", "token", "create", "--expires", "0", "--data-dir", dir)
	if !strings.HasPrefix(first.Token, "rhzreg_") || first.Note != "for bob" || first.Expires == 0 || second.Expires != 0 {
		t.Fatalf("created %+v and %+v", first, second)
	}
	// The human form prints the token alone on stdout, for scripts.
	code, out, _ := run(t, "admin", "token", "create", "--data-dir", dir)
	if code != 0 || !strings.HasPrefix(out, "rhzreg_") || strings.Count(out, "\n") != 1 {
		t.Fatalf("create: exit %d, stdout %q", code, out)
	}
	third := strings.TrimSpace(out)

	var list struct { // IssuedToken, not RegistrationToken: a listed secret would show
		Registration string                  `json:"registration"`
		Tokens       []clientapi.IssuedToken `json:"tokens"`
	}
	runJSON(t, &list, "admin", "token", "list", "--data-dir", dir)
	// Tokens created in the same millisecond are listed in ID order, so
	// first need not come first.
	listed := slices.ContainsFunc(list.Tokens, func(x clientapi.IssuedToken) bool { return x.ID == first.ID })
	secret := slices.ContainsFunc(list.Tokens, func(x clientapi.IssuedToken) bool { return x.Token != "" })
	if list.Registration != "token" || len(list.Tokens) != 3 || !listed || secret {
		t.Fatalf("list = %+v", list)
	}

	if code := registerHTTP(t, n, "bob", first.Token); code != 201 {
		t.Fatalf("register with a token: %d", code)
	}
	if code := registerHTTP(t, n, "bob2", first.Token); code != 403 {
		t.Fatalf("second use of a token: %d, want 403", code)
	}
	if code, out, errs := run(t, "admin", "token", "revoke", second.ID, "--data-dir", dir); code != 0 || !strings.Contains(out, "Revoked") {
		t.Fatalf("revoke: %d %q %q", code, out, errs)
	}
	if code := registerHTTP(t, n, "carol", second.Token); code != 403 {
		t.Fatalf("register with a revoked token: %d, want 403", code)
	}
	runJSON(t, &list, "admin", "token", "list", "--data-dir", dir)
	if len(list.Tokens) != 1 {
		t.Fatalf("after use and revoke: %+v", list.Tokens)
	}
	// rhizome register: refused without a token, registered with one.
	daveDir := filepath.Join(t.TempDir(), "dave")
	api := "http://" + n.APIAddr()
	if code, _, errs := run(t, "register", "--server", api, "--user", "dave", "--device", "phone", "--dir", daveDir); code != 1 || !strings.Contains(errs, "token") {
		t.Fatalf("rhizome register without a token: exit %d: %s", code, errs)
	}
	var reg map[string]string
	runJSON(t, &reg, "register", "--server", api, "--user", "dave", "--device", "phone", "--token", third, "--dir", filepath.Join(t.TempDir(), "dave2"))
	if reg["user_uri"] != "mimi://a.test/u/dave" {
		t.Fatalf("rhizome register --token: %v", reg)
	}
	code, out, _ = run(t, "admin", "token", "list", "--data-dir", dir)
	if code != 0 || !strings.Contains(out, "No outstanding") {
		t.Fatalf("empty list: %d %q", code, out)
	}

	// Errors an operator meets.
	tests := []struct {
		name string
		args []string
		code int
		msg  string
	}{
		{"no data folder", []string{"admin", "token", "list", "--data-dir", filepath.Join(dir, "nope")}, 1, "no admin token"},
		{"unknown ID", []string{"admin", "token", "revoke", "0123456789abcdef", "--data-dir", dir}, 1, "no outstanding registration token"},
		{"malformed ID", []string{"admin", "token", "revoke", "xyz", "--data-dir", dir}, 1, "hex digits"},
		{"missing ID", []string{"admin", "token", "revoke", "--data-dir", dir}, 2, "expected ID"},
		{"node down", []string{"admin", "token", "list", "--data-dir", dir, "--api", "http://127.0.0.1:1"}, 1, "does not answer"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			code, _, errs := run(t, tc.args...)
			if code != tc.code || !strings.Contains(errs, tc.msg) {
				t.Fatalf("exit %d, stderr %q; want %d with %q", code, errs, tc.code, tc.msg)
			}
		})
	}
	// A wrong admin token is refused by the node.
	if err := os.WriteFile(filepath.Join(dir, node.AdminTokenFile), []byte("rhzadm_"+strings.Repeat("x", 43)), 0o600); err != nil {
		t.Fatal(err)
	}
	if code, _, errs := run(t, "admin", "token", "list", "--data-dir", dir); code != 1 || !strings.Contains(errs, "401") {
		t.Fatalf("wrong admin token: %d %q", code, errs)
	}
}

func TestAdminHelpTeaches(t *testing.T) {
	code, out, _ := run(t, "admin", "token", "create", "--help")
	if code != 0 || !strings.Contains(out, "Examples:") || !strings.Contains(out, "--expires") || !strings.Contains(out, "registration_token") {
		t.Fatalf("help: %d %q", code, out)
	}
	if got := loopbackAddr("0.0.0.0:8600"); got != "127.0.0.1:8600" {
		t.Fatalf("loopbackAddr(0.0.0.0:8600) = %s", got)
	}
	if got := loopbackAddr("[::]:8600"); got != "[::1]:8600" {
		t.Fatalf("loopbackAddr([::]:8600) = %s", got)
	}
}
