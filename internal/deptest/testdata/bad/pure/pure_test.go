package pure

import "net/http" // test files are not checked

var _ = http.MethodGet
