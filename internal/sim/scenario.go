package sim

import (
	"bufio"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strconv"
	"strings"

	"github.com/rhizome-chat/rhizome/consensus"
)

// Scenario describes one simulated run: the network, the load and a script
// of faults. Times are in ticks; one tick is one step of every machine.
type Scenario struct {
	Name    string `json:"name"`
	Servers int    `json:"servers"`
	Clients int    `json:"clients"`
	// Ticks is the length of the scripted phase. Afterwards every fault is
	// healed, the load stops, and the run continues for at most Settle
	// ticks until it is quiescent.
	Ticks  uint64 `json:"ticks"`
	Settle uint64 `json:"settle"`
	// LatencyMin and LatencyMax bound the uniform one-way latency.
	LatencyMin uint64 `json:"latency_min"`
	LatencyMax uint64 `json:"latency_max"`
	// LossPermille and DupPermille are per-message drop and duplication
	// rates, in thousandths.
	LossPermille int `json:"loss_permille"`
	DupPermille  int `json:"dup_permille"`
	// SyncEvery is the anti-entropy period of each server.
	SyncEvery uint64 `json:"sync_every"`
	// CommitEvery and MessageEvery are the mean ticks between a client's
	// proposed changes and application messages (0 disables).
	CommitEvery  uint64 `json:"commit_every"`
	MessageEvery uint64 `json:"message_every"`
	// MaxChanges caps the changes each client proposes.
	MaxChanges int `json:"max_changes"`
	// NoBounds marks a scenario that breaks the preconditions of the timing
	// bounds (for example a seal timeout shorter than anti-entropy): only
	// the invariants are checked, not convergence or certification time.
	NoBounds bool             `json:"no_bounds"`
	Params   consensus.Params `json:"params"`
	Steps    []Step           `json:"steps"`
	// Expect lists what the scenario exists to show, checked on its
	// reports (see [Expectation]).
	Expect []Expectation `json:"expect,omitempty"`
}

// Expectation is a scenario's claim about a numeric [Report] field, named
// by its JSON key: "expect KEY OP VALUE" must hold in every run (Run adds
// a violation otherwise), "expect-some KEY OP VALUE" in at least one run
// of a seed set ([CheckSome]). They keep a scenario from silently losing
// its point, for example a partition that no longer causes a reorg.
type Expectation struct {
	Key   string `json:"key"`
	Op    string `json:"op"`
	Value int64  `json:"value"`
	Some  bool   `json:"some,omitempty"`
}

// String renders the expectation as its scenario-file directive.
func (e Expectation) String() string {
	d := "expect"
	if e.Some {
		d = "expect-some"
	}
	return fmt.Sprintf("%s %s %s %d", d, e.Key, e.Op, e.Value)
}

// Holds reports whether r satisfies the expectation, and the field's value.
func (e Expectation) Holds(r Report) (bool, int64) {
	v := reportFields(r)[e.Key]
	switch e.Op {
	case ">=":
		return v >= e.Value, v
	case "<=":
		return v <= e.Value, v
	case ">":
		return v > e.Value, v
	case "<":
		return v < e.Value, v
	}
	return v == e.Value, v
}

// reportFields returns the report's numeric and boolean fields by JSON key
// (booleans as 0 or 1).
func reportFields(r Report) map[string]int64 {
	out := map[string]int64{}
	v := reflect.ValueOf(r)
	for i := range v.NumField() {
		key, _, _ := strings.Cut(v.Type().Field(i).Tag.Get("json"), ",")
		switch f := v.Field(i); f.Kind() {
		case reflect.Int:
			out[key] = f.Int()
		case reflect.Uint64:
			out[key] = int64(f.Uint())
		case reflect.Bool:
			if f.Bool() {
				out[key] = 1
			} else {
				out[key] = 0
			}
		}
	}
	return out
}

