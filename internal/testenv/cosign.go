package testenv

import (
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
	return tool(t, CosignEnv, "cosign-"+CosignVersion, "cosign", "scripts/deps.sh cosign builds it into ~/.cache/archmirror/bin")
}
