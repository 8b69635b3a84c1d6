package cmd

import (
	"errors"
	"fmt"

	"github.com/rhizome-chat/rhizome/client"
)

// clientHints say, for the client library's errors, which command fixes
// the situation: the library says what is wrong, the CLI how to go on.
var clientHints = []struct {
	err  error
	hint string
}{
	{client.ErrNotRegistered, "run rhizome register --server URL --user NAME --device NAME first"},
	{client.ErrAlreadyRegistered, "use another --dir for a second device"},
	{client.ErrUnknownRoom, "list your rooms with rhizome rooms, or wait for the invitation to arrive (rhizome tail)"},
	{client.ErrNotJoined, "run rhizome tail ROOM until the invitation is processed"},
	{client.ErrUnknownUser, "check the name (users register with rhizome register)"},
	{client.ErrUnknownMessage, "pick one from rhizome tail --json"},
	{client.ErrNoServer, "give the user's home server: rhizome invite --via http://host:port ROOM USER"},
}

// withHint adds the CLI's hint to a client error that has one.
func withHint(err error) error {
	if err == nil {
		return nil
	}
	for _, h := range clientHints {
		if errors.Is(err, h.err) {
			return fmt.Errorf("%w: %s", err, h.hint)
		}
	}
	return err
}
