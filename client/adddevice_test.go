package client

import (
	"bytes"
	"context"
	"errors"
	"testing"
)

// TestAddDevice registers alice's laptop as her second device, has bob
// invite alice (both devices, one commit), and checks that both devices
// join, receive bob's message once, and hold bob's epoch_authenticator.
func TestAddDevice(t *testing.T) {
	ctx := context.Background()
	a := startNode(t, t.TempDir(), "a.test")
	phone := newDevice(t, a, "alice", "phone")
	laptop := openDevice(t, t.TempDir())
	d, err := laptop.c.AddDevice(ctx, phone.c, "laptop")
	if err != nil {
		t.Fatalf("add device: %v", err)
	}
	if d.UserURI != "mimi://a.test/u/alice" || d.DeviceURI != "mimi://a.test/d/alice/laptop" {
		t.Fatalf("added device = %+v", d)
	}
	bob := newDevice(t, a, "bob", "phone")
	for _, x := range []*device{phone, laptop, bob} {
		x.start()
	}
	ri, err := bob.c.CreateRoom(ctx, "private-group", "Two devices")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := bob.c.Invite(ctx, ri.Room, "alice", nil); err != nil {
		t.Fatalf("invite alice: %v", err)
	}
	phone.waitJoined(string(ri.Room))
	laptop.waitJoined(string(ri.Room))
	ms, err := bob.c.Members(ri.Room)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range ms {
		if m.User == "mimi://a.test/u/alice" && len(m.Devices) != 2 {
			t.Fatalf("alice's devices in the group = %v, want phone and laptop", m.Devices)
		}
	}
	hi, err := bob.c.Send(ctx, ri.Room, "hi both")
	if err != nil {
		t.Fatal(err)
	}
	for _, x := range []*device{phone, laptop} {
		if got := x.waitText("hi both"); got.ID != hi.ID {
			t.Fatalf("delivery %+v, sent %+v", got, hi)
		}
	}
	want, err := bob.c.EpochAuthenticator(ri.Room)
	if err != nil || len(want) == 0 {
		t.Fatalf("bob's epoch_authenticator = %x, %v", want, err)
	}
	for _, x := range []*device{phone, laptop} {
		x.waitEpoch(string(ri.Room), string(hi.Epoch))
		got, err := x.c.EpochAuthenticator(ri.Room)
		if err != nil || !bytes.Equal(got, want) {
			t.Fatalf("epoch_authenticator %x, %v; bob has %x", got, err, want)
		}
	}
}

func TestAddDeviceErrors(t *testing.T) {
	ctx := context.Background()
	a := startNode(t, t.TempDir(), "a.test")
	phone := newDevice(t, a, "alice", "phone")
	empty := openDevice(t, t.TempDir())
	fresh := openDevice(t, t.TempDir())
	tests := []struct {
		name     string
		c        *Client
		existing *Client
		device   string
		want     error
	}{
		{"existing not registered", fresh.c, empty.c, "laptop", ErrNotRegistered},
		{"same store", phone.c, phone.c, "laptop", ErrBadInput},
		{"device name taken", fresh.c, phone.c, "phone", ErrServer},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := tt.c.AddDevice(ctx, tt.existing, tt.device); !errors.Is(err, tt.want) {
				t.Fatalf("AddDevice = %v, want %v", err, tt.want)
			}
		})
	}
	other := newDevice(t, a, "bob", "phone")
	if _, err := other.c.AddDevice(ctx, phone.c, "laptop"); !errors.Is(err, ErrAlreadyRegistered) {
		t.Fatalf("AddDevice on a registered store = %v, want ErrAlreadyRegistered", err)
	}
	if _, err := empty.c.EpochAuthenticator("!QmNotARoomButWellFormedXXXXXXXXXXXXXXXXXXXXXXX"); err == nil {
		t.Fatal("EpochAuthenticator of an unknown room succeeded")
	}
}
