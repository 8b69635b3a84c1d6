package node_test

import (
	"context"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rhizome-chat/rhizome/node"
	"github.com/rhizome-chat/rhizome/node/nodetest"
)

// TestAdminAPIAccess: the admin API needs the admin token of the data
// folder and refuses requests relayed by a proxy; the token file is private
// and survives restarts.
func TestAdminAPIAccess(t *testing.T) {
	dir := t.TempDir()
	n := nodetest.Start(t, nodetest.Options{Dir: dir})
	raw, err := os.ReadFile(filepath.Join(dir, node.AdminTokenFile))
	if err != nil {
		t.Fatal(err)
	}
	info, _ := os.Stat(filepath.Join(dir, node.AdminTokenFile))
	if info.Mode().Perm() != 0o600 {
		t.Fatalf("admin-token mode %v, want 0600", info.Mode().Perm())
	}
	if addr, _ := os.ReadFile(filepath.Join(dir, node.APIAddrFile)); strings.TrimSpace(string(addr)) != n.APIAddr() {
		t.Fatalf("api-addr holds %q, want %q", addr, n.APIAddr())
	}
	token := strings.TrimSpace(string(raw))
	call := func(token string, hdr ...string) int {
		req, _ := http.NewRequest("GET", "http://"+n.APIAddr()+"/v1/admin/tokens", nil)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		for i := 0; i+1 < len(hdr); i += 2 {
			req.Header.Set(hdr[i], hdr[i+1])
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	alice := nodetest.Register(t, n, "alice", "phone")
	for _, tc := range []struct {
		name   string
		status int
		token  string
		hdr    []string
	}{
		{"admin token", 200, token, nil},
		{"no token", 401, "", nil},
		{"a device's token", 401, alice.Token, nil},
		{"another admin token", 401, node.AdminTokenPrefix + strings.Repeat("A", 43), nil},
		{"through a proxy", 403, token, []string{"X-Forwarded-For", "203.0.113.7"}},
		{"through a proxy (Forwarded)", 403, token, []string{"Forwarded", "for=203.0.113.7"}},
	} {
		if got := call(tc.token, tc.hdr...); got != tc.status {
			t.Errorf("%s: %d, want %d", tc.name, got, tc.status)
		}
	}

	admin := &nodetest.Client{T: t, Base: "http://" + n.APIAddr(), Token: token}
	for body, want := range map[string]int{``: 201, `{}`: 201, `{"note":"x","expires_in_seconds":0}`: 201,
		`null`: 400, `{"expires_in_seconds":-1}`: 400, `{"expires_in_seconds":99999999999}`: 400, `{"ttl":5}`: 400} {
		if status, b := admin.Call("POST", "/v1/admin/tokens", "application/json", []byte(body)); status != want {
			t.Errorf("issue with %q: %d %v, want %d", body, status, b, want)
		}
	}
	if toks := nodetest.Must(t, 200)(admin.Get("/v1/admin/tokens"))["tokens"].([]any); len(toks) != 3 {
		t.Fatalf("%d tokens listed, want 3", len(toks))
	}

	// The same token after a restart; a readable token file is refused.
	nodetest.Stop(t, n)
	if tok, err := node.LoadOrCreateAdminToken(dir); err != nil || tok != token {
		t.Fatalf("after restart: %q %v", tok, err)
	}
	if err := os.Chmod(filepath.Join(dir, node.AdminTokenFile), 0o644); err != nil {
		t.Fatal(err)
	}
	n2, err := node.New(node.LoopbackConfig(dir, "a.test"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := n2.Start(context.Background()); err == nil || !strings.Contains(err.Error(), "chmod 600") {
		nodetest.Stop(t, n2)
		t.Fatalf("start with a readable admin token: %v", err)
	}
}
