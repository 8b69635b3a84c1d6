package consensus

// Action is an instruction from the machine to its caller. The caller
// performs actions in order and persists each vote before sending it, then
// feeds the resulting event back through [Machine.Step].
type Action interface{ isAction() }

// SendSeal asks the caller to sign and publish a `seal` event.
type SendSeal struct{ Seal Seal }

// SendAck asks the caller to sign and publish an `ack` event.
type SendAck struct{ Ack Ack }

// SendSuspect asks the caller to sign and publish a `suspect` event. The
// machine has already made the promise: it acks nothing more in the term.
type SendSuspect struct{ Suspect Suspect }

// OrderChanged reports a new canonical commit order.
type OrderChanged struct{ Reorg Reorg }

// Reorg describes a change of the canonical chain. A plain extension has no
// Undone commits.
type Reorg struct {
	// ForkPoint is the last commit both chains share (the root if none).
	ForkPoint EventID
	// Undone are the commits of the old chain after the fork point, oldest
	// first. Their changes must be re-proposed on the winning branch.
	Undone []EventID
	// Added are the commits of the new chain after the fork point.
	Added []EventID
	// Tip is the new canonical tip (the root if the chain is empty).
	Tip EventID
	// BeyondHorizon is set when more commits were undone than the rewind
	// horizon allows members to replay: members on the losing branch must
	// rejoin (re-add or external commit) instead of replaying.
	BeyondHorizon bool
}

// Certified reports that Commit gathered a quorum of acks in Term and is
// final: no later event set can undo it.
type Certified struct {
	Commit EventID
	Term   uint64
}

// RetainBranch tells the caller to keep the secrets of a losing branch
// (for late application messages) until tick Deadline, and no longer.
type RetainBranch struct {
	Commits  []EventID
	Deadline uint64
}

// ReleaseBranch tells the caller to delete the retained secrets of a losing
// branch now: its deadline has passed.
type ReleaseBranch struct{ Commits []EventID }

// EquivocationFound reports new evidence that a server voted twice.
type EquivocationFound struct{ Evidence Evidence }

func (SendSeal) isAction()          {}
func (SendAck) isAction()           {}
func (SendSuspect) isAction()       {}
func (OrderChanged) isAction()      {}
func (Certified) isAction()         {}
func (RetainBranch) isAction()      {}
func (ReleaseBranch) isAction()     {}
func (EquivocationFound) isAction() {}
