package demo

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"time"

	"github.com/rhizome-chat/rhizome/client"
)

// device is one client device of the demo: a real client.Client with
// its own state folder, and a running receive loop that records every
// delivery in arrival order.
type device struct {
	user, name string // alice, phone
	srv        *server
	c          *client.Client

	mu  sync.Mutex
	got []client.Delivery // every callback, duplicates included

	cancel context.CancelFunc
	done   chan error
}

// label names the device as the demo prints it: "bob/laptop".
func (d *device) label() string { return d.user + "/" + d.name }

// openDevice opens a client store under dir/devices/<user>-<device>.
func openDevice(dir, user, name string, srv *server, wait time.Duration) (*device, error) {
	c, err := client.Open(filepath.Join(dir, "devices", user+"-"+name), client.Options{WaitTimeout: wait})
	if err != nil {
		return nil, fmt.Errorf("device %s/%s: %w", user, name, err)
	}
	return &device{user: user, name: name, srv: srv, c: c}, nil
}

// startSync runs the device's receive loop in the background.
func (d *device) startSync() {
	ctx, cancel := context.WithCancel(context.Background())
	d.cancel, d.done = cancel, make(chan error, 1)
	go func() {
		d.done <- d.c.Sync(ctx, func(x client.Delivery) {
			d.mu.Lock()
			d.got = append(d.got, x)
			d.mu.Unlock()
		})
	}()
}

// syncErr reports a receive loop that ended on its own (it runs until
// stopped otherwise).
func (d *device) syncErr() error {
	if d.done == nil {
		return nil
	}
	select {
	case err := <-d.done:
		d.done <- err // keep it for close
		if err != nil && !errors.Is(err, context.Canceled) {
			return fmt.Errorf("device %s: receive loop ended: %w", d.label(), err)
		}
		return fmt.Errorf("device %s: receive loop ended", d.label())
	default:
		return nil
	}
}

// close stops the receive loop and closes the client store.
func (d *device) close() error {
	if d.cancel != nil {
		d.cancel()
		<-d.done
		d.cancel = nil
	}
	if d.c == nil {
		return nil
	}
	err := d.c.Close()
	d.c = nil
	return err
}

// deliveries returns a copy of the deliveries so far, in arrival order.
func (d *device) deliveries() []client.Delivery {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]client.Delivery(nil), d.got...)
}

// roomInfo returns the device's view of the room.
func (d *device) roomInfo(room string) (client.RoomInfo, bool) {
	rs, err := d.c.Rooms()
	if err != nil {
		return client.RoomInfo{}, false
	}
	for _, r := range rs {
		if string(r.Room) == room {
			return r, true
		}
	}
	return client.RoomInfo{}, false
}
