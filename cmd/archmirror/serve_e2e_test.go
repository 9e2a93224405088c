package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/archmirror/archmirror/internal/fakeupstream"
	"github.com/archmirror/archmirror/internal/fixture"
	"github.com/archmirror/archmirror/internal/serve"
	"github.com/archmirror/archmirror/internal/testenv"
)

// asMainEnv makes the test binary run archmirror's main instead of the tests, so the serve test
// can run `archmirror serve` as its own process and send it real signals.
const asMainEnv = "ARCHMIRROR_TEST_AS_MAIN"

func TestMain(m *testing.M) {
	if os.Getenv(asMainEnv) == "1" {
		main()
		return
	}
	os.Exit(m.Run())
}

// service is an `archmirror serve` process.
type service struct {
	cmd  *exec.Cmd
	url  string
	logs *bytes.Buffer
	done chan error
}

func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

func startService(t *testing.T, cfg, addr string) *service {
	t.Helper()
	cmd := exec.Command(os.Args[0], "serve", "-c", cfg, "--listen", addr, "--stop-timeout", "20s", "--parallel", "4")
	cmd.Env = append(os.Environ(), asMainEnv+"=1", "ARCHMIRROR_API_TOKEN="+apiToken)
	s := &service{cmd: cmd, url: "http://" + addr, logs: &bytes.Buffer{}, done: make(chan error, 1)}
	cmd.Stdout, cmd.Stderr = s.logs, s.logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { s.done <- cmd.Wait() }()
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Kill()
			<-s.done
		}
		if t.Failed() {
			t.Logf("serve logs:\n%s", s.logs)
		}
	})
	waitFor(t, 60*time.Second, "serve to be ready", func() bool {
		resp, err := http.Get(s.url + "/readyz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == 200
	})
	return s
}

// stop sends SIGTERM and waits for a clean exit.
func (s *service) stop(t *testing.T, within time.Duration) {
	t.Helper()
	if err := s.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-s.done:
		if err != nil {
			t.Fatalf("serve exited with %v after SIGTERM", err)
		}
	case <-time.After(within):
		t.Fatalf("serve did not exit within %s of SIGTERM", within)
	}
}

const apiToken = "e2e-api-token-0123456789"

func waitFor(t *testing.T, d time.Duration, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", d, what)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func getJSON(t *testing.T, url string, v any) int {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	return resp.StatusCode
}

func postRun(t *testing.T, base, body string) serve.Run {
	t.Helper()
	req, _ := http.NewRequest("POST", base+"/api/v1/runs", strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+apiToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("POST /api/v1/runs %s: %d %s", body, resp.StatusCode, b)
	}
	var r serve.Run
	if err := json.Unmarshal(b, &r); err != nil {
		t.Fatal(err)
	}
	return r
}

func runs(t *testing.T, base string) []serve.Run {
	t.Helper()
	var out struct{ Runs []serve.Run }
	if code := getJSON(t, base+"/api/v1/runs?limit=100", &out); code != 200 {
		t.Fatalf("GET runs: %d", code)
	}
	return out.Runs
}

func runByID(t *testing.T, base, id string) serve.Run {
	t.Helper()
	var r serve.Run
	if code := getJSON(t, base+"/api/v1/runs/"+id, &r); code != 200 {
		t.Fatalf("GET run %s: %d", id, code)
	}
	return r
}

func waitRun(t *testing.T, base, id string, status ...string) serve.Run {
	t.Helper()
	var r serve.Run
	waitFor(t, 120*time.Second, "run "+id+" to be "+strings.Join(status, "/"), func() bool {
		r = runByID(t, base, id)
		return slices.Contains(status, r.Status)
	})
	return r
}

