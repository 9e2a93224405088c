package report

import (
	"bytes"
	"strings"
	"testing"

	"github.com/archmirror/archmirror/internal/discover"
	"github.com/archmirror/archmirror/internal/plan"
)

func samplePlan() plan.Plan {
	return plan.Plan{
		Jobs: []plan.Job{{ID: "a/a/1.1.0/linux-arm64", Stage: 0}},
		Apps: []plan.AppReport{
			{Name: "a", Latest: "1.1.0", Versions: []plan.VersionReport{
				{Version: "1.1.0", Tag: "v1.1.0", Latest: true, Components: []plan.ComponentReport{
					{Component: "a", Status: plan.Incomplete, Present: []string{"linux/amd64"}, Missing: []string{"linux/arm64"}},
				}},
				{Version: "1.0.0", Tag: "v1.0.0", Components: []plan.ComponentReport{
					{Component: "a", Status: plan.Complete, Present: []string{"linux/amd64", "linux/arm64"}},
				}},
			}, Skipped: []discover.Skip{
				{Tag: "v9\x1b[31m", Reason: "not a valid OCI tag"},
				{Tag: "v2.0.0-rc1", Reason: "pre-release"},
				{Tag: "v0.9.0", Reason: "outside the window of 2"},
				{Tag: "v0.8.0", Reason: "outside the window of 2"},
			}},
			{Name: "b", Error: "discover b: github acme/b: releases page 1: 502 Bad Gateway"},
		},
	}
}

func TestPlanTable(t *testing.T) {
	var first bytes.Buffer
	if err := PlanTable(&first, samplePlan()); err != nil {
		t.Fatal(err)
	}
	out := first.String()
	for _, want := range []string{
		"1.1.0 (latest)", "incomplete  has linux/amd64; build linux/arm64", "complete    linux/amd64 linux/arm64",
		`outside the window of 2: "v0.9.0", "v0.8.0"`, `"v9\x1b[31m": not a valid OCI tag`,
		"ERROR       discover b: github acme/b", "error: b: discover b: github acme/b: releases page 1: 502 Bad Gateway",
		"1 jobs to build in 1 stage(s); 2 app(s), 1 failed",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("table lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "\x1b") {
		t.Error("an untrusted tag's escape sequence reached the terminal unquoted")
	}
	for range 10 {
		var again bytes.Buffer
		PlanTable(&again, samplePlan())
		if again.String() != out {
			t.Fatal("table output is not deterministic")
		}
	}
}
