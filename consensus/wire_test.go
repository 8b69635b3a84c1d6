package consensus

import (
	"bytes"
	"errors"
	"reflect"
	"testing"

	"github.com/rhizome-chat/rhizome/internal/tlspl"
)

func sampleSeal() Seal {
	return Seal{Slot: "slot-1", Commit: "commit-2", Term: 7, Tentative: true, Rank: 2,
		Justification: []EventID{"sus-a", "sus-b", "sus-c"}}
}

func sampleSuspect() Suspect {
	return Suspect{Term: 3, Reports: []AckReport{{Slot: "s1", Commit: "c1", Term: 2}, {Slot: "s2", Commit: "c2", Term: 3}}}
}

func TestWireRoundTrip(t *testing.T) {
	cases := []struct {
		name  string
		value any
		enc   func() ([]byte, error)
		dec   func([]byte) (any, error)
	}{
		{"seal", sampleSeal(), func() ([]byte, error) { s := sampleSeal(); return s.Marshal() },
			func(b []byte) (any, error) { return ParseSeal(b) }},
		{"seal term 0 empty justification", Seal{Slot: "s", Commit: "c"}, func() ([]byte, error) { return (&Seal{Slot: "s", Commit: "c"}).Marshal() },
			func(b []byte) (any, error) { return ParseSeal(b) }},
		{"ack", Ack{Slot: "s", Commit: "c", Term: 1 << 40}, func() ([]byte, error) { return (&Ack{Slot: "s", Commit: "c", Term: 1 << 40}).Marshal() },
			func(b []byte) (any, error) { return ParseAck(b) }},
		{"suspect", sampleSuspect(), func() ([]byte, error) { s := sampleSuspect(); return s.Marshal() },
			func(b []byte) (any, error) { return ParseSuspect(b) }},
		{"suspect no reports", Suspect{Term: 9}, func() ([]byte, error) { return (&Suspect{Term: 9}).Marshal() },
			func(b []byte) (any, error) { return ParseSuspect(b) }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			b, err := tc.enc()
			if err != nil {
				t.Fatal(err)
			}
			got, err := tc.dec(b)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tc.value) {
				t.Errorf("round trip = %+v, want %+v", got, tc.value)
			}
			// Every strict prefix and the input plus one byte are rejected.
			for i := range len(b) {
				if _, err := tc.dec(b[:i]); !errors.Is(err, ErrMalformed) {
					t.Fatalf("prefix of %d bytes: err = %v", i, err)
				}
			}
			if _, err := tc.dec(append(bytes.Clone(b), 0)); !errors.Is(err, tlspl.ErrTrailingData) {
				t.Errorf("trailing byte: err = %v", err)
			}
		})
	}
}

// TestSealEncodingLayout pins the wire layout of a seal byte for byte.
func TestSealEncodingLayout(t *testing.T) {
	s := Seal{Slot: "ab", Commit: "c", Term: 258, Tentative: true, Rank: 3, Justification: []EventID{"x", "yz"}}
	b, err := s.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	want := []byte{
		2, 'a', 'b', // slot<V>
		1, 'c', // commit<V>
		0, 0, 0, 0, 0, 0, 1, 2, // uint64 term
		1,          // bool tentative
		0, 0, 0, 3, // uint32 rank
		5, 1, 'x', 2, 'y', 'z', // justification<V>
	}
	if !bytes.Equal(b, want) {
		t.Errorf("encoding = %v, want %v", b, want)
	}
}

func TestWireRejects(t *testing.T) {
	cases := []struct {
		name  string
		parse func([]byte) error
		in    []byte
	}{
		{"ack empty slot", func(b []byte) error { _, err := ParseAck(b); return err }, []byte{0, 1, 'c', 0, 0, 0, 0, 0, 0, 0, 0}},
		{"ack non-minimal length", func(b []byte) error { _, err := ParseAck(b); return err }, []byte{0x40, 1, 's', 1, 'c', 0, 0, 0, 0, 0, 0, 0, 0}},
		{"seal bool 2", func(b []byte) error { _, err := ParseSeal(b); return err }, []byte{1, 's', 1, 'c', 0, 0, 0, 0, 0, 0, 0, 0, 2, 0, 0, 0, 0, 0}},
		{"seal unsorted justification", func(b []byte) error { _, err := ParseSeal(b); return err }, []byte{1, 's', 1, 'c', 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 4, 1, 'b', 1, 'a'}},
		{"seal duplicate justification", func(b []byte) error { _, err := ParseSeal(b); return err }, []byte{1, 's', 1, 'c', 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 4, 1, 'a', 1, 'a'}},
		{"suspect duplicate slot", func(b []byte) error { _, err := ParseSuspect(b); return err },
			[]byte{0, 0, 0, 0, 0, 0, 0, 1, 24, 1, 's', 1, 'c', 0, 0, 0, 0, 0, 0, 0, 0, 1, 's', 1, 'd', 0, 0, 0, 0, 0, 0, 0, 0}},
		{"id too long", func(b []byte) error { _, err := ParseAck(b); return err }, append([]byte{65}, make([]byte, 65)...)},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if err := tc.parse(tc.in); !errors.Is(err, ErrMalformed) {
				t.Errorf("err = %v, want ErrMalformed", err)
			}
		})
	}
	t.Run("marshal refuses unsorted input", func(t *testing.T) {
		if _, err := (&Seal{Slot: "s", Commit: "c", Justification: []EventID{"b", "a"}}).Marshal(); err == nil {
			t.Error("unsorted justification marshalled")
		}
		if _, err := (&Suspect{Reports: []AckReport{{Slot: "b", Commit: "c"}, {Slot: "a", Commit: "c"}}}).Marshal(); err == nil {
			t.Error("unsorted reports marshalled")
		}
		if _, err := (&Ack{Slot: "", Commit: "c"}).Marshal(); err == nil {
			t.Error("empty slot marshalled")
		}
	})
}

func fuzzSeeds(f *testing.F, vals ...interface{ Marshal() ([]byte, error) }) {
	for _, v := range vals {
		b, err := v.Marshal()
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
}

func FuzzParseSeal(f *testing.F) {
	s := sampleSeal()
	fuzzSeeds(f, &s, &Seal{Slot: "s", Commit: "c"})
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := ParseSeal(b)
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("untyped error %v", err)
			}
			return
		}
		out, err := s.Marshal()
		if err != nil || !bytes.Equal(out, b) {
			t.Fatalf("re-encoding differs: %x vs %x (%v)", out, b, err)
		}
	})
}

func FuzzParseAck(f *testing.F) {
	fuzzSeeds(f, &Ack{Slot: "s", Commit: "c", Term: 3})
	f.Fuzz(func(t *testing.T, b []byte) {
		a, err := ParseAck(b)
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("untyped error %v", err)
			}
			return
		}
		out, err := a.Marshal()
		if err != nil || !bytes.Equal(out, b) {
			t.Fatalf("re-encoding differs: %x vs %x (%v)", out, b, err)
		}
	})
}

func FuzzParseSuspect(f *testing.F) {
	s := sampleSuspect()
	fuzzSeeds(f, &s, &Suspect{Term: 1})
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := ParseSuspect(b)
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("untyped error %v", err)
			}
			return
		}
		out, err := s.Marshal()
		if err != nil || !bytes.Equal(out, b) {
			t.Fatalf("re-encoding differs: %x vs %x (%v)", out, b, err)
		}
	})
}
