package node

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"
)

// component is one started subsystem: a name for logs and readiness, and
// how to stop it.
type component struct {
	name string
	stop func(ctx context.Context) error
}

// lifecycle starts subsystems in order and stops them in reverse order, so
// that what depends on a subsystem is gone before it is (the store closes
// last, after everything that writes to it).
type lifecycle struct {
	log     *slog.Logger
	mu      sync.Mutex
	started []component
	ready   bool
}

// start runs f and, if it succeeds, remembers stop for shutdown.
func (l *lifecycle) start(name string, f func() (stop func(ctx context.Context) error, err error)) error {
	t0 := time.Now()
	stop, err := f()
	if err != nil {
		return fmt.Errorf("start %s: %w", name, err)
	}
	l.mu.Lock()
	l.started = append(l.started, component{name: name, stop: stop})
	l.mu.Unlock()
	l.log.Info("started", "component", name, "took", time.Since(t0).Round(time.Millisecond))
	return nil
}

func (l *lifecycle) setReady(v bool) {
	l.mu.Lock()
	l.ready = v
	l.mu.Unlock()
}

// status reports readiness and the started components in start order.
func (l *lifecycle) status() (ready bool, names []string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, c := range l.started {
		names = append(names, c.name)
	}
	return l.ready, names
}

// stopAll stops every started component in reverse start order within the
// context's deadline and returns all errors joined.
func (l *lifecycle) stopAll(ctx context.Context) error {
	l.setReady(false)
	l.mu.Lock()
	comps := l.started
	l.started = nil
	l.mu.Unlock()
	var errs []error
	for i := len(comps) - 1; i >= 0; i-- {
		c := comps[i]
		t0 := time.Now()
		if err := c.stop(ctx); err != nil {
			l.log.Error("stop failed", "component", c.name, "err", err)
			errs = append(errs, fmt.Errorf("stop %s: %w", c.name, err))
			continue
		}
		l.log.Info("stopped", "component", c.name, "took", time.Since(t0).Round(time.Millisecond))
	}
	return errors.Join(errs...)
}
