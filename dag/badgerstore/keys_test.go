package badgerstore

import (
	"bytes"
	"fmt"
	"testing"
)

// TestArena checks that pieces cut from an arena keep their contents when
// later pieces are cut, also when the arena is too small and a piece has to
// live elsewhere.
func TestArena(t *testing.T) {
	for _, size := range []int{0, 5, 11, 64} {
		t.Run(fmt.Sprintf("size=%d", size), func(t *testing.T) {
			a := newArena(size)
			k1 := a.key('x', []byte("ab"), []byte("c"))
			v := a.bytes(append(a.next(), 1, 2), []byte{3})
			k2 := a.key('y', []byte("defg"))
			k2 = append(k2, 'z') // a full slice: must not overwrite anything
			for _, c := range []struct{ got, want []byte }{
				{k1, []byte("xabc")}, {v, []byte{1, 2, 3}}, {k2, []byte("ydefgz")},
			} {
				if !bytes.Equal(c.got, c.want) {
					t.Errorf("size %d: piece %q, want %q", size, c.got, c.want)
				}
			}
		})
	}
}
