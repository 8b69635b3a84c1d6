package sim

import "slices"

// Dist summarizes one report field over many runs: the 50th and 99th
// percentiles (nearest rank) and the maximum.
type Dist struct {
	P50 uint64 `json:"p50"`
	P99 uint64 `json:"p99"`
	Max uint64 `json:"max"`
}

func dist[T int | uint64](vals []T) Dist {
	if len(vals) == 0 {
		return Dist{}
	}
	s := slices.Clone(vals)
	slices.Sort(s)
	rank := func(p int) uint64 { return uint64(s[max((p*len(s)+99)/100, 1)-1]) }
	return Dist{P50: rank(50), P99: rank(99), Max: uint64(s[len(s)-1])}
}

// Summary aggregates the reports of one scenario over many seeds.
type Summary struct {
	Scenario string `json:"scenario"`
	Runs     int    `json:"runs"`
	// Failed counts runs with a violation (an invariant, a lost message,
	// a retained branch past its deadline or a failed expectation).
	Failed int `json:"failed"`
	// Heals is the total number of healthy periods after a fault.
	Heals int `json:"heals"`
	// ConvergeTicks: time to convergence after a heal, per run (the
	// run's slowest heal).
	ConvergeTicks Dist `json:"converge_ticks"`
	// CertifyConnected: the slowest certification with a connected
	// majority, per run.
	CertifyConnected Dist `json:"certify_connected_ticks"`
	Forks            Dist `json:"forks"`
	ForksTotal       int  `json:"forks_total"`
	ReorgsTotal      int  `json:"reorgs_total"`
	MaxReorgDepth    Dist `json:"max_reorg_depth"`
	BeyondHorizon    int  `json:"beyond_horizon_total"`
	// MessagesResent per run and in total; MessagesLost in total (must
	// be 0).
	MessagesResent      Dist   `json:"messages_resent"`
	MessagesResentTotal int    `json:"messages_resent_total"`
	MessagesSentTotal   int    `json:"messages_sent_total"`
	MessagesLost        int    `json:"messages_lost_total"`
	ChangesTotal        int    `json:"changes_total"`
	ExtraCommitsTotal   int    `json:"extra_commits_total"`
	MaxFinalTerm        uint64 `json:"max_final_term"`
}

// Failed reports whether a run broke an invariant or lost a message.
func (r Report) Failed() bool {
	return len(r.Violations) > 0 || r.MessagesLost > 0 || r.HeldPastDeadline > 0
}

// Summarize aggregates reports by scenario, in order of first appearance.
func Summarize(reports []Report) []Summary {
	var names []string
	by := map[string][]Report{}
	for _, r := range reports {
		if _, ok := by[r.Scenario]; !ok {
			names = append(names, r.Scenario)
		}
		by[r.Scenario] = append(by[r.Scenario], r)
	}
	out := make([]Summary, 0, len(names))
	for _, name := range names {
		rs := by[name]
		s := Summary{Scenario: name, Runs: len(rs)}
		var conv, cert []uint64
		var forks, depth, resent []int
		for _, r := range rs {
			if r.Failed() {
				s.Failed++
			}
			s.Heals += r.Heals
			conv = append(conv, r.ConvergeTicks)
			cert = append(cert, r.MaxCertifyConnected)
			forks = append(forks, r.Forks)
			depth = append(depth, r.MaxReorgDepth)
			resent = append(resent, r.MessagesResent)
			s.ForksTotal += r.Forks
			s.ReorgsTotal += r.Reorgs
			s.BeyondHorizon += r.BeyondHorizon
			s.MessagesResentTotal += r.MessagesResent
			s.MessagesSentTotal += r.MessagesSent
			s.MessagesLost += r.MessagesLost
			s.ChangesTotal += r.Changes
			s.ExtraCommitsTotal += r.ExtraCommits
			s.MaxFinalTerm = max(s.MaxFinalTerm, r.FinalTerm)
		}
		s.ConvergeTicks, s.CertifyConnected = dist(conv), dist(cert)
		s.Forks, s.MaxReorgDepth, s.MessagesResent = dist(forks), dist(depth), dist(resent)
		out = append(out, s)
	}
	return out
}
