package bench

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/archmirror/archmirror/internal/fakeupstream"
	"github.com/archmirror/archmirror/internal/fixture"
	"github.com/archmirror/archmirror/internal/serve"
)

// Shape of the full history BenchmarkServeListMemory serves: the default retention, each run with
// a large job list whose failed jobs carry long log excerpts (about 100 KB of JSON per run).
const (
	memRuns       = 500
	memJobs       = 60 // per run
	memFailedJobs = 20 // per run, each with an excerpt
	memExcerpt    = 4 << 10
	memClients    = 16
	memPeakBudget = 150 << 20 // bytes of peak RSS the serve process may reach
)

// BenchmarkServeListMemory measures the peak RSS (VmHWM of /proc/PID/status) of a real
// `archmirror serve` process, built from this tree, while 16 concurrent clients each list its
// whole history (500 runs, ~100 KB each) through GET /api/v1/runs?limit=500, following the
// "next" cursor of every page. One iteration is one such round of 16 listings. It needs no
// registry or BuildKit: the target is an OCI layout, upstream the fake, nothing is built.
func BenchmarkServeListMemory(b *testing.B) {
	if _, err := os.Stat("/proc/self/status"); err != nil {
		b.Skip("needs /proc (Linux)")
	}
	dir := b.TempDir()
	bin := filepath.Join(dir, "archmirror")
	if out, err := exec.Command("go", "build", "-o", bin, "github.com/archmirror/archmirror/cmd/archmirror").CombinedOutput(); err != nil {
		b.Fatalf("go build: %v\n%s", err, out)
	}
	up := httptest.NewServer(fakeupstream.New(fixture.Fixture()))
	defer up.Close()
	cfg := fixture.Config(fixture.Params{Upstream: up.URL, Registry: "oci:" + filepath.Join(dir, "mirror"), CacheDir: filepath.Join(dir, "cache")})
	cfgPath := filepath.Join(dir, "mirror.yaml")
	if err := os.WriteFile(cfgPath, append(cfg, []byte("schedule: '0 0 1 1 *'\n")...), 0o644); err != nil {
		b.Fatal(err)
	}
	histPath := filepath.Join(dir, "history.db")
	fillHistory(b, histPath)

	addr := freeLoopback(b)
	cmd := exec.Command(bin, "serve", "-c", cfgPath, "--listen", addr, "--history", histPath)
	var logs strings.Builder
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	defer func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		if b.Failed() {
			b.Logf("serve logs:\n%s", logs.String())
		}
	}()
	base := "http://" + addr
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: memClients}, Timeout: 5 * time.Minute}
	waitReady(b, client, base)
	idle := vmHWM(b, cmd.Process.Pid)
	if st, err := os.ReadFile("/proc/" + strconv.Itoa(cmd.Process.Pid) + "/status"); err == nil {
		for _, l := range strings.Split(string(st), "\n") {
			if strings.HasPrefix(l, "Rss") {
				b.Logf("idle %s", strings.Join(strings.Fields(l), " "))
			}
		}
	}

	for b.Loop() {
		var wg sync.WaitGroup
		errs := make(chan error, memClients)
		for range memClients {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if n, err := listAll(client, base); err != nil {
					errs <- err
				} else if n != memRuns {
					errs <- fmt.Errorf("listed %d runs, want %d", n, memRuns)
				}
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			b.Fatal(err)
		}
	}
	peak := vmHWM(b, cmd.Process.Pid)
	b.ReportMetric(float64(idle)/(1<<20), "idle-peak-RSS-MB")
	b.ReportMetric(float64(peak)/(1<<20), "peak-RSS-MB")
	if fi, err := os.Stat(histPath); err == nil {
		b.Logf("history file: %.1f MB", float64(fi.Size())/(1<<20))
	}
	if peak > memPeakBudget {
		b.Errorf("peak RSS %.0f MB, over the budget of %d MB", float64(peak)/(1<<20), memPeakBudget>>20)
	}
}

// fillHistory writes memRuns finished runs to a history file as serve keeps them.
func fillHistory(b *testing.B, path string) {
	b.Helper()
	h, err := serve.OpenHistory(path, memRuns)
	if err != nil {
		b.Fatal(err)
	}
	defer h.Close()
	excerpt := strings.Repeat("#12 0.731 some build step printed this line of output\n", memExcerpt/56)
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for i := range memRuns {
		queued := t0.Add(time.Duration(i) * time.Hour)
		started, finished := queued.Add(time.Second), queued.Add(20*time.Minute)
		r := serve.Run{RunSummary: serve.RunSummary{ID: queued.Format("20060102T150405.000Z") + fmt.Sprintf("-%08x", i), Trigger: serve.TriggerSchedule,
			Status: serve.Failed, Queued: queued, Started: &started, Finished: &finished,
			Error: "failed: failed hello-app-1.2.3-linux-arm64 and 19 more"}}
		for j := range memJobs {
			job := serve.Job{ID: fmt.Sprintf("app%d-main-1.%d.0-linux-arm64", j%5, j), App: fmt.Sprintf("app%d", j%5), Component: "main",
				Version: fmt.Sprintf("1.%d.0", j), Platform: "linux/arm64", Status: "built", Builder: "tcp://buildkitd-arm64:1234",
				Digest: "sha256:" + strings.Repeat("ab", 32), Seconds: 93.5}
			if j < memFailedJobs {
				job.Status, job.Digest, job.Error, job.LogExcerpt = "failed", "", "build: exit code 2", excerpt
				r.Summary.Failed++
			} else {
				r.Summary.Built++
			}
			r.Jobs = append(r.Jobs, job)
			r.Units = append(r.Units, serve.Unit{App: job.App, Component: job.Component, Version: job.Version, Status: "published",
				Digest: "sha256:" + strings.Repeat("cd", 32)})
		}
		if err := h.Put(r); err != nil {
			b.Fatal(err)
		}
	}
}

// listAll lists every run of the history from base, page by page; it returns how many it read.
func listAll(client *http.Client, base string) (int, error) {
	n, before := 0, ""
	for {
		u := base + "/api/v1/runs?limit=500"
		if before != "" {
			u += "&before=" + url.QueryEscape(before)
		}
		resp, err := client.Get(u)
		if err != nil {
			return n, err
		}
		var page struct {
			Runs []struct {
				ID string `json:"id"`
			} `json:"runs"`
			Next string `json:"next"`
		}
		err = json.NewDecoder(resp.Body).Decode(&page)
		resp.Body.Close()
		if err != nil || resp.StatusCode != http.StatusOK {
			return n, fmt.Errorf("GET %s: %d %v", u, resp.StatusCode, err)
		}
		n += len(page.Runs)
		if page.Next == "" {
			return n, nil
		}
		before = page.Next
	}
}

func waitReady(b *testing.B, client *http.Client, base string) {
	b.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	for ctx.Err() == nil {
		if resp, err := client.Get(base + "/readyz"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	b.Fatal("serve did not become ready within 60s")
}

func freeLoopback(b *testing.B) string {
	b.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// vmHWM is the peak resident set size of process pid so far, in bytes.
func vmHWM(b *testing.B, pid int) int64 {
	b.Helper()
	f, err := os.Open("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmHWM:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			if err != nil {
				b.Fatalf("VmHWM %q: %v", v, err)
			}
			return kb << 10
		}
	}
	b.Fatal("no VmHWM in /proc/" + strconv.Itoa(pid) + "/status")
	return 0
}
