package testenv

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// tool finds a command-line tool a test runs: $env, then the pinned build scripts/deps.sh caches
// as ~/.cache/archmirror/bin/<cached> (when cached is not ""), then name on PATH; else the test
// is skipped (failed under ARCHMIRROR_E2E=1) with install, the command that installs it.
func tool(t testing.TB, env, cached, name, install string) string {
	t.Helper()
	if p := os.Getenv(env); p != "" {
		return p
	}
	if home, err := os.UserHomeDir(); err == nil && cached != "" {
		p := filepath.Join(home, ".cache", "archmirror", "bin", cached)
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	Missing(t, name+" is not installed ("+install+")")
	return ""
}
