package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os/exec"
	"testing"
	"time"

	"github.com/archmirror/archmirror/internal/run"
	"github.com/archmirror/archmirror/internal/testenv"
)

// TestConcurrentSyncProcesses runs two `archmirror sync` processes against one target at once
// — two replicas started together, and a cron overlap where the second starts while the first
// builds — with real BuildKit and docker-registry. Both must succeed; between them every job is
// built at most once (an app is worked on by the run holding its lease, the other leaves it
// alone or finds it done); and the registry ends exactly as after one uninterrupted sync: the
// same tags at the same digests.
func TestConcurrentSyncProcesses(t *testing.T) {
	if testing.Short() {
		t.Skip("builds images")
	}
	w := testenv.NewWorld(t)
	apps := []string{"--app", "hello", "--app", "twostep"}
	repos := []string{"hello", "twostep-base", "twostep"}

	ref := w.Registry + "/reference"
	if out, code := runProc(t, append([]string{"sync", "-c", w.ConfigPath, "--target", ref, "--parallel", "4"}, apps...)...); code != 0 {
		t.Fatalf("reference sync: exit %d\n%s", code, out)
	}
	want := map[string]map[string]string{}
	for _, repo := range repos {
		want[repo] = tagsOf(t, ref+"/"+repo)
	}

	for _, c := range []struct {
		name    string
		stagger time.Duration
	}{{"replicas", 0}, {"cron-overlap", 700 * time.Millisecond}} {
		t.Run(c.name, func(t *testing.T) {
			ns := w.Registry + "/" + c.name
			outs := make([]bytes.Buffer, 2)
			errs := make([]bytes.Buffer, 2)
			cmds := make([]*exec.Cmd, 2)
			done := make(chan int, 2)
			for i := range 2 {
				if i == 1 {
					time.Sleep(c.stagger)
				}
				cmds[i] = archmirrorProc(append([]string{"sync", "-c", w.ConfigPath, "--target", ns, "--parallel", "4", "--json"}, apps...)...)
				cmds[i].Stdout, cmds[i].Stderr = &outs[i], &errs[i]
				if err := cmds[i].Start(); err != nil {
					t.Fatal(err)
				}
				go func() { _ = cmds[i].Wait(); done <- i }()
			}
			<-done
			<-done
			built := map[string]int{}
			held := 0
			for i := range 2 {
				if code := cmds[i].ProcessState.ExitCode(); code != 0 {
					t.Fatalf("sync %d: exit %d\n%s\n%s", i, code, outs[i].String(), errs[i].String())
				}
				var rep run.Report
				if err := json.Unmarshal(outs[i].Bytes(), &rep); err != nil {
					t.Fatalf("sync %d: %v\n%s", i, err, outs[i].String())
				}
				for _, j := range rep.Jobs {
					if j.Builder != "recorded" {
						built[j.ID]++
					}
				}
				held += len(rep.Held)
				t.Logf("sync %d: %d jobs, held apps %v", i, len(rep.Jobs), rep.Held)
			}
			for id, n := range built {
				if n > 1 {
					t.Errorf("%s was built by both runs", id)
				}
			}
			if held == 0 {
				t.Error("neither run left an app to the other: they did not overlap, the test proves nothing")
			}
			for _, repo := range repos {
				got := tagsOf(t, ns+"/"+repo)
				if fmt.Sprint(got) != fmt.Sprint(want[repo]) {
					t.Errorf("%s: tags %v, one uninterrupted sync gives %v", repo, got, want[repo])
				}
			}
		})
	}
}
