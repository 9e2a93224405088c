package bench

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/archmirror/archmirror/internal/fixture"
	"github.com/archmirror/archmirror/internal/serve"
	"github.com/archmirror/archmirror/internal/testenv"
)

// BenchmarkServeLoad loads GET /api/v1/apps and GET /metrics of a running `serve` from 16
// concurrent loopback clients while it mirrors a new version of every fixture app (a real
// sync: discovery, 2 builds per new version under qemu for arm64, publish, attest off), and
// reports the latency percentiles of each endpoint and the requests that failed (must be 0).
// One iteration is one such sync with the load running through it.
func BenchmarkServeLoad(b *testing.B) {
	w := testenv.NewWorld(b)
	good, err := os.ReadFile(w.ConfigPath)
	if err != nil {
		b.Fatal(err)
	}
	if err := os.WriteFile(w.ConfigPath, append(good, []byte("schedule: '0 0 1 1 *'\n")...), 0o644); err != nil {
		b.Fatal(err)
	}
	const token = "bench-token"
	s, err := serve.New(serve.Options{ConfigPath: w.ConfigPath, Listen: "127.0.0.1:0", Token: token, Parallel: 4})
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			b.Error(err)
		}
	}()
	base := "http://" + s.Addr()
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}, Timeout: 10 * time.Second}

	// The first run mirrors everything; the measured ones each mirror one new hello version.
	trigger := func() string {
		req, _ := http.NewRequest("POST", base+"/api/v1/runs", strings.NewReader(`{"apps": ["hello"]}`))
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := client.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		defer resp.Body.Close()
		var r serve.Run
		if resp.StatusCode != http.StatusAccepted || json.NewDecoder(resp.Body).Decode(&r) != nil {
			b.Fatalf("POST: %d", resp.StatusCode)
		}
		return r.ID
	}
	wait := func(id string) serve.Run {
		for {
			resp, err := client.Get(base + "/api/v1/runs/" + id)
			if err != nil {
				b.Fatal(err)
			}
			var r serve.Run
			_ = json.NewDecoder(resp.Body).Decode(&r)
			resp.Body.Close()
			if r.Status != serve.Queued && r.Status != serve.Running {
				return r
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	if r := wait(trigger()); r.Status != serve.Succeeded {
		b.Fatalf("first run: %+v", r)
	}
	progs, err := fixture.Programs(context.Background())
	if err != nil {
		b.Fatal(err)
	}

	lat := map[string][]time.Duration{}
	var mu sync.Mutex
	var failed, total atomic.Int64
	var syncTime time.Duration
	n := 0
	for b.Loop() {
		n++
		release(b, w, progs, 100+n)
		stop := make(chan struct{})
		var wg sync.WaitGroup
		for c := range 16 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				path := []string{"/api/v1/apps", "/metrics"}[c%2]
				var mine []time.Duration
				for {
					select {
					case <-stop:
						mu.Lock()
						lat[path] = append(lat[path], mine...)
						mu.Unlock()
						return
					default:
					}
					t0 := time.Now()
					resp, err := client.Get(base + path)
					total.Add(1)
					if err != nil {
						failed.Add(1)
						continue
					}
					_, err = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					if err != nil || resp.StatusCode != 200 {
						failed.Add(1)
						continue
					}
					mine = append(mine, time.Since(t0))
				}
			}()
		}
		t0 := time.Now()
		r := wait(trigger())
		syncTime += time.Since(t0)
		close(stop)
		wg.Wait()
		if r.Status != serve.Succeeded || r.Summary.Built != 2 {
			b.Fatalf("run under load: %+v", r)
		}
	}
	for _, path := range []string{"/api/v1/apps", "/metrics"} {
		d := lat[path]
		slices.Sort(d)
		if len(d) == 0 {
			b.Fatalf("no successful requests to %s", path)
		}
		name := strings.Trim(strings.ReplaceAll(path, "/", "-"), "-")
		b.ReportMetric(float64(d[len(d)/2].Microseconds())/1000, name+"-p50-ms")
		b.ReportMetric(float64(d[len(d)*99/100].Microseconds())/1000, name+"-p99-ms")
		b.ReportMetric(float64(len(d))/syncTime.Seconds(), name+"-req/s")
	}
	b.ReportMetric(float64(failed.Load()), "failed-requests")
	b.ReportMetric(syncTime.Seconds()/float64(n), "sync-s/op")
	if failed.Load() != 0 {
		b.Errorf("%d of %d requests failed", failed.Load(), total.Load())
	}
	b.Logf("%d requests", total.Load())
}
