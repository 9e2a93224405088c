package testenv

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"
)

// ChromiumEnv overrides where the Chromium browser is looked up.
const ChromiumEnv = "ARCHMIRROR_CHROMIUM"

// chromiumTimeout bounds one headless Chromium run.
const chromiumTimeout = 60 * time.Second

// Chromium returns the path of a Chromium browser: $ARCHMIRROR_CHROMIUM, else chromium on PATH;
// else the test is skipped (failed under ARCHMIRROR_E2E=1).
func Chromium(t testing.TB) string {
	t.Helper()
	return tool(t, ChromiumEnv, "", "chromium", "scripts/deps.sh chromium: apt-get install chromium")
}

// DumpDOM loads url in headless Chromium and returns the DOM it built, serialized as HTML.
func DumpDOM(t testing.TB, bin, url string) string {
	t.Helper()
	return string(runChromium(t, bin, "--dump-dom", url))
}

// Screenshot loads url in headless Chromium with a width×height window and writes a PNG of it
// to path.
func Screenshot(t testing.TB, bin, url, path string, width, height int) {
	t.Helper()
	runChromium(t, bin, "--screenshot="+path, fmt.Sprintf("--window-size=%d,%d", width, height), url)
	if _, err := os.Stat(path); err != nil {
		t.Fatalf("testenv: chromium wrote no screenshot: %v", err)
	}
}

// runChromium runs one headless Chromium with a fresh profile and returns its standard output.
// Chromium's helper processes are in its process group, which is killed afterwards, so none
// outlives the call (or keeps writing into the profile while t.TempDir is removed).
func runChromium(t testing.TB, bin string, args ...string) []byte {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), chromiumTimeout)
	defer cancel()
	args = append([]string{
		"--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
		"--no-first-run", "--no-default-browser-check",
		"--user-data-dir=" + t.TempDir(), "--virtual-time-budget=2000",
	}, args...)
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 5 * time.Second
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	if cmd.Process != nil {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) // stragglers; the group is ours
	}
	if err != nil {
		if ctx.Err() != nil {
			err = fmt.Errorf("%w (after %s)", err, chromiumTimeout)
		}
		t.Fatalf("testenv: %s %s: %v\nstderr:\n%s\nstdout:\n%s", bin, strings.Join(args, " "), err,
			tail(stderr.String(), 40), tail(stdout.String(), 20))
	}
	return stdout.Bytes()
}
