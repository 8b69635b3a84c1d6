package demo

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
)

// pollInterval is how often the demo looks at the devices while waiting.
const pollInterval = 50 * time.Millisecond

// restartPhase has bob send a message and stops beta right after it was
// acknowledged (bob's two devices lose their server), lets alice and carol
// talk meanwhile, starts beta again on the same data folder and addresses,
// and has bob's devices answer.
func (r *runner) restartPhase(ctx context.Context) error {
	s := r.servers[restartServer]
	// A message acknowledged just before the stop must survive it.
	for _, d := range r.joined() {
		if d.srv == s {
			if err := r.send(ctx, d, "restart", d.user+": sent just before my server stops"); err != nil {
				return err
			}
			break
		}
	}
	r.logf("stopping server %s right after it acknowledged a message (%s lose their server)", s.name, joinDevices(r.serverDevices(s)))
	if err := s.stop(); err != nil {
		return err
	}
	for _, d := range r.reachable(r.joined()) {
		if err := r.send(ctx, d, "restart", r.pick(partitionTalk, d.user)); err != nil {
			return err
		}
	}
	r.logf("sent %d messages while %s was down", len(r.reachable(r.joined())), s.name)
	if err := s.restart(ctx); err != nil {
		return err
	}
	r.logf("server %s restarted on the same data folder (api %s)", s.name, s.n.APIAddr())
	if err := r.waitDelivered(ctx, r.joined()); err != nil {
		return err
	}
	r.logf("after the restart every device holds all %d messages", len(r.sent))
	for _, d := range r.joined() {
		if d.srv != s {
			continue
		}
		if err := r.send(ctx, d, "restart", r.pick(greetings, d.user)); err != nil {
			return err
		}
	}
	if err := r.waitDelivered(ctx, r.joined()); err != nil {
		return err
	}
	r.logf("bob's devices answered after the restart; all %d messages everywhere", len(r.sent))
	return nil
}

func (r *runner) serverDevices(s *server) []string {
	var out []string
	for _, d := range r.devices {
		if d.srv == s {
			out = append(out, d.label())
		}
	}
	return out
}

// partitionPhase cuts gamma off, lets both sides talk, adds dave on the
// majority side, heals and measures the time to converge.
func (r *runner) partitionPhase(ctx context.Context) error {
	g := r.servers[minorityServer]
	if err := g.isolate(); err != nil {
		return err
	}
	r.logf("server %s cut off: minority side %s; majority side alpha+beta", g.name, joinDevices(r.serverDevices(g)))
	minority := func() []*device {
		var out []*device
		for _, d := range r.joined() {
			if d.srv == g {
				out = append(out, d)
			}
		}
		return out
	}
	majority := func() []*device { return r.reachable(r.joined()) }
	talk := func(ds []*device, n int) error {
		for range n {
			for _, d := range ds {
				if err := r.send(ctx, d, "partition", r.pick(partitionTalk, d.user)); err != nil {
					return err
				}
			}
		}
		return nil
	}
	// Both sides talk, interleaved.
	if err := talk(minority(), 1); err != nil {
		return err
	}
	if err := talk(majority(), 1); err != nil {
		return err
	}
	if err := talk(minority(), 1); err != nil {
		return err
	}
	r.logf("both sides talk: %d messages so far", len(r.sent))
	// The majority side changes the membership: alice adds dave.
	r.logf("majority side changes the membership: alice adds dave (alpha+beta are 2 of 3 servers, a majority)")
	if err := r.invite(ctx, "dave"); err != nil {
		return err
	}
	if err := talk(majority(), 1); err != nil {
		return err
	}
	if err := talk(minority(), 1); err != nil {
		return err
	}
	sameSide := func(d *device, m MessageReport) bool {
		return m.Phase != "partition" || (r.device(m.From).srv == g) == (d.srv == g)
	}
	if err := r.waitDeliveredIf(ctx, r.joined(), sameSide); err != nil {
		return err
	}
	nMin := 0
	for _, m := range r.sent {
		if m.Phase == "partition" && r.device(m.From).srv == g {
			nMin++
		}
	}
	r.logf("majority side holds its messages; minority side holds its %d own (neither sees the other's)", nMin)
	if err := r.checkSplit(g); err != nil {
		return err
	}

	ctx2, cancel := context.WithTimeout(ctx, r.opts.WaitTimeout)
	defer cancel()
	r.healAt = time.Now()
	if err := g.heal(ctx2); err != nil {
		return err
	}
	r.logf("server %s healed: reconnected to alpha and beta", g.name)
	tip := r.tip
	if err := r.waitEpoch(ctx, tip, r.joined()); err != nil {
		return err
	}
	if err := r.waitDelivered(ctx, r.joined()); err != nil {
		return err
	}
	r.converged = time.Since(r.healAt)
	r.logf("converged %.1fs after the heal: every device holds every message meant for it, epoch %s", r.converged.Seconds(), short(tip))
	return nil
}