// TestServe runs `archmirror serve` as a process against the real registry and BuildKit.
func TestServe(t *testing.T) {
	if testing.Short() {
		t.Skip("builds images in a served sync")
	}
	w := testenv.NewWorld(t)
	good, err := os.ReadFile(w.ConfigPath)
	if err != nil {
		t.Fatal(err)
	}
	good = append(good, []byte("schedule: '@every 4s'\n")...)
	if err := os.WriteFile(w.ConfigPath, good, 0o644); err != nil {
		t.Fatal(err)
	}
	addr := freeAddr(t)
	started := time.Now()
	svc := startService(t, w.ConfigPath, addr)

	// Scheduled runs: the first mirrors everything, the next find nothing to do; on time, one
	// at a time.
	waitFor(t, 180*time.Second, "two scheduled runs to succeed", func() bool {
		n := 0
		for _, r := range runs(t, svc.url) {
			if r.Trigger == serve.TriggerSchedule && r.Status == serve.Succeeded {
				n++
			}
		}
		return n >= 2
	})
	all := runs(t, svc.url)
	slices.Reverse(all) // oldest first
	var last *serve.Run
	for i, r := range all {
		if r.Status == serve.Failed {
			t.Fatalf("run %s failed: %s", r.ID, r.Error)
		}
		if r.Started == nil {
			continue
		}
		if last != nil && last.Finished != nil && r.Started.Before(*last.Finished) {
			t.Fatalf("run %s started at %s, before run %s finished at %s", r.ID, r.Started, last.ID, last.Finished)
		}
		if i > 0 && r.Queued.Sub(all[i-1].Queued) < 3500*time.Millisecond {
			t.Errorf("scheduled runs %s and %s were queued %s apart (schedule: every 4s)", all[i-1].ID, r.ID, r.Queued.Sub(all[i-1].Queued))
		}
		last = &all[i]
	}
	if d := all[0].Queued.Sub(started); d > 6*time.Second {
		t.Errorf("the first scheduled run was queued %s after start (schedule: every 4s)", d)
	}
	if all[0].Summary.Built != 20 || all[0].Summary.Published != 10 {
		t.Errorf("first run: %+v", all[0].Summary)
	}

	// A POST runs once.
	r := waitRun(t, svc.url, postRun(t, svc.url, `{"apps": ["hello"]}`).ID, serve.Succeeded, serve.Failed)
	if r.Status != serve.Succeeded || r.Trigger != serve.TriggerAPI {
		t.Fatalf("posted run: %+v", r)
	}

	// The apps' state is the registry's: every hello version complete, each cell the digest of
	// the index's entry.
	var apps struct{ Apps []serve.App }
	getJSON(t, svc.url+"/api/v1/apps", &apps)
	if len(apps.Apps) != 3 {
		t.Fatalf("apps: %+v", apps)
	}
	hello := apps.Apps[0]
	if hello.Name != "hello" || hello.Behind != 0 || len(hello.Versions) != 4 {
		t.Fatalf("hello: %+v", hello)
	}
	for _, v := range hello.Versions {
		idx, err := remote.Index(mustTag(t, w.Namespace+"/hello:"+v.Version))
		if err != nil {
			t.Fatal(err)
		}
		m, _ := idx.IndexManifest()
		for _, e := range m.Manifests {
			p := e.Platform.OS + "/" + e.Platform.Architecture
			if c := v.Components[0].Cells[p]; c.State != serve.CellComplete || c.Digest != e.Digest.String() {
				t.Errorf("hello %s %s: %+v, registry says %s", v.Version, p, c, e.Digest)
			}
		}
	}

	// The status page, in a real browser: the hello table with every cell complete.
	if bin := testenv.Chromium(t); bin != "" {
		dom := testenv.DumpDOM(t, bin, svc.url+"/")
		if !strings.Contains(dom, `data-app="hello"`) || strings.Count(dom, `data-state="complete"`) < 16 || strings.Contains(dom, `data-state="failed"`) {
			t.Errorf("status page DOM lacks the complete hello table:\n%.2000s", dom)
		}
		shot := filepath.Join(artifacts(t), "serve-status-page.png")
		testenv.Screenshot(t, bin, svc.url+"/", shot, 1280, 1600)
		t.Logf("status page screenshot: %s", shot)
	}

	// SIGHUP with a broken config: refused, the old one goes on and the page says so.
	if err := os.WriteFile(w.ConfigPath, append(bytes.Clone(good), []byte("versions: {max: ten}\n")...), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := svc.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "the status page to show the refused reload", func() bool {
		resp, err := http.Get(svc.url + "/")
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return bytes.Contains(b, []byte("config-error")) && bytes.Contains(b, []byte("versions.max"))
	})
	r = waitRun(t, svc.url, postRun(t, svc.url, `{"apps": ["twostep"]}`).ID, serve.Succeeded, serve.Failed)
	if r.Status != serve.Succeeded {
		t.Fatalf("a run under the kept config: %+v", r)
	}
	if err := os.WriteFile(w.ConfigPath, good, 0o644); err != nil {
		t.Fatal(err)
	}
	_ = svc.cmd.Process.Signal(syscall.SIGHUP)

	// SIGTERM in the middle of a build: the process exits in time and the version is not
	// tagged (not even with the platform that finished).
	const v = "3.1.0"
	release := holdNewVersion(t, w.Upstream, v)
	defer release()
	mid := postRun(t, svc.url, `{"apps": ["hello"]}`)
	waitFor(t, 60*time.Second, "the new version's build to start downloading", func() bool {
		return w.Upstream.Hits("/files/hello/hello-"+v) > 0
	})
	time.Sleep(500 * time.Millisecond)
	t0 := time.Now()
	svc.stop(t, 25*time.Second)
	t.Logf("serve stopped %s after SIGTERM, mid-build", time.Since(t0).Round(time.Millisecond))
	if _, err := remote.Head(mustTag(t, w.Namespace+"/hello:"+v)); err == nil {
		t.Fatalf("hello:%s is tagged after a SIGTERM in the middle of its build", v)
	}
	release()

	// A restart keeps the history, with the interrupted run cancelled.
	svc = startService(t, w.ConfigPath, addr)
	after := runs(t, svc.url)
	ids := map[string]string{}
	for _, r := range after {
		ids[r.ID] = r.Status
	}
	for _, r := range all {
		if _, ok := ids[r.ID]; !ok {
			t.Errorf("run %s is gone after a restart", r.ID)
		}
	}
	if ids[mid.ID] != serve.Cancelled {
		t.Errorf("the run SIGTERM interrupted is %q after a restart, want cancelled", ids[mid.ID])
	}
	svc.stop(t, 25*time.Second)
}

