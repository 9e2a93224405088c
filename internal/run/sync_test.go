package run

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/archmirror/archmirror/internal/build"
	"github.com/archmirror/archmirror/internal/config"
	"github.com/archmirror/archmirror/internal/discover"
	"github.com/archmirror/archmirror/internal/fakeupstream"
	"github.com/archmirror/archmirror/internal/fixture"
	"github.com/archmirror/archmirror/internal/retry"
	"github.com/archmirror/archmirror/internal/target"
	"github.com/archmirror/archmirror/internal/testenv"
)

// fakeBuilder pushes a small random image per job (the orchestration under test does not care
// how an image is made) and fails the jobs fail names.
type fakeBuilder struct {
	t        *testing.T
	fail     func(build.Spec) bool
	err      func(build.Spec) error // the error of a failed build; default a RUN step's 404
	running  atomic.Int32
	peak     atomic.Int32
	mu       sync.Mutex
	specs    []build.Spec
	builtIDs []string
}

func (f *fakeBuilder) Build(ctx context.Context, s build.Spec) (build.Result, error) {
	n := f.running.Add(1)
	defer f.running.Add(-1)
	for p := f.peak.Load(); n > p && !f.peak.CompareAndSwap(p, n); p = f.peak.Load() {
	}
	f.mu.Lock()
	f.specs = append(f.specs, s)
	f.mu.Unlock()
	if f.fail != nil && f.fail(s) {
		if f.err != nil {
			if err := f.err(s); err != nil {
				return build.Result{}, err
			}
		}
		return build.Result{}, errors.New("RUN wget: server returned error: HTTP/1.1 404 Not Found")
	}
	ref, err := name.NewRepository(s.Push)
	if err != nil {
		return build.Result{}, err
	}
	img := testenv.Image(f.t, s.Platform.String())
	d, _ := img.Digest()
	if err := remote.Write(ref.Digest(d.String()), img); err != nil {
		return build.Result{}, err
	}
	f.mu.Lock()
	f.builtIDs = append(f.builtIDs, s.JobID)
	f.mu.Unlock()
	return build.Result{Digest: d.String(), Platform: s.Platform.String()}, nil
}

