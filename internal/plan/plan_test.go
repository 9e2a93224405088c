package plan

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/archmirror/archmirror/internal/config"
	"github.com/archmirror/archmirror/internal/discover"
	"github.com/archmirror/archmirror/internal/target"
)

func load(t *testing.T) *config.Config {
	t.Helper()
	cfg, err := config.Load("../config/testdata/design.yaml", discover.SourceKinds())
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

func versions(latest string, vs ...string) discover.Result {
	r := discover.Result{HighestStable: latest}
	for _, v := range vs {
		r.Versions = append(r.Versions, discover.Version{Version: v, Tag: "v" + v})
	}
	return r
}

func complete(ps ...string) target.State {
	if len(ps) == 0 {
		ps = []string{"linux/amd64", "linux/arm64"}
	}
	return target.State{Exists: true, Digest: "sha256:aa", Platforms: ps}
}

func runner(p string) string { return "runner-" + p }

func ids(jobs []Job) string {
	var s []string
	for _, j := range jobs {
		s = append(s, j.ID)
	}
	return strings.Join(s, " ")
}

func TestMakeStates(t *testing.T) {
	cfg := load(t)
	mm := cfg.App("mattermost")
	in := []App{{
		App:       mm,
		Discovery: versions("10.3.1", "9.11.6", "10.3.1", "10.2.0"),
		States: map[Key]target.State{
			{"mattermost", "10.3.1"}: complete(),
			{"mattermost", "10.2.0"}: complete("linux/amd64"),
			// 9.11.6 absent
		},
		Repos: map[string]string{"mattermost": "ghcr.io/acme/mirror/mattermost"},
	}}
	p := Make(in, runner)
	want := "mattermost/mattermost/9.11.6/linux-amd64 mattermost/mattermost/9.11.6/linux-arm64 mattermost/mattermost/10.2.0/linux-arm64"
	if got := ids(p.Jobs); got != want {
		t.Fatalf("jobs:\n got %s\nwant %s", got, want)
	}
	j := p.Jobs[2]
	if j.Reason != Incomplete || j.Runner != "runner-linux/arm64" || j.Repo != "ghcr.io/acme/mirror/mattermost" || j.Latest || j.Tag != "v10.2.0" {
		t.Errorf("job = %+v", j)
	}
	vs := p.Apps[0].Versions
	if vs[1].Components[0].Status != Complete || !vs[1].Latest || vs[2].Components[0].Status != Incomplete ||
		strings.Join(vs[2].Components[0].Missing, ",") != "linux/arm64" || vs[0].Components[0].Status != Missing {
		t.Errorf("reports = %+v", vs)
	}
	if p.Failed() {
		t.Error("plan failed without an error")
	}
}

func TestMakeLatestFlag(t *testing.T) {
	cfg := load(t)
	p := Make([]App{{App: cfg.App("mattermost"), Discovery: versions("10.3.1", "9.11.6", "10.3.1")}}, runner)
	for _, j := range p.Jobs {
		if j.Latest != (j.Version == "10.3.1") {
			t.Errorf("%s latest = %v", j.ID, j.Latest)
		}
	}
}

func TestMakeDependencies(t *testing.T) {
	cfg := load(t)
	ol := cfg.App("outline")
	tests := []struct {
		name      string
		states    map[Key]target.State
		wantIDs   string
		wantNeeds map[string]string
		wantStage map[string]int
	}{
		{
			name:    "nothing there: base first, app needs every base platform",
			states:  nil,
			wantIDs: "outline/outline-base/0.82.0/linux-amd64 outline/outline-base/0.82.0/linux-arm64 outline/outline/0.82.0/linux-amd64 outline/outline/0.82.0/linux-arm64",
			wantNeeds: map[string]string{
				"outline/outline/0.82.0/linux-arm64": "outline/outline-base/0.82.0/linux-amd64,outline/outline-base/0.82.0/linux-arm64",
			},
			wantStage: map[string]int{"outline/outline-base/0.82.0/linux-amd64": 0, "outline/outline/0.82.0/linux-amd64": 1},
		},
		{
			name:      "base complete: app builds alone, from the published base",
			states:    map[Key]target.State{{"outline-base", "0.82.0"}: complete()},
			wantIDs:   "outline/outline/0.82.0/linux-amd64 outline/outline/0.82.0/linux-arm64",
			wantNeeds: map[string]string{"outline/outline/0.82.0/linux-amd64": ""},
			wantStage: map[string]int{"outline/outline/0.82.0/linux-amd64": 0},
		},
		{
			name:      "base incomplete, app complete: only the base is repaired",
			states:    map[Key]target.State{{"outline-base", "0.82.0"}: complete("linux/amd64"), {"outline", "0.82.0"}: complete()},
			wantIDs:   "outline/outline-base/0.82.0/linux-arm64",
			wantStage: map[string]int{"outline/outline-base/0.82.0/linux-arm64": 0},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := Make([]App{{App: ol, Discovery: versions("0.82.0", "0.82.0"), States: tt.states}}, runner)
			if got := ids(p.Jobs); got != tt.wantIDs {
				t.Fatalf("jobs:\n got %s\nwant %s", got, tt.wantIDs)
			}
			for _, j := range p.Jobs {
				if w, ok := tt.wantNeeds[j.ID]; ok && strings.Join(j.Needs, ",") != w {
					t.Errorf("%s needs %v, want %s", j.ID, j.Needs, w)
				}
				if w, ok := tt.wantStage[j.ID]; ok && j.Stage != w {
					t.Errorf("%s stage %d, want %d", j.ID, j.Stage, w)
				}
			}
		})
	}
}

