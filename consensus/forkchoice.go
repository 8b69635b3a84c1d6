package consensus

import "slices"

// Order is the result of fork choice over a set of events.
type Order struct {
	// Chain is the canonical commit chain from the root's child to the tip.
	Chain []EventID
	// Certified is how many leading commits of Chain are certified.
	Certified int
	// Term is the current term the events prove.
	Term uint64
	// Evidence lists every equivocation in the events.
	Evidence []Evidence
}

// ForkChoice returns the canonical order of a set of events: a pure
// function of the set, so any permutation or duplication of events gives the
// same Order. Events that Step would reject are skipped and returned as
// errors in input order; duplicates of an ID are ignored.
func ForkChoice(room []byte, root EventID, initial Membership, events []Event) (Order, []error) {
	set := newEventSet()
	known := map[ServerID]bool{}
	for _, s := range initial.Servers {
		known[s] = true
	}
	for _, ev := range events {
		if ev.Commit != nil && ev.Commit.Membership != nil {
			for _, s := range ev.Commit.Membership.Servers {
				known[s] = true
			}
		}
	}
	var errs []error
	for _, ev := range events {
		if err := ev.validate(); err != nil {
			errs = append(errs, reject(ReasonMalformed, ev.ID, err))
			continue
		}
		if ev.Commit == nil && !known[ev.From] {
			errs = append(errs, reject(ReasonUnauthorized, ev.ID, ErrNotMember))
			continue
		}
		set.add(ev)
	}
	v := evaluate(room, root, &initial, set)
	return Order{Chain: slices.Clone(v.chain), Certified: v.certLen, Term: v.term, Evidence: v.evidence}, errs
}
