package node

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"time"

	"github.com/multiformats/go-multiaddr"
	"github.com/tailscale/hujson"

	"github.com/rhizome-chat/rhizome/node/accounts"
	"github.com/rhizome-chat/rhizome/node/httpapi"
	"github.com/rhizome-chat/rhizome/node/internal/ratelimit"
)

// ConfigVersion is the configuration format this build reads and writes.
// A file with another version is refused rather than half understood.
const ConfigVersion = 1

// Config is a node's whole configuration: one HuJSON file (JSON with
// comments and trailing commas) with a required "version" field. Unknown keys
// are errors that name the key and its line.
type Config struct {
	// Version must equal ConfigVersion.
	Version int `json:"version"`
	// DataDir holds the node's badger database, identity key and client
	// state. Relative paths are resolved against the config file's folder
	// (or the working directory for the embedded default).
	DataDir string `json:"data_dir"`
	// ServerName is the human-readable name users' identities are issued
	// under, e.g. "example.org" in mimi://example.org/u/alice.
	ServerName string `json:"server_name"`
	// P2P configures the federation transport.
	P2P P2PConfig `json:"p2p"`
	// API configures the client HTTP API.
	API APIConfig `json:"api"`
	// Metrics configures the Prometheus metrics and health endpoints.
	Metrics ListenConfig `json:"metrics"`
	// Log configures structured logging.
	Log LogConfig `json:"log"`
	// Ordering configures the ordering layer.
	Ordering OrderingConfig `json:"ordering"`
	// Rooms configures joins through other servers (node/join.go).
	Rooms RoomsConfig `json:"rooms"`
}

// OrderingConfig configures the ordering layer (docs/consensus.md).
type OrderingConfig struct {
	// TickMS is the length of one consensus tick in milliseconds (0 means
	// the default, 10). The ordering timeouts are counted in ticks: a hub
	// is suspected after 150 ticks, a side without a majority seals
	// tentatively after 400 to 800, a losing branch is retained for 3000
	// (docs/consensus.md, section 5).
	TickMS int `json:"tick_ms"`
}

// P2PConfig configures the libp2p host.
type P2PConfig struct {
	// Listen lists multiaddrs to listen on (TCP and QUIC).
	Listen []string `json:"listen"`
	// Bootstrap lists peers to dial at start, as multiaddrs ending in /p2p/<peer ID>.
	Bootstrap []string `json:"bootstrap"`
	// MDNS enables discovery of other nodes on the local network.
	MDNS bool `json:"mdns"`
}

// APIConfig configures the client HTTP API: where it listens, who may
// register, and the limits that keep a stranger from exhausting it
// (docs/operations.md, "Limits of the client API").
type APIConfig struct {
	// Listen is the TCP address ("127.0.0.1:8600"); empty disables the API.
	Listen string `json:"listen"`
	// Registration is who may create users: "open" (anyone), "token" (a
	// single-use token from rhizome admin token), "closed" (nobody). Empty
	// means "token" when Listen is beyond loopback and "open" on loopback.
	Registration string `json:"registration"`
	// Limits bounds connections, headers and the time a request may take.
	Limits HTTPLimits `json:"limits"`
	// Rate limits requests per device, user, room and remote address.
	Rate RateLimits `json:"rate"`
}

// Registration modes of APIConfig.Registration.
const (
	RegistrationOpen   = accounts.RegistrationOpen
	RegistrationToken  = accounts.RegistrationToken
	RegistrationClosed = accounts.RegistrationClosed
)

