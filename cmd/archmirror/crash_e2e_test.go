package main

import (
	"encoding/json"
	"fmt"
	mrand "math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/Masterminds/semver/v3"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/archmirror/archmirror/internal/run"
	"github.com/archmirror/archmirror/internal/testenv"
)

// TestCrashSafety kills `archmirror sync` with SIGKILL at seeded random moments (discovery,
// builds, pushes, publishing, moving latest), 20 times, each into its own namespace, then checks
// what an interruption may leave: no version tag on an index missing a platform, latest never
// lower than before; and that the next sync converges to exactly what an uninterrupted run
// gives (same digests), building only what was not pushed yet.
func TestCrashSafety(t *testing.T) {
	if testing.Short() {
		t.Skip("kills syncs 20 times")
	}
	const trials = 20
	w := testenv.NewWorld(t)
	apps := []string{"--app", "hello", "--app", "twostep"}

	// The reference: an uninterrupted sync, and how long it takes.
	ref := w.Registry + "/reference"
	out, code := runProc(t, append([]string{"sync", "-c", w.ConfigPath, "--target", ref, "--parallel", "4", "--json"}, apps...)...)
	var refRep run.Report
	if code != 0 || json.Unmarshal([]byte(out), &refRep) != nil {
		t.Fatalf("reference sync: exit %d\n%s", code, out)
	}
	jobs := len(refRep.Jobs)
	// A run with warm build caches is what the kills below interrupt: time one.
	t0 := time.Now()
	if out, code := runProc(t, append([]string{"sync", "-c", w.ConfigPath, "--target", ref + "-warm", "--parallel", "4"}, apps...)...); code != 0 {
		t.Fatalf("warm reference sync: exit %d\n%s", code, out)
	}
	full := time.Since(t0)
	want := map[string]map[string]string{}
	for _, repo := range []string{"hello", "twostep-base", "twostep"} {
		want[repo] = tagsOf(t, ref+"/"+repo)
	}

	rng := mrand.New(mrand.NewPCG(2026, 11))
	rebuilt, reused, killed, killedAt := 0, 0, 0, []string{}
	for trial := range trials {
		ns := fmt.Sprintf("%s/crash-%d", w.Registry, trial)
		// Kill somewhere in the first 110 % of a full run (so some trials finish first).
		after := time.Duration(rng.Int64N(int64(full) * 11 / 10))
		cmd := archmirrorProc(append([]string{"sync", "-c", w.ConfigPath, "--target", ns, "--parallel", "4"}, apps...)...)
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		select {
		case <-done:
			killedAt = append(killedAt, "finished")
		case <-time.After(after):
			_ = cmd.Process.Kill()
			<-done
			killed++
			killedAt = append(killedAt, after.Round(10*time.Millisecond).String())
		}

		// What the interruption left: every version tag is a complete index, latest is the
		// highest of them or absent.
		for repo := range want {
			got := tagsOf(t, ns+"/"+repo)
			checkCrashState(t, trial, ns+"/"+repo, got)
		}

		// The next sync converges to the reference, building only what is missing.
		out, code := runProc(t, append([]string{"sync", "-c", w.ConfigPath, "--target", ns, "--parallel", "4", "--json"}, apps...)...)
		if code != 0 {
			t.Fatalf("trial %d: the sync after the kill: exit %d\n%s", trial, code, out)
		}
		var rep run.Report
		if err := json.Unmarshal([]byte(out), &rep); err != nil {
			t.Fatal(err)
		}
		for _, j := range rep.Jobs {
			if j.Builder == "recorded" {
				reused++ // pushed and recorded before the kill: not built again
			} else {
				rebuilt++
			}
		}
		for repo, tags := range want {
			got := tagsOf(t, ns+"/"+repo)
			for tag, d := range tags {
				if got[tag] != d {
					t.Errorf("trial %d (killed at %s): %s:%s is %q, an uninterrupted sync gives %s", trial, killedAt[trial], repo, tag, got[tag], d)
				}
			}
			if len(got) != len(tags) {
				t.Errorf("trial %d: %s has tags %v, want %v", trial, repo, got, tags)
			}
		}
	}
	t.Logf("%d trials (%d killed before the end, at %v); full run %s; the syncs after the kills built %d jobs and reused %d recorded ones (a full run is %d jobs)",
		trials, killed, killedAt, full.Round(time.Millisecond), rebuilt, reused, jobs)
	if killed < trials/2 {
		t.Errorf("only %d of %d trials were killed before the end: the kill times do not cover the run", killed, trials)
	}
	if reused == 0 {
		t.Error("no sync after a kill reused a recorded build: interrupted runs start over")
	}
	if rebuilt+reused > killed*jobs {
		t.Errorf("the syncs after %d kills ran %d jobs, more than the %d a full run has each", killed, rebuilt+reused, jobs)
	}
}

// checkCrashState checks a repository after an interrupted sync: each version tag is an index
// with both platforms, and latest, if set, is the highest version tagged.
func checkCrashState(t *testing.T, trial int, repo string, tags map[string]string) {
	t.Helper()
	r, err := name.NewRepository(repo)
	if err != nil {
		t.Fatal(err)
	}
	var highest *semver.Version
	for tag, d := range tags {
		if tag == "latest" {
			continue
		}
		idx, err := remote.Index(r.Digest(d))
		if err != nil {
			t.Errorf("trial %d: %s:%s is not an index: %v", trial, repo, tag, err)
			continue
		}
		m, _ := idx.IndexManifest()
		var ps []string
		for _, e := range m.Manifests {
			ps = append(ps, e.Platform.OS+"/"+e.Platform.Architecture)
		}
		if len(ps) != 2 || !strings.Contains(strings.Join(ps, " "), "linux/amd64") || !strings.Contains(strings.Join(ps, " "), "linux/arm64") {
			t.Errorf("trial %d: %s:%s is a partial index %v", trial, repo, tag, ps)
		}
		if v, err := semver.NewVersion(tag); err == nil && (highest == nil || v.GreaterThan(highest)) {
			highest = v
		}
	}
	// latest, if set, is one of the complete versions (the kill may have come before it moved
	// to the highest; the next sync moves it).
	if d, ok := tags["latest"]; ok {
		found := false
		for tag, td := range tags {
			found = found || (tag != "latest" && td == d)
		}
		if !found {
			t.Errorf("trial %d: %s:latest is %s, no version tag's index (highest tagged %v)", trial, repo, d, highest)
		}
	}
}
