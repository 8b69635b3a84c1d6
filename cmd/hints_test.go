package cmd

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/rhizome-chat/rhizome/client"
)

// TestWithHint: the CLI adds a hint naming the command that fixes a client
// error, keeps the error matchable, and leaves other errors alone.
func TestWithHint(t *testing.T) {
	for _, c := range []struct {
		err  error
		hint string
	}{
		{fmt.Errorf("open: %w", client.ErrNotRegistered), "rhizome register"},
		{fmt.Errorf("%w (!QmX)", client.ErrUnknownRoom), "rhizome rooms"},
		{fmt.Errorf("%w (b.test)", client.ErrNoServer), "--via"},
		{errors.New("other"), ""},
	} {
		got := withHint(c.err)
		if !errors.Is(got, c.err) {
			t.Errorf("%v: the hinted error no longer matches", c.err)
		}
		if c.hint == "" && got.Error() != c.err.Error() {
			t.Errorf("%v: changed to %v", c.err, got)
		}
		if c.hint != "" && !strings.Contains(got.Error(), c.hint) {
			t.Errorf("%v: %q has no hint %q", c.err, got, c.hint)
		}
	}
	if withHint(nil) != nil {
		t.Error("nil error got a hint")
	}
}
