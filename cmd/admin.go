package cmd

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/rhizome-chat/rhizome/clientapi"
	"github.com/rhizome-chat/rhizome/node"
)

// Admin commands: the node's operator, on the node's machine, talking to
// the admin API (docs/api.md, "Admin API") with the admin token the node
// keeps in its data folder.

// adminTimeout bounds one admin API call.
const adminTimeout = 30 * time.Second

func adminCommand() *Command {
	return &Command{
		Name:  "admin",
		Usage: "admin COMMAND",
		Short: "operate a running node: registration tokens",
		Long: `Admin commands talk to a running node on this machine through its admin
API, which answers only over loopback and only with the admin token the node
writes to DATA_DIR/admin-token (mode 0600) when it starts. Reading that file
is what makes you the operator: run these commands as the node's user.

They find the node from its data folder: --data-dir DIR, else the data_dir
of --config FILE, else ./rhizome-data (the same rules as rhizome node). The
API address is read from DATA_DIR/api-addr, which the node writes at every
start; --api URL overrides it.

Examples:
  rhizome admin token create --note "for bob"
  rhizome admin token list --data-dir /var/lib/rhizome
  rhizome admin token revoke 3f9a0c1d2e4b5a69`,
		Sub: []*Command{adminTokenCommand(), adminRoomsCommand()},
	}
}

// adminFlags are the flags every admin command has.
type adminFlags struct {
	fs         *flag.FlagSet
	configPath string
	dataDir    string
	api        string
	json       bool
}

func (f *adminFlags) register(fs *flag.FlagSet) {
	f.fs = fs
	fs.StringVar(&f.configPath, "config", "", "the node's configuration `FILE`, to find its data_dir")
	fs.StringVar(&f.dataDir, "data-dir", "", "the node's data `DIR` (default: the config's data_dir, else ./rhizome-data)")
	fs.StringVar(&f.api, "api", "", "the node's API `URL`, e.g. http://127.0.0.1:8600 (default: read from DATA_DIR/api-addr)")
	fs.BoolVar(&f.json, "json", false, "print JSON (one object per line) for scripts")
}

// adminAPI calls one node's admin API.
type adminAPI struct {
	base  string
	token string
	http  *http.Client
}

// connect finds the node's data folder, admin token and API address.
func (f *adminFlags) connect() (*adminAPI, error) {
	dir := f.dataDir
	if dir == "" {
		cfg := node.DefaultConfig()
		if f.configPath != "" {
			var err error
			if cfg, err = node.LoadConfig(f.configPath); err != nil {
				return nil, err
			}
		}
		dir = cfg.DataDir
	}
	raw, err := os.ReadFile(filepath.Join(dir, node.AdminTokenFile))
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("no admin token in %s: start the node once (it writes %s), or name its data folder with --data-dir", dir, node.AdminTokenFile)
		}
		return nil, fmt.Errorf("read the admin token: %w (run as the node's user)", err)
	}
	base := f.api
	if base == "" {
		addr, err := os.ReadFile(filepath.Join(dir, node.APIAddrFile))
		if err != nil {
			return nil, fmt.Errorf("no API address in %s: is the node running with an API? (or pass --api URL): %w", dir, err)
		}
		base = "http://" + loopbackAddr(strings.TrimSpace(string(addr)))
	}
	return &adminAPI{base: strings.TrimRight(base, "/"), token: strings.TrimSpace(string(raw)), http: &http.Client{Timeout: adminTimeout}}, nil
}

// loopbackAddr turns a wildcard listen address into the loopback address
// of the same port: a node listening on 0.0.0.0:8600 is reached at
// 127.0.0.1:8600.
func loopbackAddr(addr string) string {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return addr
	}
	switch ip := net.ParseIP(host); {
	case host == "" || ip != nil && ip.IsUnspecified() && ip.To4() != nil:
		host = "127.0.0.1"
	case ip != nil && ip.IsUnspecified():
		host = "::1"
	}
	return net.JoinHostPort(host, port)
}