// CheckSome returns the scenario's expect-some claims that no report in
// reports satisfies, one message each.
func CheckSome(sc Scenario, reports []Report) []string {
	var out []string
	for _, e := range sc.Expect {
		if !e.Some {
			continue
		}
		ok := false
		for _, r := range reports {
			if h, _ := e.Holds(r); h {
				ok = true
				break
			}
		}
		if !ok {
			out = append(out, fmt.Sprintf("scenario %s: %q held in none of %d runs", sc.Name, e.String(), len(reports)))
		}
	}
	return out
}

// Op is a scripted fault.
type Op string

// Scripted operations.
const (
	OpPartition  Op = "partition"  // Groups: servers in different groups cannot talk
	OpHeal       Op = "heal"       // remove the partition and every flapping link
	OpCrash      Op = "crash"      // Server stops; its persisted events survive
	OpRestart    Op = "restart"    // Server rebuilds its machine from persisted events
	OpFlap       Op = "flap"       // the link Server-Peer toggles every Period ticks until Until
	OpWithhold   Op = "withhold"   // Server sends nothing until Until, then releases it all
	OpEquivocate Op = "equivocate" // Server seals two commits per slot whenever it is hub
	OpForge      Op = "forge"      // inject votes from an outsider and with bad signatures
)

// Step is one scripted operation at tick At. Server indices may be given in
// scenario files as "hK", the server of rank K in the initial hub order.
type Step struct {
	At     uint64  `json:"at"`
	Op     Op      `json:"op"`
	Groups [][]int `json:"groups,omitempty"`
	Server int     `json:"server,omitempty"`
	Peer   int     `json:"peer,omitempty"`
	Period uint64  `json:"period,omitempty"`
	Until  uint64  `json:"until,omitempty"`
}

// DefaultScenario returns the network and load every scenario file starts
// from.
func DefaultScenario() Scenario {
	return Scenario{
		Name: "default", Servers: 5, Clients: 5,
		Ticks: 3000, Settle: 4000,
		LatencyMin: 1, LatencyMax: 6,
		LossPermille: 20, DupPermille: 20,
		SyncEvery:   30,
		CommitEvery: 250, MessageEvery: 120, MaxChanges: 3,
		Params: consensus.DefaultParams(),
	}
}

// ErrScenario reports an unparsable scenario file.
var ErrScenario = errors.New("sim: bad scenario")

// ParseScenario reads the text format of internal/sim/testdata/*.txt: one
// directive per line, '#' starts a comment.
//
//	name hub-minority
//	servers 5
//	at 300 partition h0 1 | 2 3 4
//	at 1500 heal
//
// hubOrder maps "hK" to a server index; pass nil to allow only numbers
// (Run resolves them with [HubOrder]).
func ParseScenario(text string) (Scenario, error) {
	sc := DefaultScenario()
	hub := HubOrder(sc.Servers)
	sc.Name = ""
	lines := bufio.NewScanner(strings.NewReader(text))
	for n := 1; lines.Scan(); n++ {
		line, _, _ := strings.Cut(lines.Text(), "#")
		f := strings.Fields(line)
		if len(f) == 0 {
			continue
		}
		if err := sc.directive(f, &hub); err != nil {
			return Scenario{}, fmt.Errorf("%w: line %d: %w", ErrScenario, n, err)
		}
	}
	if sc.Name == "" || sc.Servers < 1 || sc.LatencyMin > sc.LatencyMax || sc.LatencyMin == 0 {
		return Scenario{}, fmt.Errorf("%w: needs a name, servers >= 1 and 1 <= latency min <= max", ErrScenario)
	}
	return sc, nil
}

