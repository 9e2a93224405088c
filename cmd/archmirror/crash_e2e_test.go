package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	mrand "math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
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

// TestCrashPoints kills `archmirror sync` at named points rather than random times, by a proxy
// in front of the upstream and one in front of the registry that SIGKILL the process when the
// point's request arrives (and drop that request): during discovery (the releases API), in the
// middle of a build (BuildKit's download of a release tarball), in the middle of a push
// (BuildKit's first blob upload), between publishing the indexes and moving latest (the PUT of
// latest), and in the middle of attesting (the PUT of a referrers index). After each: no
// partial tag, latest on a complete version; the next sync converges to an uninterrupted run's
// digests, and after the kill before latest it builds nothing at all.
func TestCrashPoints(t *testing.T) {
	if testing.Short() {
		t.Skip("builds images")
	}
	key := pemKey(t)
	pub, err := pubKeyOf(key)
	if err != nil {
		t.Fatal(err)
	}
	w := testenv.NewWorld(t, testenv.WithSign("{key: 'file://"+key+"'}"))
	apps := []string{"--app", "hello", "--app", "twostep"}
	repos := []string{"hello", "twostep-base", "twostep"}

	type point struct {
		name     string
		upstream bool
		match    func(r *http.Request) bool
	}
	buildkit := func(r *http.Request) bool {
		ua := strings.ToLower(r.UserAgent())
		return strings.Contains(ua, "buildkit") || strings.Contains(ua, "containerd")
	}
	points := []point{
		// First, while BuildKit's cache is cold: a cached build downloads nothing.
		{"mid-build", true, func(r *http.Request) bool {
			return r.Method == http.MethodGet && strings.HasPrefix(r.URL.Path, "/files/") && !strings.Contains(r.UserAgent(), "archmirror")
		}},
		{"discovery", true, func(r *http.Request) bool { return strings.Contains(r.URL.Path, "/releases") }},
		{"mid-push", false, func(r *http.Request) bool {
			return buildkit(r) && (r.Method == http.MethodPatch || r.Method == http.MethodPut) && strings.Contains(r.URL.Path, "/blobs/uploads/")
		}},
		{"before-latest", false, func(r *http.Request) bool {
			return r.Method == http.MethodPut && strings.HasSuffix(r.URL.Path, "/manifests/latest")
		}},
		{"mid-attest", false, func(r *http.Request) bool {
			return r.Method == http.MethodPut && strings.Contains(r.URL.Path, "/manifests/sha256-")
		}},
	}

	var mu sync.Mutex
	var running *exec.Cmd
	var armed atomic.Pointer[point]
	hook := func(upstream bool) func(*http.Request) bool {
		return func(r *http.Request) bool {
			p := armed.Load()
			if p == nil || p.upstream != upstream || !p.match(r) || !armed.CompareAndSwap(p, nil) {
				return false
			}
			mu.Lock()
			_ = running.Process.Kill()
			mu.Unlock()
			return true // and the request is answered 5xx, not forwarded
		}
	}
	reg := testenv.NewFaultProxy(t, w.Registry, testenv.Faults{ServerError: 1, Only: hook(false)})
	up := testenv.NewFaultProxy(t, w.UpstreamURL, testenv.Faults{ServerError: 1, Only: hook(true)})
	bk := testenv.BuildKit(t, reg.Addr, w.Registry)
	text, err := os.ReadFile(w.ConfigPath)
	if err != nil {
		t.Fatal(err)
	}
	s := strings.ReplaceAll(string(text), strings.TrimPrefix(w.UpstreamURL, "http://"), up.Addr)
	s = strings.Replace(s, strconv.Quote(w.BuildKit), strconv.Quote(bk), 1)
	cfgPath := filepath.Join(w.Dir, "proxied.yaml") // contexts are relative to it
	if err := os.WriteFile(cfgPath, []byte(s), 0o644); err != nil {
		t.Fatal(err)
	}
	syncTo := func(ns string, extra ...string) *exec.Cmd {
		return archmirrorProc(append(append([]string{"sync", "-c", cfgPath, "--target", reg.Addr + "/" + ns, "--parallel", "4"}, apps...), extra...)...)
	}

	// The reference, an uninterrupted sync, once the first kill is done.
	var want map[string]map[string]string
	reference := func(t *testing.T) {
		if want != nil {
			return
		}
		if out, err := syncTo("reference").CombinedOutput(); err != nil {
			t.Fatalf("reference sync: %v\n%s", err, out)
		}
		want = map[string]map[string]string{}
		for _, repo := range repos {
			want[repo] = tagsOf(t, w.Registry+"/reference/"+repo)
		}
	}

	for _, p := range points {
		t.Run(p.name, func(t *testing.T) {
			ns := "point-" + p.name
			cmd := syncTo(ns)
			var out bytes.Buffer
			cmd.Stdout, cmd.Stderr = &out, &out
			mu.Lock()
			running = cmd
			armed.Store(&p)
			err := cmd.Start()
			mu.Unlock()
			if err != nil {
				t.Fatal(err)
			}
			err = cmd.Wait()
			if armed.Load() != nil {
				armed.Store(nil)
				t.Fatalf("the sync ended (%v) without reaching %s:\n%s", err, p.name, out.String())
			}
			if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); !ok || !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
				t.Fatalf("the sync was not killed at %s: %v", p.name, err)
			}
			for _, repo := range repos {
				checkCrashState(t, 0, w.Registry+"/"+ns+"/"+repo, tagsOf(t, w.Registry+"/"+ns+"/"+repo))
			}

			reference(t)
			next := syncTo(ns, "--json")
			var rep bytes.Buffer
			next.Stdout = &rep
			if err := next.Run(); err != nil {
				t.Fatalf("the sync after the kill: %v\n%s", err, rep.String())
			}
			var r run.Report
			if err := json.Unmarshal(rep.Bytes(), &r); err != nil {
				t.Fatal(err)
			}
			rebuilt := 0
			for _, j := range r.Jobs {
				if j.Builder != "recorded" {
					rebuilt++
				}
			}
			t.Logf("killed at %s; the next sync ran %d jobs, %d of them built (the rest recorded before the kill)", p.name, len(r.Jobs), rebuilt)
			if p.name == "before-latest" && len(r.Jobs) != 0 {
				t.Errorf("after a kill between the indexes and latest, the next sync ran %d jobs, want none", len(r.Jobs))
			}
			for _, repo := range repos {
				if got := tagsOf(t, w.Registry+"/"+ns+"/"+repo); fmt.Sprint(got) != fmt.Sprint(want[repo]) {
					t.Errorf("%s: tags %v, an uninterrupted sync gives %v", repo, got, want[repo])
				}
			}
			if out, err := archmirrorProc("verify", w.Registry+"/"+ns+"/hello:latest", "--key", pub).CombinedOutput(); err != nil {
				t.Errorf("verify after converging: %v\n%s", err, out)
			}
		})
	}
}
