package run

import (
	"context"
	"log/slog"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/archmirror/archmirror/internal/config"
	"github.com/archmirror/archmirror/internal/discover"
	"github.com/archmirror/archmirror/internal/testenv"
)

// These tests run several real buildkitd processes and route jobs between them.

// withBuilders rewrites the world's config with another builders: section (and extra lines).
func withBuilders(t *testing.T, w *testenv.World, builders string, extra ...string) *config.Config {
	t.Helper()
	b, err := os.ReadFile(w.ConfigPath)
	if err != nil {
		t.Fatal(err)
	}
	text := string(b)
	start := strings.Index(text, "builders: {default:")
	end := start + strings.Index(text[start:], "\n")
	text = text[:start] + builders + strings.Join(extra, "\n") + text[end:]
	if err := os.WriteFile(w.ConfigPath, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(w.ConfigPath, discover.SourceKinds())
	if err != nil {
		t.Fatalf("%v\n%s", err, text)
	}
	if err := cfg.Select("hello"); err != nil {
		t.Fatal(err)
	}
	return cfg
}

// buildingLog records which node each job went to, from sync's "building" log lines.
type buildingLog struct {
	mu   sync.Mutex
	node map[string]string // job → builder
}

func (l *buildingLog) Enabled(context.Context, slog.Level) bool { return true }
func (l *buildingLog) WithAttrs([]slog.Attr) slog.Handler       { return l }
func (l *buildingLog) WithGroup(string) slog.Handler            { return l }
func (l *buildingLog) Handle(_ context.Context, r slog.Record) error {
	if r.Message != "building" {
		return nil
	}
	var job, node string
	r.Attrs(func(a slog.Attr) bool {
		switch a.Key {
		case "job":
			job = a.Value.String()
		case "builder":
			node = a.Value.String()
		}
		return true
	})
	l.mu.Lock()
	l.node[job] = node
	l.mu.Unlock()
	return nil
}

func (l *buildingLog) of(job string) string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.node[job]
}

func TestNodesRouteByPlatform(t *testing.T) {
	if testing.Short() {
		t.Skip("runs several buildkitd")
	}
	w := testenv.NewWorld(t)
	arm := testenv.BuildKitNode(t, w.Registry)
	// The first arm64 node does not exist: the health check takes it out before any job.
	cfg := withBuilders(t, w, `builders: {linux/amd64: "`+w.BuildKit+`", linux/arm64: ["unix:///tmp/archmirror-no-such-node.sock", "`+arm.Addr+`"]}`)
	rep, err := Sync(context.Background(), cfg, SyncOptions{Parallel: 4})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Failed() || len(rep.Jobs) != 8 {
		t.Fatalf("sync:\n%s", describe(rep))
	}
	for _, j := range rep.Jobs {
		want := w.BuildKit
		if j.Platform == "linux/arm64" {
			want = arm.Addr
		}
		if j.Builder != want || len(j.Retried) != 0 {
			t.Errorf("%s ran on %s (retried %v), want %s", j.ID, j.Builder, j.Retried, want)
		}
	}
}

