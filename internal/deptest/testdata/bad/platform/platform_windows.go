package platform

import "os" // want `imports "os"`

var name = os.Getenv("OS")
