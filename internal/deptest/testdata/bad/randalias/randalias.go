// Package randalias draws global randomness under other names.
package randalias

import (
	cr "crypto/rand"  // want `imports "crypto/rand"`
	_ "math/rand"     // want `imports "math/rand"`
	mr "math/rand/v2" // want `imports "math/rand/v2"`
)

// Roll is different every time.
func Roll() (int, string) { return mr.IntN(6), cr.Text() }
