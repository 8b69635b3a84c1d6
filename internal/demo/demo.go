// Package demo runs Rhizome's end-to-end scenario in one process: three
// real servers on loopback (badger on disk, libp2p over TCP), four users
// with five devices (real client library clients, each with its own state),
// one room across all three servers, a network partition with traffic on
// both sides and a membership change on the majority side, the heal, and
// the checks that every device converged: the same messages exactly once,
// nothing lost, the same epoch. `rhizome demo` prints it for people; the
// package tests assert it.
package demo

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"slices"
	"sync"
	"time"

	"github.com/rhizome-chat/rhizome/client"
)

// Options configure a run. The zero value (with Dir set) runs the full
// scenario quietly.
type Options struct {
	// Dir holds the servers' data (Dir/servers/NAME) and the devices'
	// state (Dir/devices/USER-DEVICE). It is created if needed and left in
	// place; the caller removes it.
	Dir string
	// Out receives the progress lines, the transcripts and the summary
	// (nil discards them).
	Out io.Writer
	// Seed picks the message texts and the order in which devices speak;
	// keys and salts always come from crypto/rand.
	Seed uint64
	// Log receives the servers' structured logs (nil discards them).
	Log *slog.Logger
	// Restart stops one server (beta) mid-conversation and starts it again
	// on the same data folder before the partition.
	Restart bool
	// NoPartition leaves out the partition and heal (with Restart, the run
	// is then a restart test only).
	NoPartition bool
	// WaitTimeout bounds each wait for the devices to catch up (default
	// 45 s).
	WaitTimeout time.Duration
}

// Errors Run returns; the report's Failures say what exactly went wrong.
var (
	// ErrChecksFailed means the scenario ran but a check failed.
	ErrChecksFailed = errors.New("demo: checks failed")
	// ErrScenario means the scenario could not run to the end.
	ErrScenario = errors.New("demo: scenario failed")
)

// Server and device names of the scenario. gamma is the server that is
// cut off; dave joins during the partition.
const (
	alpha, beta, gamma = "alpha", "beta", "gamma"
	minorityServer     = gamma
	restartServer      = beta
)

// deviceSpec is one device of the scenario.
type deviceSpec struct{ user, name, server string }

var scenarioDevices = []deviceSpec{
	{"alice", "phone", alpha},
	{"bob", "phone", beta},
	{"bob", "laptop", beta},
	{"carol", "phone", gamma},
	{"dave", "phone", alpha},
}

// runner holds the state of one run.
type runner struct {
	opts  Options
	out   io.Writer
	rng   *rand.Rand
	t0    time.Time
	outMu sync.Mutex

	servers map[string]*server
	devices []*device
	room    string

	// members lists the devices in the room's MLS group now, and
	// epochMembers the devices of each epoch (by commit event ID).
	members      []string
	epochMembers map[string][]string
	// tip is the latest epoch the demo created (a commit event ID).
	tip       string
	sent      []MessageReport
	healAt    time.Time
	converged time.Duration
	failures  []string
}

// Run runs the scenario and checks it. The error is nil only when every
// check passed; the report is filled as far as the run got.
func Run(ctx context.Context, opts Options) (Report, error) {
	if opts.Dir == "" {
		return Report{}, fmt.Errorf("%w: Options.Dir is empty: give a folder for the servers' and devices' data", ErrScenario)
	}
	if err := os.MkdirAll(opts.Dir, 0o700); err != nil {
		return Report{}, fmt.Errorf("%w: %v", ErrScenario, err)
	}
	if opts.Out == nil {
		opts.Out = io.Discard
	}
	if opts.Log == nil {
		opts.Log = slog.New(slog.DiscardHandler)
	}
	if opts.WaitTimeout <= 0 {
		opts.WaitTimeout = 45 * time.Second
	}
	r := &runner{
		opts: opts, out: opts.Out, rng: rand.New(rand.NewPCG(opts.Seed, 0x5268697a6f6d65)), t0: time.Now(),
		servers: map[string]*server{}, epochMembers: map[string][]string{}, converged: -1,
	}
	runErr := r.scenario(ctx)
	rep := r.report()
	if shutErr := r.shutdown(); shutErr != nil && runErr == nil {
		runErr = shutErr
	}
	rep.DurationMS = time.Since(r.t0).Milliseconds()
	if runErr != nil {
		rep.Failures = append([]string{runErr.Error()}, rep.Failures...)
		rep.Passed = false
		r.logf("FAILED: %v", runErr)
		if len(rep.Devices) > 0 {
			r.printSummary(rep)
		}
		return rep, fmt.Errorf("%w: %v", ErrScenario, runErr)
	}
	r.printTranscripts(rep)
	r.printSummary(rep)
	if !rep.Passed {
		return rep, fmt.Errorf("%w: %d problems, first: %s", ErrChecksFailed, len(rep.Failures), rep.Failures[0])
	}
	return rep, nil
}