func TestMakeAppError(t *testing.T) {
	cfg := load(t)
	p := Make([]App{
		{App: cfg.App("mattermost"), Err: errors.New("github mattermost/mattermost: releases page 1: 502 Bad Gateway")},
		{App: cfg.App("outline"), Discovery: versions("0.82.0", "0.82.0")},
	}, runner)
	if !p.Failed() || p.Apps[0].Error == "" {
		t.Fatal("failed app not reported")
	}
	if len(p.Jobs) != 4 || p.Jobs[0].App != "outline" {
		t.Errorf("the other app was not planned: %s", ids(p.Jobs))
	}
}

func TestMakeDeterministic(t *testing.T) {
	cfg := load(t)
	in := []App{
		{App: cfg.App("outline"), Discovery: versions("0.82.0", "0.82.0", "0.81.1")},
		{App: cfg.App("mattermost"), Discovery: versions("10.3.1", "10.3.1", "10.2.0")},
	}
	first, _ := json.Marshal(Make(in, runner))
	for range 20 {
		again, _ := json.Marshal(Make(in, runner))
		if string(again) != string(first) {
			t.Fatal("plan output differs between identical runs")
		}
	}
}

func TestMatrix(t *testing.T) {
	cfg := load(t)
	p := Make([]App{{App: cfg.App("outline"), Discovery: versions("0.82.0", "0.82.0")}}, runner)
	if p.Stages() != 2 {
		t.Errorf("stages = %d", p.Stages())
	}
	b, err := json.Marshal(p.Matrix(-1))
	if err != nil {
		t.Fatal(err)
	}
	var m struct {
		Include []map[string]any `json:"include"`
	}
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	if len(m.Include) != 4 {
		t.Fatalf("include has %d rows", len(m.Include))
	}
	for _, k := range []string{"job", "app", "component", "version", "platform", "runner", "latest"} {
		if _, ok := m.Include[0][k]; !ok {
			t.Errorf("matrix row lacks the %q key: %v", k, m.Include[0])
		}
	}
	if n := len(p.Matrix(1).Include); n != 2 {
		t.Errorf("stage 1 has %d jobs, want 2", n)
	}
	empty, _ := json.Marshal(Plan{}.Matrix(-1))
	if string(empty) != `{"include":[]}` {
		t.Errorf("empty matrix = %s", empty)
	}
}
