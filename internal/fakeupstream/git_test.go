package fakeupstream

import (
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// A repository written with WriteGitRepo and served with ServeGit clones with git over smart
// HTTP, tags and symlinks (hostile targets included) as they were given, and writing it
// touched nothing outside its directory.
func TestServeGit(t *testing.T) {
	if _, err := exec.LookPath("git"); err != nil {
		t.Skip("no git command")
	}
	dir := t.TempDir()
	canary := filepath.Join(t.TempDir(), "canary")
	repo := filepath.Join(dir, "app.git")
	err := WriteGitRepo(t.Context(), repo, []GitTag{
		{Name: "v1.0.0", Files: map[string]GitFile{"Dockerfile": {Body: []byte("FROM scratch\n")}}},
		{Name: "v1.1.0", Files: map[string]GitFile{
			"Dockerfile": {Body: []byte("FROM scratch\nCOPY evil/passwd /x\n")},
			"evil":       {Link: "/etc"},
			"up":         {Link: "../../.."},
			"out":        {Link: canary}, // written as a link, never through it
			"bin/run":    {Body: []byte("#!/bin/sh\n"), Exec: true},
		}},
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Lstat(canary); !os.IsNotExist(err) {
		t.Fatalf("writing the repository touched %s: %v", canary, err)
	}
	s := New(Fixture{})
	s.ServeGit("acme/app", repo)
	srv := httptest.NewServer(s)
	defer srv.Close()

	clone := filepath.Join(dir, "clone")
	git := func(args ...string) string {
		t.Helper()
		cmd := exec.Command("git", args...)
		cmd.Env = append(os.Environ(), gitEnv...)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("git %v: %v\n%s", args, err, out)
		}
		return string(out)
	}
	if tags := git("ls-remote", "--tags", srv.URL+"/git/acme/app.git"); !strings.Contains(tags, "refs/tags/v1.0.0") || !strings.Contains(tags, "refs/tags/v1.1.0") {
		t.Fatalf("ls-remote: %s", tags)
	}
	git("clone", "--quiet", "--depth=1", "--branch=v1.1.0", srv.URL+"/git/acme/app.git", clone)
	for name, want := range map[string]string{"evil": "/etc", "up": "../../..", "out": canary} {
		if got, err := os.Readlink(filepath.Join(clone, name)); err != nil || got != want {
			t.Errorf("%s -> %q (%v), want -> %q", name, got, err, want)
		}
	}
	if st, err := os.Stat(filepath.Join(clone, "bin/run")); err != nil || st.Mode()&0o111 == 0 {
		t.Errorf("bin/run: %v %v, want executable", st, err)
	}
	if s.Hits("/git/acme/app.git/") == 0 {
		t.Error("no hit counted")
	}
	if resp, _ := get(t, "GET", srv.URL+"/git/other.git/info/refs?service=git-upload-pack", nil); resp.StatusCode != 404 {
		t.Errorf("unknown repository: %d", resp.StatusCode)
	}
}