func fakeWorld(t *testing.T) *config.Config {
	t.Helper()
	srv := httptest.NewServer(fakeupstream.New(fixture.Fixture()))
	t.Cleanup(srv.Close)
	dir := t.TempDir()
	cfg, err := config.Parse(filepath.Join(dir, "m.yaml"), fixture.Config(fixture.Params{
		Upstream: srv.URL, Registry: testenv.Registry(t) + "/mirror", CacheDir: dir,
	}), discover.SourceKinds())

	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// A failed base skips its dependents (never built FROM a missing base) and nothing else.
func TestSyncSkipsDependentsOfFailures(t *testing.T) {
	cfg := fakeWorld(t)
	fb := &fakeBuilder{t: t, fail: func(s build.Spec) bool { return s.JobID == "twostep/twostep-base/0.3.0/linux-arm64" }}
	rep, err := Sync(context.Background(), cfg, SyncOptions{Parallel: 3, NewBuilder: func(config.Node) build.Builder { return fb }})
	if err != nil {
		t.Fatal(err)
	}
	if !rep.Failed() {
		t.Fatal("not reported as failed")
	}
	status := map[string]JobStatus{}
	for _, j := range rep.Jobs {
		status[j.ID] = j.Status
		if j.Status == JobSkipped && !strings.Contains(j.Error, "twostep-base 0.3.0 was not published") {
			t.Errorf("%s skipped for %q", j.ID, j.Error)
		}
	}
	for id, want := range map[string]JobStatus{
		"twostep/twostep-base/0.3.0/linux-arm64": JobFailed,
		"twostep/twostep-base/0.3.0/linux-amd64": JobBuilt,
		"twostep/twostep/0.3.0/linux-amd64":      JobSkipped,
		"twostep/twostep/0.3.0/linux-arm64":      JobSkipped,
		"twostep/twostep/0.2.1/linux-arm64":      JobBuilt, // the other version goes on
		"hello/hello/2.1.0/linux-arm64":          JobBuilt, // and the other apps
	} {
		if status[id] != want {
			t.Errorf("%s = %q, want %q", id, status[id], want)
		}
	}
	for _, s := range fb.specs {
		if s.JobID == "twostep/twostep/0.2.1/linux-amd64" {
			if !strings.HasPrefix(s.Args["BASE_IMAGE"], cfg.Target.Registry+"/twostep-base@sha256:") {
				t.Errorf("BASE_IMAGE = %q, want twostep-base 0.2.1's index by digest", s.Args["BASE_IMAGE"])
			}
		}
		if strings.HasPrefix(s.JobID, "twostep/twostep/0.3.0/") {
			t.Errorf("%s was built although its base failed", s.JobID)
		}
	}
	if p := fb.peak.Load(); p > 3 {
		t.Errorf("%d builds at once with --parallel 3", p)
	}
}

// --per-builder bounds the jobs one endpoint runs at once.
func TestSyncPerBuilderLimit(t *testing.T) {
	cfg := fakeWorld(t)
	fb := &fakeBuilder{t: t}
	rep, err := Sync(context.Background(), cfg, SyncOptions{Parallel: 8, PerBuilder: 1, NewBuilder: func(config.Node) build.Builder { return fb }})
	if err != nil || rep.Failed() {
		t.Fatalf("%v %s", err, describe(rep))
	}
	if p := fb.peak.Load(); p != 1 {
		t.Errorf("peak concurrency on the one endpoint = %d, want 1", p)
	}
	if len(fb.builtIDs) != 20 {
		t.Errorf("built %d jobs, want 20", len(fb.builtIDs))
	}
}

// A job whose push the registry refused with a 5xx is built again and succeeds; a job that
// fails for any other reason is built once.
func TestSyncRetriesFailedPush(t *testing.T) {
	cfg := fakeWorld(t)
	if err := cfg.Select("hello"); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	tries := map[string]int{}
	fb := &fakeBuilder{t: t, fail: func(s build.Spec) bool {
		mu.Lock()
		defer mu.Unlock()
		tries[s.JobID]++
		return s.JobID == "hello/hello/2.1.0/linux-arm64" || (s.JobID == "hello/hello/2.0.0/linux-amd64" && tries[s.JobID] == 1)
	}}
	fb.err = func(s build.Spec) error {
		if s.JobID == "hello/hello/2.0.0/linux-amd64" {
			return errors.New("failed to push 127.0.0.1:5000/mirror/hello: unexpected status from PUT request: 503 Service Unavailable")
		}
		return nil
	}
	noWait := retry.Policy{Sleep: func(context.Context, time.Duration) error { return nil }}
	rep, err := Sync(context.Background(), cfg, SyncOptions{Parallel: 4, PushRetry: noWait, NewBuilder: func(config.Node) build.Builder { return fb }})
	if err != nil {
		t.Fatal(err)
	}
	status := map[string]JobStatus{}
	for _, j := range rep.Jobs {
		status[j.ID] = j.Status
	}
	if status["hello/hello/2.0.0/linux-amd64"] != JobBuilt || tries["hello/hello/2.0.0/linux-amd64"] != 2 {
		t.Errorf("a failed push: %s after %d tries, want built after 2", status["hello/hello/2.0.0/linux-amd64"], tries["hello/hello/2.0.0/linux-amd64"])
	}
	if status["hello/hello/2.1.0/linux-arm64"] != JobFailed || tries["hello/hello/2.1.0/linux-arm64"] != 1 {
		t.Errorf("a failed build: %s after %d tries, want failed after 1", status["hello/hello/2.1.0/linux-arm64"], tries["hello/hello/2.1.0/linux-arm64"])
	}
}

// A builder's error that names a git context with a token as its user name: the job's result,
// the log and the progress line have the user info redacted.
func TestSyncJobErrorRedactsURLUser(t *testing.T) {
	const token = "0123456789abcdef0123456789abcdef01234567"
	cfg := fakeWorld(t)
	fb := &fakeBuilder{t: t,
		fail: func(s build.Spec) bool { return s.JobID == "hello/hello/2.1.0/linux-arm64" },
		err: func(s build.Spec) error {
			return fmt.Errorf("%s: failed to read dockerfile: https://%s@git.example/hello.git: exit status 128", s.JobID, token)
		}}
	var logs lockedBuffer
	prog := &recordProgress{}
	rep, err := Sync(context.Background(), cfg, SyncOptions{
		Options:  Options{Log: slog.New(slog.NewTextHandler(&logs, nil))},
		Parallel: 2, NewBuilder: func(config.Node) build.Builder { return fb }, Progress: prog,
	})
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, j := range rep.Jobs {
		if j.ID == "hello/hello/2.1.0/linux-arm64" {
			found = true
			if want := "failed to read dockerfile: https://[redacted]@git.example/hello.git: exit status 128"; j.Error != want {
				t.Errorf("job error = %q, want %q", j.Error, want)
			}
		}
	}
	if !found {
		t.Fatal("the failing job is not in the report")
	}
	if s := logs.String() + prog.String(); strings.Contains(s, token) || !strings.Contains(s, "[redacted]@git.example") {
		t.Errorf("the log or progress has the token, or not the failure:\n%s", s)
	}
}

// recordProgress records the failures a Progress is told of.
type recordProgress struct{ lockedBuffer }

func (p *recordProgress) JobStarted(id string)    {}
func (p *recordProgress) JobStep(id, step string) {}
func (p *recordProgress) JobDone(id, status string, err error) {
	if err != nil {
		fmt.Fprintln(p, id, status, err)
	}
}

// lockedBuffer is a strings.Builder safe for concurrent writers.
type lockedBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// Build logs are the user's alone, whatever the umask: <logs>/<run>/ 0700, each log 0600.
func TestSyncLogsArePrivate(t *testing.T) {
	old := syscall.Umask(0)
	defer syscall.Umask(old)
	cfg := fakeWorld(t)
	logs := filepath.Join(t.TempDir(), "logs")
	fb := &fakeBuilder{t: t}
	rep, err := Sync(context.Background(), cfg, SyncOptions{Parallel: 2, LogDir: logs, NewBuilder: func(config.Node) build.Builder { return fb }})
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Jobs) == 0 || rep.Jobs[0].Log == "" {
		t.Fatalf("no job logged: %+v", rep.Jobs)
	}
	modes := map[string]os.FileMode{logs: os.ModeDir | 0o700, rep.LogDir: os.ModeDir | 0o700}
	for _, j := range rep.Jobs {
		if j.Log != "" {
			modes[j.Log] = 0o600
		}
	}
	for p, want := range modes {
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode() != want {
			t.Errorf("%s: mode %v, want %v", p, fi.Mode(), want)
		}
	}
}