// checkSplit verifies the partition held: no device on one side has
// received a message sent on the other side during the partition.
func (r *runner) checkSplit(g *server) error {
	from := map[string]string{}
	for _, m := range r.sent {
		if m.Phase == "partition" {
			from[m.ID] = m.From
		}
	}
	for _, d := range r.joined() {
		for _, x := range d.deliveries() {
			sender, ok := from[string(x.ID)]
			if !ok {
				continue
			}
			if (r.device(sender).srv == g) != (d.srv == g) {
				return fmt.Errorf("the partition leaked: %s received %q from %s across the cut", d.label(), x.Text(), sender)
			}
		}
	}
	return nil
}

// waitEpoch waits until every device of ds is in epoch (a commit event ID).
func (r *runner) waitEpoch(ctx context.Context, epoch string, ds []*device) error {
	return r.waitFor(ctx, "epoch "+short(epoch), func() []string {
		var behind []string
		for _, d := range ds {
			if err := d.syncErr(); err != nil {
				behind = append(behind, err.Error())
				continue
			}
			info, ok := d.roomInfo(r.room)
			if !ok || !info.Joined || string(info.EpochID) != epoch {
				behind = append(behind, fmt.Sprintf("%s is in epoch %s (joined %v)", d.label(), short(string(info.EpochID)), info.Joined))
			}
		}
		return behind
	}, ds)
}

// waitDelivered waits until every device of ds holds every message sent
// so far that it is entitled to.
func (r *runner) waitDelivered(ctx context.Context, ds []*device) error {
	return r.waitDeliveredIf(ctx, ds, func(*device, MessageReport) bool { return true })
}

// waitDeliveredIf is waitDelivered for the messages where reach(d, m)
// holds (during a partition: those sent on d's side).
func (r *runner) waitDeliveredIf(ctx context.Context, ds []*device, reach func(*device, MessageReport) bool) error {
	return r.waitFor(ctx, "the messages", func() []string {
		var behind []string
		for _, d := range ds {
			if err := d.syncErr(); err != nil {
				behind = append(behind, err.Error())
				continue
			}
			have := map[string]bool{}
			for _, x := range d.deliveries() {
				have[string(x.ID)] = true
			}
			var missing []string
			for _, m := range r.sent {
				if slices.Contains(m.Entitled, d.label()) && !have[m.ID] && reach(d, m) {
					missing = append(missing, fmt.Sprintf("#%d from %s", m.Seq, m.From))
				}
			}
			if len(missing) > 0 {
				behind = append(behind, fmt.Sprintf("%s misses %s", d.label(), strings.Join(missing, ", ")))
			}
		}
		return behind
	}, ds)
}

// waitFor polls behind until it reports nothing, or fails after the wait
// timeout with what is still behind and the devices' skip reasons.
func (r *runner) waitFor(ctx context.Context, what string, behind func() []string, ds []*device) error {
	deadline := time.Now().Add(r.opts.WaitTimeout)
	for {
		b := behind()
		if len(b) == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			var why []string
			for _, d := range ds {
				if sk := d.c.Skipped(); len(sk) > 0 {
					why = append(why, fmt.Sprintf("%s skipped: %s", d.label(), strings.Join(sk[max(0, len(sk)-3):], "; ")))
				}
			}
			msg := fmt.Sprintf("devices did not reach %s within %v: %s", what, r.opts.WaitTimeout, strings.Join(b, "; "))
			if len(why) > 0 {
				msg += " [" + strings.Join(why, " | ") + "]"
			}
			return errors.New(msg)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(pollInterval):
		}
	}
}

// shutdown closes the devices, then stops the servers.
func (r *runner) shutdown() error {
	var errs []error
	for _, d := range r.devices {
		if err := d.close(); err != nil {
			errs = append(errs, fmt.Errorf("close %s: %w", d.label(), err))
		}
	}
	for _, name := range []string{gamma, beta, alpha} {
		if s := r.servers[name]; s != nil {
			if err := s.stop(); err != nil {
				errs = append(errs, err)
			}
		}
	}
	return errors.Join(errs...)
}