// logf prints a progress line with the time since the start.
func (r *runner) logf(format string, args ...any) {
	r.outMu.Lock()
	defer r.outMu.Unlock()
	fmt.Fprintf(r.out, "[%5.1fs] %s\n", time.Since(r.t0).Seconds(), fmt.Sprintf(format, args...))
}

// scenario runs the steps in order; any error ends the run.
func (r *runner) scenario(ctx context.Context) error {
	if err := r.startServers(ctx); err != nil {
		return err
	}
	if err := r.registerDevices(ctx); err != nil {
		return err
	}
	if err := r.createRoom(ctx); err != nil {
		return err
	}
	if err := r.round(ctx, "first round", r.joined(), greetings); err != nil {
		return err
	}
	if r.opts.Restart {
		if err := r.restartPhase(ctx); err != nil {
			return err
		}
	}
	if !r.opts.NoPartition {
		if err := r.partitionPhase(ctx); err != nil {
			return err
		}
	} else if err := r.invite(ctx, "dave"); err != nil {
		return err
	}
	return r.round(ctx, "last round", r.joined(), farewells)
}

// startServers starts alpha, then beta and gamma bootstrapped to the ones
// before them.
func (r *runner) startServers(ctx context.Context) error {
	var boot []string
	for _, name := range []string{alpha, beta, gamma} {
		s, err := newServer(ctx, r.opts.Dir, name, r.opts.Log, slices.Clone(boot))
		if err != nil {
			return err
		}
		r.servers[name] = s
		r.logf("server %-5s up: %s, api %s, data %s", name, s.domain(), s.n.APIAddr(), s.cfg.DataDir)
		boot = append(boot, s.n.PeerAddrs()[0])
	}
	return nil
}

// registerDevices opens every device's client store, registers the users
// (bob's laptop as his second device) and starts the receive loops.
func (r *runner) registerDevices(ctx context.Context) error {
	for _, spec := range scenarioDevices {
		srv := r.servers[spec.server]
		d, err := openDevice(r.opts.Dir, spec.user, spec.name, srv, r.opts.WaitTimeout)
		if err != nil {
			return err
		}
		r.devices = append(r.devices, d)
		if err := r.registerDevice(ctx, d); err != nil {
			return err
		}
		d.startSync()
	}
	r.logf("registered %d devices of 4 users: %s", len(r.devices), r.deviceList())
	return nil
}

// registerDevice registers the device: a new user, or the user's second
// device when another device of the user exists.
func (r *runner) registerDevice(ctx context.Context, d *device) error {
	for _, o := range r.devices {
		if o != d && o.user == d.user {
			if _, err := d.c.AddDevice(ctx, o.c, d.name); err != nil {
				return fmt.Errorf("add device %s: %w", d.label(), err)
			}
			return nil
		}
	}
	if _, err := d.c.Register(ctx, d.srv.apiURL(), d.user, d.name); err != nil {
		return fmt.Errorf("register %s: %w", d.label(), err)
	}
	return nil
}

func (r *runner) deviceList() string {
	var out []string
	for _, d := range r.devices {
		out = append(out, d.label()+"@"+d.srv.name)
	}
	return joinDevices(out)
}

func (r *runner) device(label string) *device {
	for _, d := range r.devices {
		if d.label() == label {
			return d
		}
	}
	return nil
}

// joined lists the member devices in scenario order.
func (r *runner) joined() []*device {
	var out []*device
	for _, d := range r.devices {
		if slices.Contains(r.members, d.label()) {
			out = append(out, d)
		}
	}
	return out
}

func (r *runner) userDevices(user string) []string {
	var out []string
	for _, d := range r.devices {
		if d.user == user {
			out = append(out, d.label())
		}
	}
	return out
}