// adminError is an error answer of the admin API.
type adminError struct {
	Status int
	// Code is empty when the answer was not a JSON error body.
	Code    clientapi.ErrorCode
	Message string
}

func (e *adminError) Error() string {
	if e.Code == "" {
		return fmt.Sprintf("%s (%d)", e.Message, e.Status)
	}
	return fmt.Sprintf("%s (%d %s)", e.Message, e.Status, e.Code)
}

// call sends in (if not nil) as JSON and decodes the answer into out (if
// not nil).
func (a *adminAPI) call(ctx context.Context, method, path string, in, out any) error {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, a.base+path, body)
	if err != nil {
		return err
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Authorization", "Bearer "+a.token)
	resp, err := a.http.Do(req)
	if err != nil {
		return fmt.Errorf("the node's API at %s does not answer (is the node running?): %w", a.base, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 8<<20))
	if err != nil {
		return fmt.Errorf("read the answer of %s %s: %w", method, path, err)
	}
	if resp.StatusCode/100 != 2 {
		e := &adminError{Status: resp.StatusCode}
		var eb clientapi.ErrorBody
		if json.Unmarshal(raw, &eb) == nil && eb.Code != "" {
			e.Code, e.Message = eb.Code, eb.Message
		} else {
			e.Message = strings.TrimSpace(string(raw))
		}
		return e
	}
	if out != nil {
		if err := json.Unmarshal(raw, out); err != nil {
			return fmt.Errorf("%s %s: the answer is not the expected JSON: %w", method, path, err)
		}
	}
	return nil
}

// print writes v as JSON with --json, else runs human.
func (f *adminFlags) print(w io.Writer, v any, human func(io.Writer)) error {
	if f.json {
		return json.NewEncoder(w).Encode(v)
	}
	human(w)
	return nil
}

// adminSubcommand builds an admin command with the shared flags (which may
// come before, between or after the arguments), nargs positional
// arguments (min, max), and a connection to the node's admin API.
func adminSubcommand(name, usage, short, long string, extra func(fs *flag.FlagSet), nargs [2]int,
	run func(ctx context.Context, env *Env, f *adminFlags, a *adminAPI, args []string) error) *Command {
	f := &adminFlags{}
	return &Command{
		Name: name, Usage: usage, Short: short, Long: long,
		Flags: func(fs *flag.FlagSet) {
			f.register(fs)
			if extra != nil {
				extra(fs)
			}
		},
		Run: func(ctx context.Context, env *Env, args []string) error {
			cf := clientFlags{fs: f.fs}
			pos, err := cf.positional(args)
			cmdPath := "rhizome " + strings.Join(strings.Fields(usageArgsPrefix(usage)), " ")
			if err != nil {
				return &UsageError{Cmd: cmdPath, Msg: err.Error()}
			}
			if len(pos) < nargs[0] || len(pos) > nargs[1] {
				return &UsageError{Cmd: cmdPath, Msg: fmt.Sprintf("expected %s", usageArgs(usage))}
			}
			a, err := f.connect()
			if err != nil {
				return err
			}
			ctx, cancel := context.WithTimeout(ctx, adminTimeout)
			defer cancel()
			return run(ctx, env, f, a, pos)
		},
	}
}

// usageArgsPrefix is the command words of a usage line ("admin token
// create" of "admin token create [--expires D]").
func usageArgsPrefix(usage string) string {
	var words []string
	for _, w := range strings.Fields(usage) {
		if strings.HasPrefix(w, "[") || strings.HasPrefix(w, "-") || w == strings.ToUpper(w) {
			break
		}
		words = append(words, w)
	}
	return strings.Join(words, " ")
}

func msTime(ms int64) string {
	if ms == 0 {
		return "never"
	}
	return time.UnixMilli(ms).UTC().Format(time.RFC3339)
}

