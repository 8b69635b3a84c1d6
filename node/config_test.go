package node_test

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rhizome-chat/rhizome/node"
)

func TestDefaultConfigValid(t *testing.T) {
	if err := node.DefaultConfig().Validate(); err != nil {
		t.Fatalf("default config invalid: %v", err)
	}
	// The rendered default must parse back to itself.
	cfg, err := node.ParseConfig(node.MarshalConfig(node.DefaultConfig()))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(node.MarshalConfig(cfg), node.MarshalConfig(node.DefaultConfig())) {
		t.Fatal("default config does not round-trip")
	}
}

func TestParseConfig(t *testing.T) {
	tests := []struct {
		name     string
		in       string
		wantLine int    // 0: no line expected
		wantMsg  string // substring of the error; "" means success
		check    func(t *testing.T, c node.Config)
	}{
		{
			name: "minimal keeps defaults",
			in:   `{"version": 1}`,
			check: func(t *testing.T, c node.Config) {
				if c.API.Listen != "127.0.0.1:8600" || c.DataDir != "rhizome-data" {
					t.Errorf("defaults lost: %+v", c)
				}
			},
		},
		{
			name: "comments and trailing commas",
			in: `// my node
{
  "version": 1, // format
  "server_name": "example.org",
  "p2p": {"mdns": true,},
}`,
			check: func(t *testing.T, c node.Config) {
				if c.ServerName != "example.org" || !c.P2P.MDNS {
					t.Errorf("values not applied: %+v", c)
				}
			},
		},
		{name: "missing version", in: `{"data_dir": "x"}`, wantMsg: `missing "version"`},
		{name: "future version", in: "{\n\"version\": 2\n}", wantLine: 2, wantMsg: "version 2 is not supported"},
		{name: "unknown top-level key", in: "{\n  \"version\": 1,\n  \"dta_dir\": \"x\"\n}", wantLine: 3, wantMsg: `unknown key "dta_dir"`},
		{name: "unknown nested key", in: "{\"version\": 1,\n\"p2p\": {\n  \"listen\": [],\n  \"mnds\": true}}", wantLine: 4, wantMsg: `unknown key "p2p.mnds"`},
		{name: "duplicate key", in: "{\"version\": 1,\n\"version\": 1}", wantLine: 2, wantMsg: `appears twice`},
		{name: "wrong type", in: "{\"version\": 1,\n\"p2p\": {\"mdns\": \"yes\"}}", wantLine: 2, wantMsg: `want bool`},
		{name: "syntax error", in: "{\"version\": 1,\n\"p2p\": {]}", wantLine: 2, wantMsg: "syntax"},
		{name: "bad multiaddr", in: `{"version": 1, "p2p": {"listen": ["tcp://1.2.3.4"]}}`, wantMsg: `"p2p.listen"`},
		{name: "bootstrap without peer id", in: `{"version": 1, "p2p": {"bootstrap": ["/ip4/127.0.0.1/tcp/1"]}}`, wantMsg: "/p2p/<peer ID>"},
		{name: "bad api address", in: `{"version": 1, "api": {"listen": "localhost"}}`, wantMsg: `"api.listen"`},
		{name: "bad log level", in: `{"version": 1, "log": {"level": "loud"}}`, wantMsg: `unknown log level "loud"`},
		{name: "bad server name", in: `{"version": 1, "server_name": "a b"}`, wantMsg: `"server_name"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := node.ParseConfig([]byte(tt.in))
			if tt.wantMsg == "" {
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				if tt.check != nil {
					tt.check(t, c)
				}
				return
			}
			var ce *node.ConfigError
			if !errors.As(err, &ce) || !errors.Is(err, node.ErrConfig) {
				t.Fatalf("err = %v, want *ConfigError", err)
			}
			if !strings.Contains(err.Error(), tt.wantMsg) {
				t.Errorf("err = %q, want it to contain %q", err, tt.wantMsg)
			}
			if tt.wantLine != 0 && ce.Line != tt.wantLine {
				t.Errorf("line = %d, want %d (err %q)", ce.Line, tt.wantLine, err)
			}
		})
	}
}

func TestLoadConfigResolvesDataDir(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "rhizome.hujson")
	if err := os.WriteFile(path, []byte("{\"version\": 1,\n\"bogus\": 1}"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := node.LoadConfig(path)
	if err == nil || !strings.HasPrefix(err.Error(), path+":2:") {
		t.Fatalf("err = %v, want it to start with %s:2:", err, path)
	}
	if err := os.WriteFile(path, []byte(`{"version": 1, "data_dir": "d"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := node.LoadConfig(path)
	if err != nil {
		t.Fatal(err)
	}
	if c.DataDir != filepath.Join(dir, "d") {
		t.Errorf("DataDir = %q, want %q", c.DataDir, filepath.Join(dir, "d"))
	}
}

func TestNewLogger(t *testing.T) {
	var buf bytes.Buffer
	l, err := node.NewLogger(&buf, "warn", "json")
	if err != nil {
		t.Fatal(err)
	}
	l.Info("hidden")
	l.Warn("shown", "k", 1)
	if strings.Contains(buf.String(), "hidden") || !strings.Contains(buf.String(), `"msg":"shown"`) {
		t.Fatalf("log output %q", buf.String())
	}
	if _, err := node.NewLogger(&buf, "info", "xml"); err == nil {
		t.Fatal("xml format accepted")
	}
}
