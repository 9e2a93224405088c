package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/archmirror/archmirror/internal/fakeupstream"
	"github.com/archmirror/archmirror/internal/fixture"
	"github.com/archmirror/archmirror/internal/testenv"
)

func cli(t *testing.T, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	var out, errb bytes.Buffer
	code = execute(context.Background(), args, &out, &errb)
	return out.String(), errb.String(), code
}

// demoConfig writes the fixture config for a fake upstream and a real registry namespace.
func demoConfig(t *testing.T) string {
	t.Helper()
	srv := httptest.NewServer(fakeupstream.New(fixture.Fixture()))
	t.Cleanup(srv.Close)
	reg := testenv.Registry(t) + "/cli"
	testenv.PushIndex(t, reg+"/hello:2.0.0", "linux/amd64", "linux/arm64")
	path := filepath.Join(t.TempDir(), "mirror.yaml")
	if err := os.WriteFile(path, fixture.Config(fixture.Params{Upstream: srv.URL, Registry: reg, CacheDir: t.TempDir()}), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestPlanFormats(t *testing.T) {
	cfg := demoConfig(t)

	out, errs, code := cli(t, "plan", "-c", cfg)
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, errs)
	}
	for _, want := range []string{"2.1.0 (latest)", "complete", "\"v2.0.0-rc1\": pre-release", "18 jobs to build in 2 stage(s)"} {
		if !strings.Contains(out, want) {
			t.Errorf("table lacks %q:\n%s", want, out)
		}
	}

	out, _, code = cli(t, "plan", "-c", cfg, "--json")
	var p struct {
		Jobs []map[string]any `json:"jobs"`
		Apps []struct {
			Name   string `json:"name"`
			Latest string `json:"latest"`
		} `json:"apps"`
	}
	if err := json.Unmarshal([]byte(out), &p); err != nil || code != exitOK {
		t.Fatalf("--json: %v (exit %d)\n%s", err, code, out)
	}
	if len(p.Apps) != 3 || p.Apps[0].Latest != "2.1.0" || len(p.Jobs) != 18 {
		t.Errorf("--json = %d apps, latest %q, %d jobs", len(p.Apps), p.Apps[0].Latest, len(p.Jobs))
	}

	out, _, code = cli(t, "plan", "-c", cfg, "--format", "github-matrix", "--app", "twostep", "--stage", "1")
	var m struct {
		Include []map[string]any `json:"include"`
	}
	if err := json.Unmarshal([]byte(out), &m); err != nil || code != exitOK {
		t.Fatalf("github-matrix: %v (exit %d)\n%s", err, code, out)
	}
	if strings.Count(strings.TrimSpace(out), "\n") != 0 {
		t.Error("github-matrix output is not one line (GitHub outputs need one)")
	}
	if len(m.Include) != 4 {
		t.Fatalf("stage 1 of twostep has %d jobs, want 4", len(m.Include))
	}
	for _, row := range m.Include {
		for _, k := range []string{"job", "app", "component", "version", "platform", "runner", "latest"} {
			if _, ok := row[k]; !ok {
				t.Errorf("matrix row lacks %q: %v", k, row)
			}
		}
		if row["component"] != "twostep" {
			t.Errorf("stage 1 row for %v", row["component"])
		}
	}
}

func TestPlanExitCodes(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.yaml")
	os.WriteFile(bad, []byte("target: {registry: oci:./m}\napps:\n  a:\n    source: {github: acme/a, inclde: x}\n    components: {a: {context: .}}\n"), 0o644)

	tests := []struct {
		name string
		args []string
		code int
		want string
	}{
		{"bad config names file, line and field", []string{"plan", "-c", bad}, exitUsage, "bad.yaml:4: apps.a.source.inclde: unknown field"},
		{"missing config", []string{"plan", "-c", filepath.Join(dir, "nope.yaml")}, exitUsage, "no such file"},
		{"unknown app", []string{"plan", "-c", "../../examples/mirror.yaml", "--app", "nope"}, exitUsage, `--app: no app "nope" in ../../examples/mirror.yaml`},
		{"bad format", []string{"plan", "-c", bad, "--format", "yaml"}, exitUsage, `--format "yaml"`},
		{"stage without matrix", []string{"plan", "-c", bad, "--stage", "1"}, exitUsage, "--stage goes with --format github-matrix"},
		{"unknown flag", []string{"plan", "--frobnicate"}, exitUsage, "unknown flag"},
		{"unknown command", []string{"frobnicate"}, exitUsage, "unknown command"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, errs, code := cli(t, tt.args...)
			if code != tt.code || !strings.Contains(errs, tt.want) {
				t.Errorf("exit %d, stderr %q; want exit %d and %q", code, errs, tt.code, tt.want)
			}
		})
	}
}