func (sc *Scenario) directive(f []string, hub *[]int) error {
	num := func(s string) (uint64, error) { return strconv.ParseUint(s, 10, 64) }
	server := func(s string) (int, error) {
		if k, ok := strings.CutPrefix(s, "h"); ok {
			r, err := strconv.Atoi(k)
			if err != nil || r < 0 || r >= len(*hub) {
				return 0, fmt.Errorf("bad hub rank %q", s)
			}
			return (*hub)[r], nil
		}
		i, err := strconv.Atoi(s)
		if err != nil || i < 0 || i >= sc.Servers {
			return 0, fmt.Errorf("bad server %q", s)
		}
		return i, nil
	}
	setters := map[string]*uint64{
		"ticks": &sc.Ticks, "settle": &sc.Settle, "sync": &sc.SyncEvery,
		"commit-every": &sc.CommitEvery, "message-every": &sc.MessageEvery,
		"seal-timeout": &sc.Params.SealTimeout, "tentative-timeout": &sc.Params.TentativeTimeout,
		"tentative-step": &sc.Params.TentativeStep, "retain": &sc.Params.RetainTicks,
	}
	ints := map[string]*int{
		"servers": &sc.Servers, "clients": &sc.Clients, "loss": &sc.LossPermille,
		"dup": &sc.DupPermille, "max-changes": &sc.MaxChanges, "horizon": &sc.Params.Horizon,
	}
	key := f[0]
	switch {
	case key == "bounds" && len(f) == 2 && f[1] == "off":
		sc.NoBounds = true
		return nil
	case (key == "expect" || key == "expect-some") && len(f) == 4:
		v, err := strconv.ParseInt(f[3], 10, 64)
		if err != nil {
			return err
		}
		if _, ok := reportFields(Report{})[f[1]]; !ok {
			return fmt.Errorf("%s: unknown report field %q", key, f[1])
		}
		if !slices.Contains([]string{">=", "<=", "==", ">", "<"}, f[2]) {
			return fmt.Errorf("%s: unknown operator %q", key, f[2])
		}
		sc.Expect = append(sc.Expect, Expectation{Key: f[1], Op: f[2], Value: v, Some: key == "expect-some"})
		return nil
	case key == "name" && len(f) == 2:
		sc.Name = f[1]
		return nil
	case key == "latency" && len(f) == 3:
		lo, err1 := num(f[1])
		hi, err2 := num(f[2])
		sc.LatencyMin, sc.LatencyMax = lo, hi
		return errors.Join(err1, err2)
	case setters[key] != nil && len(f) == 2:
		v, err := num(f[1])
		*setters[key] = v
		return err
	case ints[key] != nil && len(f) == 2:
		v, err := strconv.Atoi(f[1])
		*ints[key] = v
		if key == "servers" && err == nil {
			*hub = HubOrder(v)
		}
		return err
	case key == "at" && len(f) >= 3:
		at, err := num(f[1])
		if err != nil {
			return err
		}
		st := Step{At: at, Op: Op(f[2])}
		args := f[3:]
		switch st.Op {
		case OpHeal, OpForge:
		case OpPartition:
			st.Groups = [][]int{nil}
			for _, a := range args {
				if a == "|" {
					st.Groups = append(st.Groups, nil)
					continue
				}
				i, err := server(a)
				if err != nil {
					return err
				}
				st.Groups[len(st.Groups)-1] = append(st.Groups[len(st.Groups)-1], i)
			}
		case OpCrash, OpRestart, OpEquivocate, OpWithhold, OpFlap:
			if len(args) == 0 {
				return fmt.Errorf("%s needs a server", st.Op)
			}
			if st.Server, err = server(args[0]); err != nil {
				return err
			}
			switch {
			case st.Op == OpWithhold && len(args) == 2:
				st.Until, err = num(args[1])
			case st.Op == OpFlap && len(args) == 4:
				var e1, e2, e3 error
				st.Peer, e1 = server(args[1])
				st.Period, e2 = num(args[2])
				st.Until, e3 = num(args[3])
				err = errors.Join(e1, e2, e3)
			case (st.Op == OpWithhold || st.Op == OpFlap) || len(args) != 1:
				err = fmt.Errorf("wrong arguments for %s", st.Op)
			}
			if err != nil {
				return err
			}
		default:
			return fmt.Errorf("unknown op %q", st.Op)
		}
		sc.Steps = append(sc.Steps, st)
		return nil
	}
	return fmt.Errorf("unknown or malformed directive %q", strings.Join(f, " "))
}