func TestNodeDiesMidBuild(t *testing.T) {
	if testing.Short() {
		t.Skip("runs several buildkitd and kills one")
	}
	for _, tt := range []struct {
		name   string
		spare  bool // a second arm64 node the job can move to
		expect func(t *testing.T, rep Report, killed, spare string)
	}{
		{"another node takes the job", true, func(t *testing.T, rep Report, killed, spare string) {
			if rep.Failed() {
				t.Fatalf("sync failed although a second arm64 node was up:\n%s", describe(rep))
			}
			for _, j := range rep.Jobs {
				if j.ID == heldJob && (j.Builder != spare || len(j.Retried) != 1 || j.Retried[0] != killed) {
					t.Fatalf("%s: built on %s after %v; want %s after %s", j.ID, j.Builder, j.Retried, spare, killed)
				}
			}
		}},
		{"no node left", false, func(t *testing.T, rep Report, killed, _ string) {
			var failed bool
			for _, j := range rep.Jobs {
				if j.ID == heldJob {
					failed = j.Status == JobFailed && strings.Contains(j.Error, killed) && strings.Contains(j.Error, "no BuildKit node left")
				}
			}
			if !failed {
				t.Fatalf("%s did not fail naming the dead node:\n%s", heldJob, describe(rep))
			}
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			w := testenv.NewWorld(t)
			a := testenv.BuildKitNode(t, w.Registry)
			nodes := map[string]testenv.Node{a.Addr: a}
			arm := `"` + a.Addr + `"`
			if tt.spare {
				b := testenv.BuildKitNode(t, w.Registry)
				nodes[b.Addr] = b
				arm = `[` + arm + `, "` + b.Addr + `"]`
			}
			cfg := withBuilders(t, w, `builders: {default: "`+w.BuildKit+`", linux/arm64: `+arm+`}`)
			release := w.Upstream.Hold("hello/hello-2.1.0-linux-arm64")
			defer release()
			logs := &buildingLog{node: map[string]string{}}
			done := make(chan Report, 1)
			go func() {
				rep, err := Sync(context.Background(), cfg, SyncOptions{Parallel: 8, Options: Options{Log: slog.New(logs)}})
				if err != nil {
					t.Error(err)
				}
				done <- rep
			}()
			deadline := time.Now().Add(90 * time.Second)
			for w.Upstream.Hits("/files/hello/hello-2.1.0-linux-arm64") == 0 || logs.of(heldJob) == "" {
				if time.Now().After(deadline) {
					t.Fatal("the held arm64 build never started")
				}
				time.Sleep(50 * time.Millisecond)
			}
			// Kill whichever arm64 node the held job went to.
			victim := logs.of(heldJob)
			n, ok := nodes[victim]
			if !ok {
				t.Fatalf("%s went to %s, not an arm64 node", heldJob, victim)
			}
			other := ""
			for addr := range nodes {
				if addr != victim {
					other = addr
				}
			}
			n.Kill()
			release()
			var rep Report
			select {
			case rep = <-done:
			case <-time.After(3 * time.Minute):
				t.Fatal("sync did not finish after the node died")
			}
			tt.expect(t, rep, victim, other)
			if !tt.spare && (len(rep.Units) > 0 && hasVersion(rep, "2.1.0")) {
				t.Errorf("2.1.0 was published without its arm64 image:\n%s", describe(rep))
			}
			if !tt.spare && existsTag(t, w.Namespace+"/hello:2.1.0") {
				t.Error("hello:2.1.0 is tagged although its arm64 build died")
			}
		})
	}
}

const heldJob = "hello/hello/2.1.0/linux-arm64"

func hasVersion(rep Report, v string) bool {
	for _, u := range rep.Units {
		if u.Version == v && u.Error == "" && u.Digest != "" {
			return true
		}
	}
	return false
}

func existsTag(t *testing.T, ref string) bool {
	t.Helper()
	e := &e2e{ns: ref[:strings.LastIndex(ref, "/")]}
	repo, tag, _ := strings.Cut(ref[strings.LastIndex(ref, "/")+1:], ":")
	return e.exists(t, repo, tag)
}

func TestEmulationOff(t *testing.T) {
	if testing.Short() {
		t.Skip("runs buildkitd")
	}
	w := testenv.NewWorld(t)
	// Only an amd64 node, and no emulation: the arm64 jobs fail saying why; nothing is tagged.
	cfg := withBuilders(t, w, `builders: {default: "`+w.BuildKit+`"}`, "\nemulation: false")
	rep, err := Sync(context.Background(), cfg, SyncOptions{Parallel: 4})
	if err != nil {
		t.Fatal(err)
	}
	for _, j := range rep.Jobs {
		switch {
		case j.Platform == "linux/amd64" && j.Status != JobBuilt:
			t.Errorf("%s: %s %s", j.ID, j.Status, j.Error)
		case j.Platform == "linux/arm64" && (j.Status != JobFailed || !strings.Contains(j.Error, "no native BuildKit node for linux/arm64 and emulation: false")):
			t.Errorf("%s: %s %q", j.ID, j.Status, j.Error)
		}
	}
	if len(rep.Units) != 0 || existsTag(t, w.Namespace+"/hello:2.1.0") {
		t.Errorf("versions were published without arm64:\n%s", describe(rep))
	}
}
