package node_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rhizome-chat/rhizome/node"
)

func testConfig(t *testing.T) node.Config {
	t.Helper()
	cfg := node.LoopbackConfig(t.TempDir(), node.DefaultConfig().ServerName)
	cfg.P2P.Listen = append(cfg.P2P.Listen, "/ip4/127.0.0.1/udp/0/quic-v1")
	return cfg
}

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestNodeStartServesOpsAndStops(t *testing.T) {
	cfg := testConfig(t)
	n, err := node.New(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- n.Run(ctx) }()
	deadline := time.Now().Add(10 * time.Second)
	for n.OpsAddr() == "" && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	base := "http://" + n.OpsAddr()
	var code int
	var body string
	for time.Now().Before(deadline) {
		if code, body = get(t, base+"/readyz"); code == 200 {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	var ready struct {
		Ready      bool     `json:"ready"`
		Components []string `json:"components"`
	}
	if err := json.Unmarshal([]byte(body), &ready); err != nil || code != 200 || !ready.Ready {
		t.Fatalf("readyz = %d %s", code, body)
	}
	if code, body := get(t, base+"/healthz"); code != 200 || body != "ok\n" {
		t.Fatalf("healthz = %d %q", code, body)
	}
	if code, body := get(t, base+"/metrics"); code != 200 || !strings.Contains(body, "rhizome_rooms") {
		t.Fatalf("metrics = %d, lacks rhizome_rooms", code)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Run: %v", err)
		}
	case <-time.After(node.ShutdownTimeout + 5*time.Second):
		t.Fatal("shutdown hung")
	}
	// The identity survives a restart.
	first := n.ServerKey()
	n2, _ := node.New(cfg, nil)
	if err := n2.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer n2.Stop(context.Background())
	if !first.Equal(n2.ServerKey()) {
		t.Fatal("identity changed across restart")
	}
}

func TestStartFailsCleanlyOnBusyPort(t *testing.T) {
	cfg := testConfig(t)
	a, _ := node.New(cfg, nil)
	if err := a.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer a.Stop(context.Background())
	cfg2 := testConfig(t)
	cfg2.Metrics.Listen = a.OpsAddr()
	b, _ := node.New(cfg2, nil)
	err := b.Start(context.Background())
	if err == nil || !strings.Contains(err.Error(), "listen ops") {
		t.Fatalf("err = %v, want a listen error", err)
	}
}

func TestIdentityFile(t *testing.T) {
	dir := t.TempDir()
	k1, created, err := node.LoadOrCreateIdentity(dir)
	if err != nil || !created {
		t.Fatalf("create: %v %v", created, err)
	}
	k2, created, err := node.LoadOrCreateIdentity(dir)
	if err != nil || created || !k1.Equal(k2) {
		t.Fatalf("reload: created=%v err=%v equal=%v", created, err, k1.Equal(k2))
	}
	path := filepath.Join(dir, node.IdentityFile)
	if err := os.Chmod(path, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, _, err := node.LoadOrCreateIdentity(dir); err == nil || !strings.Contains(err.Error(), "chmod 600") {
		t.Fatalf("world-readable key accepted: %v", err)
	}
	os.Chmod(path, 0o600)
	if err := os.WriteFile(path, []byte("garbage"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, _, err := node.LoadOrCreateIdentity(dir); err == nil {
		t.Fatal("garbage key accepted")
	}
}
