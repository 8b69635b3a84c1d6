package roomstate

import "testing"

func TestSameRoster(t *testing.T) {
	a := Client{ID: "mimi://a/d/alice/phone", User: "mimi://a/u/alice"}
	b := Client{ID: "mimi://b/d/bob/phone", User: "mimi://b/u/bob"}
	relabelled := Client{ID: b.ID, User: a.User}
	for _, tc := range []struct {
		name string
		x, y []Client
		want bool
	}{
		{"same order", []Client{a, b}, []Client{a, b}, true},
		{"any order", []Client{a, b}, []Client{b, a}, true},
		{"both empty", nil, []Client{}, true},
		{"one missing", []Client{a, b}, []Client{a}, false},
		{"a duplicate instead", []Client{a, b}, []Client{a, a}, false},
		{"same device, other user", []Client{a, b}, []Client{a, relabelled}, false},
	} {
		if got := SameRoster(tc.x, tc.y); got != tc.want {
			t.Errorf("%s: SameRoster = %v, want %v", tc.name, got, tc.want)
		}
	}
}