// createRoom has alice create the room with all three servers, then
// invite bob (both devices, one commit) and carol.
func (r *runner) createRoom(ctx context.Context) error {
	alice := r.device("alice/phone")
	var servers []client.Server
	for _, name := range []string{beta, gamma} {
		s := r.servers[name]
		servers = append(servers, client.Server{ID: s.n.ServerID().String(), Domain: s.domain()})
	}
	info, err := alice.c.CreateRoom(ctx, "private-group", "Rhizome demo", servers...)
	if err != nil {
		return fmt.Errorf("create room: %w", err)
	}
	r.room = string(info.Room)
	r.members = []string{alice.label()}
	r.epochMembers[string(info.EpochID)] = slices.Clone(r.members)
	r.tip = string(info.EpochID)
	r.logf("alice created room %s on alpha with servers alpha, beta, gamma", short(r.room))
	for _, user := range []string{"bob", "carol"} {
		if err := r.invite(ctx, user); err != nil {
			return err
		}
	}
	return nil
}

// invite has alice add user (all of the user's devices, one commit) and
// waits until every reachable member device is in the new epoch.
func (r *runner) invite(ctx context.Context, user string) error {
	alice := r.device("alice/phone")
	who, err := r.device(r.userDevices(user)[0]).c.Whoami()
	if err != nil {
		return err
	}
	commit, err := alice.c.Invite(ctx, client.RoomID(r.room), who.UserURI, nil)
	if err != nil {
		return fmt.Errorf("alice invites %s: %w", user, err)
	}
	r.members = append(r.members, r.userDevices(user)...)
	r.epochMembers[string(commit)] = slices.Clone(r.members)
	r.tip = string(commit)
	r.logf("alice invited %s (%s): commit %s", user, joinDevices(r.userDevices(user)), short(string(commit)))
	if err := r.waitEpoch(ctx, string(commit), r.reachable(r.joined())); err != nil {
		return err
	}
	r.logf("%d devices in epoch %s", len(r.reachable(r.joined())), short(string(commit)))
	return nil
}

// reachable drops the devices whose server is cut off or down.
func (r *runner) reachable(ds []*device) []*device {
	var out []*device
	for _, d := range ds {
		if d.srv.iso == nil && d.srv.n != nil {
			out = append(out, d)
		}
	}
	return out
}

// texts is a list of message texts for one round.
type texts []string

var greetings = texts{"hello from %s", "%s here, hi all", "good morning, says %s", "%s joined the chat", "hey, it's %s"}
var farewells = texts{"%s: all caught up", "%s sees everything", "%s signing off", "back in sync, says %s", "%s: nothing lost"}
var partitionTalk = texts{"%s: is anyone there?", "%s: the network looks split", "%s keeps writing", "%s: still here", "%s: sent while cut off?"}

func (r *runner) pick(t texts, who string) string {
	return fmt.Sprintf(t[r.rng.IntN(len(t))], who)
}

// send has d send a message and records who must receive it: every
// device of the epoch the message was encrypted in.
func (r *runner) send(ctx context.Context, d *device, phase, text string) error {
	s, err := d.c.Send(ctx, client.RoomID(r.room), text)
	if err != nil {
		return fmt.Errorf("%s sends %q: %w", d.label(), text, err)
	}
	entitled, ok := r.epochMembers[string(s.Epoch)]
	if !ok {
		entitled = r.members
	}
	r.sent = append(r.sent, MessageReport{Seq: len(r.sent) + 1, ID: string(s.ID), From: d.label(), Text: text, Epoch: string(s.Epoch), Phase: phase, Entitled: slices.Clone(entitled)})
	return nil
}

// round has every device of ds send one message, in seeded order, and
// waits until every reachable member holds every message meant for it.
func (r *runner) round(ctx context.Context, phase string, ds []*device, t texts) error {
	order := slices.Clone(ds)
	r.rng.Shuffle(len(order), func(i, j int) { order[i], order[j] = order[j], order[i] })
	for _, d := range order {
		if err := r.send(ctx, d, phase, r.pick(t, d.user)); err != nil {
			return err
		}
	}
	r.logf("%s: %d devices sent a message each", phase, len(order))
	if err := r.waitDelivered(ctx, r.reachable(r.joined())); err != nil {
		return err
	}
	r.logf("%s: every device holds all %d messages so far", phase, len(r.sent))
	return nil
}
