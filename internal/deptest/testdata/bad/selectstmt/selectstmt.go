// Package selectstmt picks among ready channels, which Go does at random.
package selectstmt

// First returns whichever value is ready; with both ready, either.
func First(a, b chan int) int {
	select { // want `has a select statement`
	case v := <-a:
		return v
	case v := <-b:
		return v
	}
}