// RegistrationMode is the effective registration mode: Registration, or
// when it is empty, "open" if the API listens on a loopback address only
// and "token" otherwise.
func (c APIConfig) RegistrationMode() string {
	if c.Registration != "" {
		return c.Registration
	}
	host, _, err := net.SplitHostPort(c.Listen)
	if err != nil {
		return RegistrationToken
	}
	if host == "localhost" {
		return RegistrationOpen
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsLoopback() {
		return RegistrationOpen
	}
	return RegistrationToken
}

// HTTPLimits bounds the client API's HTTP server (httpapi.HTTPLimits).
type HTTPLimits = httpapi.HTTPLimits

// RateLimits are the client API's token buckets (httpapi.RateLimits).
type RateLimits = httpapi.RateLimits

// Rate is a token bucket: Burst requests at once, refilled at PerMinute.
// PerMinute 0 disables the bucket.
type Rate = ratelimit.Rate

// ListenConfig names a TCP address ("127.0.0.1:8600"); empty disables the listener.
type ListenConfig struct {
	Listen string `json:"listen"`
}

// LogConfig configures log/slog output.
type LogConfig struct {
	// Level is one of debug, info, warn, error.
	Level string `json:"level"`
	// Format is "text" (default) or "json".
	Format string `json:"format"`
}

// DefaultConfig runs a node on loopback with its data under ./rhizome-data.
func DefaultConfig() Config {
	return Config{
		Version:    ConfigVersion,
		DataDir:    "rhizome-data",
		ServerName: "localhost",
		P2P: P2PConfig{
			Listen:    []string{"/ip4/127.0.0.1/tcp/4601", "/ip4/127.0.0.1/udp/4601/quic-v1"},
			Bootstrap: []string{},
		},
		API: APIConfig{
			Listen: "127.0.0.1:8600",
			Limits: HTTPLimits{
				ReadHeaderTimeoutMS: 5000,
				BodyTimeoutMS:       15000,
				WriteTimeoutMS:      30000,
				IdleTimeoutMS:       120000,
				MaxHeaderBytes:      16 << 10,
				MaxConns:            1024,
				MaxConnsPerIP:       64,
			},
			Rate: RateLimits{
				Device:     Rate{PerMinute: 600, Burst: 120},
				User:       Rate{PerMinute: 1200, Burst: 240},
				Room:       Rate{PerMinute: 600, Burst: 120},
				RegisterIP: Rate{PerMinute: 6, Burst: 10},
			},
		},
		Metrics:  ListenConfig{Listen: "127.0.0.1:8601"},
		Log:      LogConfig{Level: "info", Format: "text"},
		Ordering: OrderingConfig{TickMS: int(DefaultTick / time.Millisecond)},
		Rooms:    RoomsConfig{JoinTimeoutMS: int(DefaultJoinTimeout / time.Millisecond), GraceMS: int(DefaultGrace / time.Millisecond)},
	}
}

// LoopbackConfig is DefaultConfig for a node that shares the machine with
// others (tests, the demo): data in dir, users at serverName, libp2p on
// loopback TCP and the API and metrics on loopback, all on ports the
// system picks (read them back with APIAddr, OpsAddr and PeerAddrs), and
// the given bootstrap peers. Its API has no rate limits (api.rate), since
// tests and the demo drive it as fast as they can; the other limits keep
// their defaults.
func LoopbackConfig(dir, serverName string, bootstrap ...string) Config {
	cfg := DefaultConfig()
	cfg.API.Rate = RateLimits{}
	cfg.DataDir = dir
	cfg.ServerName = serverName
	cfg.API.Listen = "127.0.0.1:0"
	cfg.Metrics.Listen = "127.0.0.1:0"
	cfg.P2P.Listen = []string{"/ip4/127.0.0.1/tcp/0"}
	cfg.P2P.Bootstrap = bootstrap
	return cfg
}

// ErrConfig is wrapped by every configuration error.
var ErrConfig = errors.New("config")

// ConfigError reports a problem in a configuration file, with its line when known.
type ConfigError struct {
	File string // path, or "" for bytes that came from elsewhere
	Line int    // 1-based; 0 when the problem has no single line
	Msg  string
}

func (e *ConfigError) Error() string {
	where := e.File
	if where == "" {
		where = "config"
	}
	if e.Line > 0 {
		where = fmt.Sprintf("%s:%d", where, e.Line)
	}
	return where + ": " + e.Msg
}

// Unwrap makes every ConfigError match ErrConfig.
func (e *ConfigError) Unwrap() error { return ErrConfig }

// LoadConfig reads and validates the configuration file at path. Relative
// paths inside it are resolved against the file's folder.
func LoadConfig(path string) (Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return Config{}, fmt.Errorf("read config: %w", err)
	}
	cfg, err := ParseConfig(data)
	if err != nil {
		var ce *ConfigError
		if errors.As(err, &ce) {
			ce.File = path
		}
		return Config{}, err
	}
	if !filepath.IsAbs(cfg.DataDir) {
		cfg.DataDir = filepath.Join(filepath.Dir(path), cfg.DataDir)
	}
	return cfg, nil
}

// ParseConfig parses HuJSON configuration bytes strictly: comments and
// trailing commas are allowed; unknown or repeated keys, a missing or
// foreign version, and invalid values are errors. Fields the file omits keep
// the defaults of DefaultConfig.
func ParseConfig(data []byte) (Config, error) {
	std, err := hujson.Standardize(data) // keeps byte offsets, so lines stay right
	if err != nil {
		return Config{}, syntaxError(err)
	}
	if err := checkKeys(std, reflect.TypeOf(Config{})); err != nil {
		return Config{}, err
	}
	var probe struct {
		Version *int `json:"version"`
	}
	if err := json.Unmarshal(std, &probe); err != nil {
		return Config{}, &ConfigError{Msg: err.Error()}
	}
	if probe.Version == nil {
		return Config{}, &ConfigError{Msg: fmt.Sprintf(`missing "version" (this build reads version %d)`, ConfigVersion)}
	}
	if *probe.Version != ConfigVersion {
		return Config{}, &ConfigError{Line: keyLine(std, "version"), Msg: fmt.Sprintf("version %d is not supported (this build reads version %d)", *probe.Version, ConfigVersion)}
	}
	cfg := DefaultConfig()
	dec := json.NewDecoder(bytes.NewReader(std))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&cfg); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) {
			return Config{}, &ConfigError{Line: lineAt(std, int(te.Offset)), Msg: fmt.Sprintf("%q: want %s, got %s", te.Field, te.Type, te.Value)}
		}
		return Config{}, &ConfigError{Msg: err.Error()}
	}
	if err := cfg.Validate(); err != nil {
		return Config{}, err
	}
	return cfg, nil
}

