package timealias

import . "time" // want `dot-imports "time", hiding its forbidden names`

// Later is a clock read no selector shows.
func Later() Time { return Now().Add(Second) }
