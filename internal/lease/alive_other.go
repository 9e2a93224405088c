//go:build !unix

package lease

// alive cannot tell here: a holder on this machine is taken to run until its lease expires.
func alive(int) bool { return true }
