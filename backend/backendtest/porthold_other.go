//go:build !unix

package backendtest

// HoldPort does nothing here: a closed listener's port is free again at
// once.
func HoldPort(string) (release func()) { return func() {} }
