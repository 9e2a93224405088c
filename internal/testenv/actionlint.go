package testenv

import (
	"testing"
)

// ActionlintEnv overrides where the actionlint CLI is looked up.
const ActionlintEnv = "ARCHMIRROR_ACTIONLINT"

// ActionlintVersion is the actionlint release scripts/deps.sh actionlint builds, and whose file
// name in ~/.cache/archmirror/bin this package looks for.
const ActionlintVersion = "v1.7.12"

// ShellcheckEnv overrides where the shellcheck CLI is looked up.
const ShellcheckEnv = "ARCHMIRROR_SHELLCHECK"

// Actionlint returns the path of the actionlint CLI (the GitHub Actions workflow linter):
// $ARCHMIRROR_ACTIONLINT, the pinned build scripts/deps.sh caches, or one on PATH; else the test
// is skipped (failed under ARCHMIRROR_E2E=1).
func Actionlint(t testing.TB) string {
	t.Helper()
	return tool(t, ActionlintEnv, "actionlint-"+ActionlintVersion, "actionlint", "scripts/deps.sh actionlint builds it into ~/.cache/archmirror/bin")
}

// Shellcheck returns the path of the shellcheck CLI, which actionlint runs on every run: script
// (without it actionlint skips those checks silently): $ARCHMIRROR_SHELLCHECK, else shellcheck on
// PATH; else the test is skipped (failed under ARCHMIRROR_E2E=1).
func Shellcheck(t testing.TB) string {
	t.Helper()
	return tool(t, ShellcheckEnv, "", "shellcheck", "scripts/deps.sh actionlint: apt-get install shellcheck")
}
