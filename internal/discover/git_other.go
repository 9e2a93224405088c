//go:build !unix

package discover

import "os/exec"

// killGroup leaves cmd as it is: without process groups, cmd.WaitDelay alone stops the wait
// for git's helpers.
func killGroup(*exec.Cmd) {}
