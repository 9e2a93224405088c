package testenv

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// CosignEnv overrides where the cosign CLI is looked up.
const CosignEnv = "ARCHMIRROR_COSIGN"

// CosignVersion is the cosign release scripts/deps.sh cosign builds, and whose file name in
// ~/.cache/archmirror/bin this package looks for.
const CosignVersion = "v3.1.3"

// Cosign returns the path of the cosign CLI: $ARCHMIRROR_COSIGN, the pinned build scripts/deps.sh
// caches, or one on PATH; else the test is skipped (failed under ARCHMIRROR_E2E=1).
func Cosign(t testing.TB) string {
	t.Helper()
	if p := os.Getenv(CosignEnv); p != "" {
		return p
	}
	if home, err := os.UserHomeDir(); err == nil {
		p := filepath.Join(home, ".cache", "archmirror", "bin", "cosign-"+CosignVersion)
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	if p, err := exec.LookPath("cosign"); err == nil {
		return p
	}
	Missing(t, "the cosign CLI is not installed (scripts/deps.sh cosign builds it into ~/.cache/archmirror/bin)")
	return ""
}
