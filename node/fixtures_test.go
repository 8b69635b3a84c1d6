package node_test

import (
	"crypto/rand"
	"io"
	"strconv"
	"strings"

	"github.com/dgraph-io/badger/v4"

	"github.com/rhizome-chat/rhizome/node/nodetest"
)

func hasPrefix(v any, p string) bool { return strings.HasPrefix(nodetest.Str(v), p) }

func itoa(v uint64) string { return strconv.FormatUint(v, 10) }

func randReader() io.Reader { return rand.Reader }

func badgerIteratorOptions() badger.IteratorOptions { return badger.DefaultIteratorOptions }
