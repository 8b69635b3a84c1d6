// Package platform is clean on this platform only: its other files break
// the rules where this build does not see them.
package platform

// Name is the platform's name.
func Name() string { return name }