func adminTokenCommand() *Command {
	var expires time.Duration
	var note string
	create := adminSubcommand("create", "admin token create [--expires DURATION] [--note TEXT]",
		"issue a single-use registration token",
		`Issues a registration token: a secret that lets one person register one
user on this node while api.registration is "token" (the default when the
API listens beyond loopback). Hand it to them over a channel you trust;
they pass it to registration ("registration_token" in POST /v1/register).
The token is printed once: the node stores only its hash. It is consumed by
the registration it allows, and expires after --expires (0: never).

Examples:
  rhizome admin token create
  rhizome admin token create --expires 48h --note "for bob"
  rhizome admin token create --json | jq -r .token`,
		func(fs *flag.FlagSet) {
			fs.DurationVar(&expires, "expires", 7*24*time.Hour, "lifetime of the token, e.g. 24h; 0 for a token that never expires")
			fs.StringVar(&note, "note", "", "a note to recognise the token by in the list, e.g. who it is for")
		}, [2]int{0, 0},
		func(ctx context.Context, env *Env, f *adminFlags, a *adminAPI, _ []string) error {
			if expires < 0 {
				return &UsageError{Cmd: "rhizome admin token create", Msg: "--expires must not be negative"}
			}
			secs := int64(expires / time.Second)
			if expires > 0 && secs == 0 {
				secs = 1
			}
			var tok clientapi.IssuedToken
			if err := a.call(ctx, "POST", "/v1/admin/tokens", clientapi.IssueTokenRequest{ExpiresInSeconds: &secs, Note: note}, &tok); err != nil {
				return err
			}
			return f.print(env.Stdout, tok, func(w io.Writer) {
				fmt.Fprintf(w, "%s\n", tok.Token)
				fmt.Fprintf(env.Stderr, "Registration token %s, expires %s. It registers one user; the node keeps only its hash.\n", tok.ID, msTime(tok.Expires))
			})
		})
	list := adminSubcommand("list", "admin token list [--json]",
		"list outstanding registration tokens (IDs, not secrets)",
		`Lists the registration tokens not yet used, revoked or expired: ID,
creation and expiry time (UTC) and note. The secrets themselves are not
stored and cannot be shown again.

Example:
  rhizome admin token list`,
		nil, [2]int{0, 0},
		func(ctx context.Context, env *Env, f *adminFlags, a *adminAPI, _ []string) error {
			var out clientapi.TokenList
			if err := a.call(ctx, "GET", "/v1/admin/tokens", nil, &out); err != nil {
				return err
			}
			return f.print(env.Stdout, out, func(w io.Writer) {
				fmt.Fprintf(w, "Registration mode: %s\n", out.Registration)
				if len(out.Tokens) == 0 {
					fmt.Fprintln(w, "No outstanding registration tokens: issue one with rhizome admin token create.")
					return
				}
				tw := newTable(w, "ID", "CREATED", "EXPIRES", "NOTE")
				for _, t := range out.Tokens {
					tw.row(t.ID, msTime(t.Created), msTime(t.Expires), t.Note)
				}
				tw.flush()
			})
		})
	revoke := adminSubcommand("revoke", "admin token revoke ID",
		"revoke a registration token",
		`Revokes the outstanding registration token with the ID that rhizome admin
token list shows, so that it no longer registers anyone.

Example:
  rhizome admin token revoke 3f9a0c1d2e4b5a69`,
		nil, [2]int{1, 1},
		func(ctx context.Context, env *Env, f *adminFlags, a *adminAPI, args []string) error {
			var out clientapi.TokenRevoked
			if err := a.call(ctx, "DELETE", "/v1/admin/tokens/"+args[0], nil, &out); err != nil {
				return err
			}
			return f.print(env.Stdout, out, func(w io.Writer) {
				fmt.Fprintf(w, "Revoked registration token %s.\n", args[0])
			})
		})
	return &Command{
		Name: "token", Usage: "admin token COMMAND", Short: "issue, list and revoke registration tokens",
		Long: `Registration tokens let people register on a node whose api.registration
is "token": each registers one user, once, before it expires.

Examples:
  rhizome admin token create --note "for bob"
  rhizome admin token list
  rhizome admin token revoke 3f9a0c1d2e4b5a69`,
		Sub: []*Command{create, list, revoke},
	}
}
