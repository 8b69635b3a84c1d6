package client

import (
	"fmt"

	"github.com/rhizome-chat/rhizome/internal/roomevent"
	"github.com/rhizome-chat/rhizome/mls"
	roomcheck "github.com/rhizome-chat/rhizome/room"
	"github.com/rhizome-chat/rhizome/roomstate"
)

// A client does not trust its server: before it processes another
// member's commit it runs the checks every server runs (package room,
// observe.go), as a member rather than as an external observer. The
// commit must authenticate in the current epoch (mls.Group.InspectCommit:
// membership tag and signature over this epoch's GroupContext), its MLS
// sender must be the device the event names, and room policy must allow
// it (roomstate.AuthorizeCommit on the room state of the commit's parent
// epoch with the state events it adopts applied, with the group's members
// as roster). Only then is it processed,
// and the group it leaves must hold exactly the clients policy authorized
// (applyCommit): an UpdatePath or Update replaces a leaf, credential and
// all, and nothing in MLS ties the new identity to the old one, so without
// this check a member could turn its device into another user's (or into a
// second device of its own user) with no add authorized.

// Why a commit was refused; the reason leads the error text after
// ErrCommitRefused's.
const (
	// refusedMLS: the commit does not decode or authenticate in the
	// current epoch (a replay, a non-member, a forged signature).
	refusedMLS = "mls"
	// refusedSender: the MLS sender is not the device the event names.
	refusedSender = "sender"
	// refusedPolicy: room policy forbids the commit.
	refusedPolicy = "policy"
)

// refuse is the error of a refused commit.
func refuse(reason string, err error) error {
	return fmt.Errorf("%w (%s): %w", ErrCommitRefused, reason, err)
}

// verifyCommit checks e, another device's commit on r's current epoch,
// before it is processed, against st (the epoch's state with the state
// events e adopts applied, as servers judge it), and returns the roster
// room policy authorized for the group the commit leaves (never nil). It
// changes neither the group nor the state; its error wraps
// ErrCommitRefused.
func verifyCommit(r *room, st *roomstate.State, e *logEntry) ([]roomstate.Client, error) {
	msg, err := mls.UnmarshalMLSMessage(e.MLS)
	if err != nil {
		return nil, refuse(refusedMLS, fmt.Errorf("commit does not decode: %w", err))
	}
	sender, props, err := r.g.InspectCommit(msg)
	if err != nil {
		return nil, refuse(refusedMLS, err)
	}
	leaf := r.g.Tree().Leaf
	if dev, ok := leafDevice(r.g, sender.LeafIndex); sender.SenderType != mls.SenderTypeMember || !ok || dev != e.Actor.Client {
		return nil, refuse(refusedSender, fmt.Errorf("the commit's MLS sender (type %d, leaf %d, %q) is not %s, the device the event names", sender.SenderType, sender.LeafIndex, dev, e.Actor.Client))
	}
	changes := make([]roomevent.Change, len(e.Changes))
	for i, ch := range e.Changes {
		changes[i] = roomevent.Change{Component: ch.Component, Update: ch.Update}
	}
	desc, err := roomcheck.DescribeCommit(sender, props, changes, leaf)
	if err != nil {
		return nil, refuse(refusedPolicy, err)
	}
	roster, err := roomcheck.Roster(r.g.Members(), leaf)
	if err != nil {
		return nil, refuse(refusedPolicy, err)
	}
	_, want, err := roomstate.AuthorizeCommit(st, roster, desc)
	if err != nil {
		return nil, refuse(refusedPolicy, err)
	}
	if want == nil {
		want = []roomstate.Client{}
	}
	return want, nil
}

// checkRoster holds g, the group a commit left, to want, the roster room
// policy authorized for it (verifyCommit); its error wraps
// ErrCommitRefused.
//
// The check runs on the result of processing, as servers run it on the
// public group state the commit leaves (room.Engine.observeCommit), rather
// than on the proposals and the UpdatePath leaf before processing: that
// would restate which MLS operations replace which leaf (Updates, the
// path, Removes, SelfRemoves, Adds) in the client, and a commit the model
// missed would pass. The price is a snapshot of the parent epoch's group,
// to restore if the check fails (applyCommit).
func checkRoster(g *mls.Group, want []roomstate.Client) error {
	got, err := roomcheck.Roster(g.Members(), g.Tree().Leaf)
	if err != nil {
		return refuse(refusedPolicy, err)
	}
	if !roomstate.SameRoster(got, want) {
		return refuse(refusedPolicy, fmt.Errorf("the MLS group the commit leaves (%v) is not the one room policy authorized (%v)", got, want))
	}
	return nil
}
