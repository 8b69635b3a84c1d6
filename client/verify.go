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
// epoch, with the group's members as roster). Only then is it processed.

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
// before it is processed. It changes neither the group nor the state; its
// error wraps ErrCommitRefused.
func verifyCommit(r *room, e *logEntry) error {
	msg, err := mls.UnmarshalMLSMessage(e.MLS)
	if err != nil {
		return refuse(refusedMLS, fmt.Errorf("commit does not decode: %w", err))
	}
	sender, props, err := r.g.InspectCommit(msg)
	if err != nil {
		return refuse(refusedMLS, err)
	}
	leaf := r.g.Tree().Leaf
	if dev, ok := leafDevice(r.g, sender.LeafIndex); sender.SenderType != mls.SenderTypeMember || !ok || dev != e.Actor.Client {
		return refuse(refusedSender, fmt.Errorf("the commit's MLS sender (type %d, leaf %d, %q) is not %s, the device the event names", sender.SenderType, sender.LeafIndex, dev, e.Actor.Client))
	}
	changes := make([]roomevent.Change, len(e.Changes))
	for i, ch := range e.Changes {
		changes[i] = roomevent.Change{Component: ch.Component, Update: ch.Update}
	}
	desc, err := roomcheck.DescribeCommit(sender, props, changes, leaf)
	if err != nil {
		return refuse(refusedPolicy, err)
	}
	roster, err := roomcheck.Roster(r.g.Members(), leaf)
	if err != nil {
		return refuse(refusedPolicy, err)
	}
	if _, _, err := roomstate.AuthorizeCommit(r.state, roster, desc); err != nil {
		return refuse(refusedPolicy, err)
	}
	return nil
}