func TestPlanFailedAppExitsOne(t *testing.T) {
	up := fakeupstream.New(fixture.Fixture())
	up.SetReleases("acme/twostep", nil)
	srv := httptest.NewServer(up)
	defer srv.Close()
	path := filepath.Join(t.TempDir(), "m.yaml")
	// An API base that answers 404 for one app only: point twostep at a path that does not exist.
	cfg := strings.Replace(string(fixture.Config(fixture.Params{Upstream: srv.URL, Registry: "oci:" + t.TempDir(), CacheDir: t.TempDir()})),
		"{github: acme/twostep, api: \""+srv.URL+"\"}", "{github: acme/gone, api: \""+srv.URL+"\"}", 1)
	os.WriteFile(path, []byte(cfg), 0o644)
	out, errs, code := cli(t, "plan", "-c", path)
	if code != exitFailed {
		t.Fatalf("exit %d, want 1\n%s\n%s", code, out, errs)
	}
	if !strings.Contains(out, "twostep") || !strings.Contains(out, "ERROR") || !strings.Contains(out, "hello-fork") {
		t.Errorf("table does not show the failed app next to the others:\n%s", out)
	}
}

func TestVersion(t *testing.T) {
	out, _, code := cli(t, "version")
	if code != exitOK || !strings.HasPrefix(out, "archmirror ") {
		t.Errorf("version: %q exit %d", out, code)
	}
}

func TestVerifyUsage(t *testing.T) {
	for _, args := range [][]string{
		{"verify", "127.0.0.1:1/x/hello:1"},                                                // no key
		{"verify", "127.0.0.1:1/x/hello:1", "--key", "/nonexistent.pub"},                   // unreadable key
		{"verify", "127.0.0.1:1/x/hello:1", "--key", "k", "--certificate-identity", "a@b"}, // both
		{"verify", "127.0.0.1:1/x/hello:1", "--certificate-identity", "a@b"},               // no issuer
		{"verify"}, // no image
	} {
		if _, errOut, code := cli(t, args...); code != exitUsage {
			t.Errorf("%v: exit %d, want %d\n%s", args, code, exitUsage, errOut)
		}
	}
}

// TestFlagsMeanWhatTheySay: a flag a command cannot honour is refused (exit 2), never
// silently ignored, and counts below 1 are refused.
func TestFlagsMeanWhatTheySay(t *testing.T) {
	cfg := "../../examples/mirror.yaml"
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"build", "-c", cfg, "--job", "x", "--dry-run"}, "--dry-run does not apply: build has no dry run"},
		{[]string{"publish", "-c", cfg, "--dry-run"}, "--dry-run does not apply: publish has no dry run"},
		{[]string{"attest", "-c", cfg, "--dry-run"}, "--dry-run does not apply: attest has no dry run"},
		{[]string{"serve", "-c", cfg, "--target", "oci:/tmp/x"}, "--target does not apply: serve runs every app"},
		{[]string{"serve", "-c", cfg, "--max-versions", "3"}, "--max-versions does not apply"},
		{[]string{"serve", "-c", cfg, "--platform", "linux/arm64"}, "--platform does not apply"},
		{[]string{"serve", "-c", cfg, "--app", "outline"}, "--app does not apply"},
		{[]string{"serve", "-c", cfg, "--dry-run"}, "--dry-run does not apply"},
		{[]string{"sync", "-c", cfg, "--parallel", "-1"}, "--parallel -1: want 1 or more"},
		{[]string{"sync", "-c", cfg, "--parallel", "0"}, "--parallel 0: want 1 or more"},
		{[]string{"sync", "-c", cfg, "--per-builder", "-2"}, "--per-builder -2"},
		{[]string{"attest", "-c", cfg, "--parallel", "-3"}, "--parallel -3: want 1 or more"},
		{[]string{"serve", "-c", cfg, "--parallel", "-1"}, "--parallel -1: want 1 or more"},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			_, errs, code := cli(t, tt.args...)
			if code != exitUsage || !strings.Contains(errs, tt.want) {
				t.Errorf("exit %d, stderr %q; want exit %d and %q", code, errs, exitUsage, tt.want)
			}
		})
	}
}

// TestSyncDryRunNeedsNoKey: a dry run signs nothing, so a key that does not open is a warning
// there (a real sync refuses it before building, exit 2).
func TestSyncDryRunNeedsNoKey(t *testing.T) {
	srv := httptest.NewServer(fakeupstream.New(fixture.Fixture()))
	defer srv.Close()
	path := filepath.Join(t.TempDir(), "m.yaml")
	cfg := fixture.Config(fixture.Params{Upstream: srv.URL, Registry: "oci:" + t.TempDir(), CacheDir: t.TempDir(),
		Sign: "{key: env://ARCHMIRROR_TEST_UNSET_KEY}"})
	os.WriteFile(path, cfg, 0o644)
	out, errs, code := cli(t, "sync", "-c", path, "--dry-run")
	if code != exitOK || !strings.Contains(errs, "a real sync could not sign") || !strings.Contains(errs, "ARCHMIRROR_TEST_UNSET_KEY") {
		t.Errorf("dry run: exit %d\nstdout %s\nstderr %s", code, out, errs)
	}
	if _, errs, code := cli(t, "sync", "-c", path); code != exitUsage || !strings.Contains(errs, "ARCHMIRROR_TEST_UNSET_KEY") {
		t.Errorf("real sync: exit %d, stderr %q; want exit 2 naming the key", code, errs)
	}
}
