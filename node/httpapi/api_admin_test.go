package httpapi

import "testing"

// TestIsLoopback: the admin API's address check (TestAdminAPIAccess in
// package node tests the API itself).
func TestIsLoopback(t *testing.T) {
	for addr, want := range map[string]bool{"127.0.0.1:5": true, "[::1]:5": true, "[::ffff:127.0.0.1]:5": true, "192.0.2.1:5": false, "[2001:db8::1]:5": false, "junk": false} {
		if isLoopback(addr) != want {
			t.Errorf("isLoopback(%s) = %v", addr, !want)
		}
	}
}