// holdNewVersion makes hello's upstream publish version v, whose tarball downloads wait until
// release.
func holdNewVersion(t *testing.T, up *fakeupstream.Server, v string) func() {
	t.Helper()
	progs, err := fixture.Programs(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for arch, prog := range progs {
		tb, err := fixture.Tarball(v, prog)
		if err != nil {
			t.Fatal(err)
		}
		up.SetFile(fixture.TarballPath(v, arch), tb)
	}
	release := up.Hold("hello/hello-" + v)
	rels := append([]fakeupstream.Release{{Tag: "v" + v, Name: "v" + v, Published: fixture.Epoch.AddDate(1, 0, 0)}}, fixture.Fixture().GitHub["acme/hello"]...)
	up.SetReleases("acme/hello", rels)
	return release
}

func mustTag(t *testing.T, s string) name.Tag {
	t.Helper()
	tag, err := name.NewTag(s)
	if err != nil {
		t.Fatal(err)
	}
	return tag
}

// artifacts is where tests keep files for people to look at: $ARCHMIRROR_ARTIFACTS, else
// $TMPDIR/archmirror-artifacts.
func artifacts(t *testing.T) string {
	t.Helper()
	dir := os.Getenv("ARCHMIRROR_ARTIFACTS")
	if dir == "" {
		dir = filepath.Join(os.TempDir(), "archmirror-artifacts")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}