// The config's timeouts reach the target: a registry that takes the connection and never
// answers fails the plan's inspection with its host named, instead of blocking the run.
func TestPlanTargetTimeouts(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			defer c.Close() // held open, never answered
		}
	}()
	cfg := fakeWorld(t)
	cfg.Target.Registry = l.Addr().String() + "/mirror"
	cfg.Timeouts.Header = config.Duration{Duration: 300 * time.Millisecond}
	cfg.Timeouts.Request = config.Duration{Duration: time.Second}
	p, err := Plan(t.Context(), cfg, Options{Target: []target.Option{target.WithRetry(retry.Policy{Attempts: 1})}})
	msg := fmt.Sprint(err)
	for _, a := range p.Apps {
		msg += "\n" + a.Error
	}
	if want := "registry " + l.Addr().String() + ": no answer within 300ms"; !strings.Contains(msg, want) {
		t.Errorf("errors %q do not say %q", msg, want)
	}
}

// A sync whose context has no deadline is bounded by timeouts.run.
func TestSyncRunTimeout(t *testing.T) {
	cfg := fakeWorld(t)
	cfg.Timeouts.Run = config.Duration{Duration: time.Nanosecond}
	fb := &fakeBuilder{t: t}
	rep, err := Sync(context.Background(), cfg, SyncOptions{NewBuilder: func(config.Node) build.Builder { return fb }})
	if err == nil {
		for _, j := range rep.Jobs {
			if j.Status == JobBuilt {
				t.Errorf("%s built after the run's time was up", j.ID)
			}
		}
	}
	if len(fb.specs) != 0 {
		t.Errorf("%d builds after the run's time was up", len(fb.specs))
	}
}
