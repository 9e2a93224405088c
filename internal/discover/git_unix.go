//go:build unix

package discover

import (
	"os/exec"
	"syscall"
)

// killGroup makes cmd the leader of its own process group and its cancellation kill the whole
// group: git's transport helpers die with it.
func killGroup(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
}
