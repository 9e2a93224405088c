package run

import (
	"context"
	"errors"
	"testing"

	"github.com/archmirror/archmirror/internal/build"
	"github.com/archmirror/archmirror/internal/config"
	"github.com/archmirror/archmirror/internal/platform"
	"github.com/archmirror/archmirror/internal/publish"
)

func TestStagingTag(t *testing.T) {
	p, _ := platform.Parse("linux/arm64/v8")
	if got := StagingTag("10.3.1-limitless", p); got != "archmirror-build-10.3.1-limitless-linux-arm64" {
		t.Fatalf("StagingTag = %q", got)
	}
}

// TestFanOutSteps runs the CI steps with a fake builder against the real registry: build --job
// records, a recorded job is not built again, publish waits for every platform and then
// publishes once.
func TestFanOutSteps(t *testing.T) {
	cfg := fakeWorld(t)
	if err := cfg.Select("hello"); err != nil {
		t.Fatal(err)
	}
	fb := &fakeBuilder{t: t}
	o := SyncOptions{NewBuilder: func(config.Node) build.Builder { return fb }}
	ctx := context.Background()

	if _, err := BuildJob(ctx, cfg, o, "hello/hello/9.9.9/linux-amd64"); !errors.Is(err, ErrNoSuchJob) {
		t.Fatalf("unknown job: %v", err)
	}
	p, err := Plan(ctx, cfg, o.Options)
	if err != nil || len(p.Jobs) != 8 {
		t.Fatalf("plan: %d jobs, %v", len(p.Jobs), err)
	}
	// Every job but one arm64 build, in reverse order.
	var held string
	for i := len(p.Jobs) - 1; i >= 0; i-- {
		j := p.Jobs[i]
		if j.Version == "2.1.0" && j.Platform == "linux/arm64" {
			held = j.ID
			continue
		}
		rep, err := BuildJob(ctx, cfg, o, j.ID)
		if err != nil || len(rep.Jobs) != 1 || rep.Jobs[0].Status != JobBuilt {
			t.Fatalf("build %s: %+v %v", j.ID, rep.Jobs, err)
		}
	}
	if len(fb.builtIDs) != 7 {
		t.Fatalf("%d builds, want 7", len(fb.builtIDs))
	}
	// Again: recorded, not built.
	rep, err := BuildJob(ctx, cfg, o, p.Jobs[0].ID)
	if err != nil || rep.Jobs[0].Builder != "recorded" || len(fb.builtIDs) != 7 {
		t.Fatalf("re-run: %+v %v (%d builds)", rep.Jobs, err, len(fb.builtIDs))
	}

	rep, err = Publish(ctx, cfg, o)
	if err != nil {
		t.Fatal(err)
	}
	status := map[string]publish.Status{}
	for _, u := range rep.Units {
		status[u.Version] = u.Status
	}
	if status["2.1.0"] != publish.Incomplete || status["2.0.0"] != publish.Published || !rep.Failed() {
		t.Fatalf("publish with 2.1.0's arm64 missing: %v", status)
	}
	if rep, err := BuildJob(ctx, cfg, o, held); err != nil || rep.Jobs[0].Status != JobBuilt {
		t.Fatalf("build %s: %+v %v", held, rep.Jobs, err)
	}
	rep, err = Publish(ctx, cfg, o, "2.1.0")
	if err != nil || rep.Failed() || len(rep.Units) != 1 || rep.Units[0].Status != publish.Published || !rep.Units[0].Latest {
		t.Fatalf("publish --version 2.1.0: %+v %v", rep.Units, err)
	}
	// Everything is published: the plan is empty, a job of it is nothing to do, publish is a no-op.
	if p, _ := Plan(ctx, cfg, o.Options); len(p.Jobs) != 0 {
		t.Fatalf("%d jobs left", len(p.Jobs))
	}
	if rep, err := BuildJob(ctx, cfg, o, held); err != nil || len(rep.Jobs) != 0 {
		t.Fatalf("build of a published job: %+v %v", rep.Jobs, err)
	}
	if rep, err := Publish(ctx, cfg, o); err != nil || rep.Failed() || len(rep.Units) != 0 {
		t.Fatalf("publish with everything published: %+v %v", rep.Units, err)
	}
}