// Validate checks every value and says which one is wrong and how to fix it.
func (c Config) Validate() error {
	bad := func(key, format string, args ...any) error {
		return &ConfigError{Msg: fmt.Sprintf("%q: ", key) + fmt.Sprintf(format, args...)}
	}
	if c.Version != ConfigVersion {
		return bad("version", "must be %d", ConfigVersion)
	}
	if strings.TrimSpace(c.DataDir) == "" {
		return bad("data_dir", "must name a folder, e.g. \"rhizome-data\"")
	}
	if c.ServerName == "" || strings.ContainsAny(c.ServerName, "/@ \t") {
		return bad("server_name", "must be a host name such as \"example.org\", got %q", c.ServerName)
	}
	if len(c.P2P.Listen) == 0 {
		return bad("p2p.listen", "needs at least one multiaddr, e.g. \"/ip4/127.0.0.1/tcp/4601\"")
	}
	for _, a := range c.P2P.Listen {
		if _, err := multiaddr.NewMultiaddr(a); err != nil {
			return bad("p2p.listen", "%q is not a multiaddr: %v", a, err)
		}
	}
	for _, a := range c.P2P.Bootstrap {
		m, err := multiaddr.NewMultiaddr(a)
		if err != nil {
			return bad("p2p.bootstrap", "%q is not a multiaddr: %v", a, err)
		}
		if _, err := m.ValueForProtocol(multiaddr.P_P2P); err != nil {
			return bad("p2p.bootstrap", "%q must end in /p2p/<peer ID>", a)
		}
	}
	for key, l := range map[string]string{"api.listen": c.API.Listen, "metrics.listen": c.Metrics.Listen} {
		if l == "" {
			continue
		}
		if _, _, err := net.SplitHostPort(l); err != nil {
			return bad(key, "%q is not host:port: %v", l, err)
		}
	}
	if err := c.API.validate(bad); err != nil {
		return err
	}
	if _, err := ParseLevel(c.Log.Level); err != nil {
		return bad("log.level", "%v", err)
	}
	if c.Log.Format != "text" && c.Log.Format != "json" {
		return bad("log.format", "must be \"text\" or \"json\", got %q", c.Log.Format)
	}
	if c.Ordering.TickMS < 0 || c.Ordering.TickMS > 1000 {
		return bad("ordering.tick_ms", "must be 1 to 1000 milliseconds (default 10), got %d", c.Ordering.TickMS)
	}
	if key, msg := c.Rooms.check(); key != "" {
		return bad(key, "%s", msg)
	}
	return nil
}

func (c APIConfig) validate(bad func(key, format string, args ...any) error) error {
	switch c.Registration {
	case "", RegistrationOpen, RegistrationToken, RegistrationClosed:
	default:
		return bad("api.registration", "must be \"open\", \"token\" or \"closed\" (or empty: token beyond loopback, open on loopback), got %q", c.Registration)
	}
	l := c.Limits
	for key, v := range map[string]int{
		"read_header_timeout_ms": l.ReadHeaderTimeoutMS, "body_timeout_ms": l.BodyTimeoutMS, "write_timeout_ms": l.WriteTimeoutMS,
		"idle_timeout_ms": l.IdleTimeoutMS, "max_header_bytes": l.MaxHeaderBytes, "max_conns": l.MaxConns, "max_conns_per_ip": l.MaxConnsPerIP,
	} {
		if v <= 0 {
			return bad("api.limits."+key, "must be positive, got %d (docs/operations.md lists the defaults)", v)
		}
	}
	if l.MaxHeaderBytes < 1<<10 {
		return bad("api.limits.max_header_bytes", "must be at least 1024, got %d", l.MaxHeaderBytes)
	}
	for key, r := range map[string]Rate{"device": c.Rate.Device, "user": c.Rate.User, "room": c.Rate.Room, "register_ip": c.Rate.RegisterIP} {
		if r.PerMinute < 0 || r.Burst < 0 || r.PerMinute > 0 && r.Burst == 0 {
			return bad("api.rate."+key, "per_minute must be 0 (no limit) or positive with a positive burst, got per_minute %d, burst %d", r.PerMinute, r.Burst)
		}
	}
	return nil
}

// ParseLevel maps a level name to a slog.Level.
func ParseLevel(s string) (slog.Level, error) {
	switch strings.ToLower(s) {
	case "debug":
		return slog.LevelDebug, nil
	case "info", "":
		return slog.LevelInfo, nil
	case "warn", "warning":
		return slog.LevelWarn, nil
	case "error":
		return slog.LevelError, nil
	}
	return 0, fmt.Errorf("unknown log level %q (use debug, info, warn or error)", s)
}

// MarshalConfig renders c as indented JSON (valid HuJSON) with a trailing newline.
func MarshalConfig(c Config) []byte {
	out, _ := json.MarshalIndent(c, "", "  ") // Config holds only strings, ints, bools and slices
	return append(out, '\n')
}
