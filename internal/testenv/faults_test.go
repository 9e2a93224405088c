package testenv

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// faultClient does not reuse connections, so a cut connection is never retried behind the
// test's back and every request reaches the proxy exactly once.
func faultClient() *http.Client {
	return &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 10 * time.Second}
}

// upload is what echoBackend read of one request body.
type upload struct {
	n   int64
	err error
}

// echoBackend answers every request with 4096 bytes (Content-Length set; /chunked: without
// it), after reading the request body, which it reports on uploads (while there is room).
type echoBackend struct {
	hits    atomic.Int64
	uploads chan upload
	url     string
}

func newEchoBackend(t *testing.T) *echoBackend {
	b := &echoBackend{uploads: make(chan upload, 1000)}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b.hits.Add(1)
		n, err := io.Copy(io.Discard, r.Body)
		if n > 0 || err != nil {
			select {
			case b.uploads <- upload{n, err}:
			default: // nobody is asking
			}
		}
		body := bytes.Repeat([]byte("x"), 4096)
		if r.URL.Path == "/chunked" {
			w.WriteHeader(http.StatusOK)
			w.Write(body[:2048])
			http.NewResponseController(w).Flush()
			w.Write(body[2048:])
			return
		}
		w.Header().Set("Content-Length", "4096")
		w.Write(body)
	}))
	t.Cleanup(srv.Close)
	b.url = srv.URL
	return b
}

func (b *echoBackend) upload(t *testing.T) upload {
	t.Helper()
	select {
	case u := <-b.uploads:
		return u
	case <-time.After(5 * time.Second):
		t.Fatal("backend saw no upload")
		return upload{}
	}
}

func do(t *testing.T, ctx context.Context, method, u string, body io.Reader) (*http.Response, []byte, error) {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, method, u, body)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := faultClient().Do(req)
	if err != nil {
		return nil, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp, b, err
}

func isCut(err error) bool {
	return errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) || errors.Is(err, syscall.ECONNRESET)
}

func TestFaultProxyKinds(t *testing.T) {
	t.Run("server error", func(t *testing.T) {
		b := newEchoBackend(t)
		p := NewFaultProxy(t, b.url, Faults{ServerError: 1})
		seen := map[int]bool{}
		for range 30 {
			resp, _, err := do(t, t.Context(), "GET", "http://"+p.Addr+"/v2/", nil)
			if err != nil {
				t.Fatal(err)
			}
			if c := resp.StatusCode; c != 500 && c != 502 && c != 503 {
				t.Fatalf("status %d, want 500, 502 or 503", c)
			}
			seen[resp.StatusCode] = true
		}
		if len(seen) != 3 {
			t.Errorf("30 server errors gave only %v", seen)
		}
		if b.hits.Load() != 0 {
			t.Errorf("backend got %d requests, want none", b.hits.Load())
		}
		c := p.Counts()
		if c[Fault500]+c[Fault502]+c[Fault503] != 30 || p.Injected.Load() != 30 || p.Requests.Load() != 30 {
			t.Errorf("counts %v, injected %d, requests %d", c, p.Injected.Load(), p.Requests.Load())
		}
	})

	for _, tc := range []struct {
		after time.Duration
		want  string
	}{{0, "1"}, {2500 * time.Millisecond, "3"}} {
		t.Run("429 after "+tc.want, func(t *testing.T) {
			b := newEchoBackend(t)
			p := NewFaultProxy(t, b.url, Faults{TooMany: 1, RetryAfter: tc.after})
			resp, _, err := do(t, t.Context(), "GET", "http://"+p.Addr+"/v2/", nil)
			if err != nil {
				t.Fatal(err)
			}
			if resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") != tc.want {
				t.Errorf("got %s Retry-After %q, want 429 Retry-After %q", resp.Status, resp.Header.Get("Retry-After"), tc.want)
			}
			if b.hits.Load() != 0 || p.Counts()[Fault429] != 1 {
				t.Errorf("backend hits %d, counts %v", b.hits.Load(), p.Counts())
			}
		})
	}

	for _, path := range []string{"/blob", "/chunked"} {
		t.Run("reset GET "+path, func(t *testing.T) {
			b := newEchoBackend(t)
			p := NewFaultProxy(t, b.url, Faults{Reset: 1})
			resp, body, err := do(t, t.Context(), "GET", "http://"+p.Addr+path, nil)
			if resp == nil {
				t.Fatalf("no response: %v (want headers, then a cut body)", err)
			}
			if resp.StatusCode != http.StatusOK || !isCut(err) {
				t.Fatalf("got %s, %d bytes, error %v; want 200 and a cut body", resp.Status, len(body), err)
			}
			if len(body) == 0 || len(body) >= 4096 {
				t.Errorf("read %d bytes before the cut, want some but not all of 4096", len(body))
			}
			if b.hits.Load() != 1 || p.Counts()[FaultReset] != 1 {
				t.Errorf("backend hits %d, counts %v", b.hits.Load(), p.Counts())
			}
		})
	}

	t.Run("reset HEAD", func(t *testing.T) {
		b := newEchoBackend(t)
		p := NewFaultProxy(t, b.url, Faults{Reset: 1})
		_, _, err := do(t, t.Context(), "HEAD", "http://"+p.Addr+"/blob", nil)
		if !isCut(err) {
			t.Fatalf("HEAD: %v, want a cut connection", err)
		}
		if b.hits.Load() != 1 {
			t.Errorf("backend hits %d, want 1", b.hits.Load())
		}
	})

	t.Run("stall", func(t *testing.T) {
		b := newEchoBackend(t)
		const stall = 300 * time.Millisecond
		p := NewFaultProxy(t, b.url, Faults{Stall: 1, StallFor: stall})
		start := time.Now()
		resp, body, err := do(t, t.Context(), "GET", "http://"+p.Addr+"/blob", nil)
		elapsed := time.Since(start)
		if err != nil || resp.StatusCode != http.StatusOK || len(body) != 4096 {
			t.Fatalf("stalled GET: %v %v, %d bytes", resp, err, len(body))
		}
		if elapsed < stall {
			t.Errorf("answered after %s, want at least %s", elapsed, stall)
		}
		if b.hits.Load() != 1 || p.Counts()[FaultStall] != 1 {
			t.Errorf("backend hits %d, counts %v", b.hits.Load(), p.Counts())
		}
	})

	t.Run("stall until the client gives up", func(t *testing.T) {
		b := newEchoBackend(t)
		p := NewFaultProxy(t, b.url, Faults{Stall: 1, StallFor: time.Minute})
		ctx, cancel := context.WithTimeout(t.Context(), 200*time.Millisecond)
		defer cancel()
		start := time.Now()
		_, _, err := do(t, ctx, "GET", "http://"+p.Addr+"/blob", nil)
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("GET: %v, want the client's deadline", err)
		}
		if elapsed := time.Since(start); elapsed > 5*time.Second {
			t.Errorf("gave up after %s", elapsed)
		}
		// The proxy's Close at test end must not wait the minute out either.
	})

	for _, known := range []bool{true, false} {
		t.Run(fmt.Sprintf("truncate upload (length known: %v)", known), func(t *testing.T) {
			b := newEchoBackend(t)
			p := NewFaultProxy(t, b.url, Faults{TruncateUpload: 1})
			data := bytes.Repeat([]byte("u"), 1<<16)
			var body io.Reader = bytes.NewReader(data)
			if !known {
				body = io.NopCloser(body) // hides the length: sent chunked
			}
			resp, _, err := do(t, t.Context(), "PUT", "http://"+p.Addr+"/upload", body)
			if err == nil && resp.StatusCode < 500 {
				t.Errorf("truncated PUT answered %s, want a 5xx or an error", resp.Status)
			}
			if u := b.upload(t); u.err == nil || u.n >= int64(len(data)) {
				t.Errorf("backend read %d of %d bytes, error %v; want a short, failed upload", u.n, len(data), u.err)
			}
			// Requests without a body are not eligible.
			resp, _, err = do(t, t.Context(), "GET", "http://"+p.Addr+"/blob", nil)
			if err != nil || resp.StatusCode != http.StatusOK {
				t.Errorf("GET with TruncateUpload: %v %v", resp, err)
			}
			if c := p.Counts(); c[FaultTruncate] != 1 || len(c) != 1 {
				t.Errorf("counts %v, want one truncate", c)
			}
		})
	}

	t.Run("only", func(t *testing.T) {
		b := newEchoBackend(t)
		p := NewFaultProxy(t, b.url, Faults{ServerError: 1, Only: func(r *http.Request) bool { return r.Method == http.MethodPost }})
		if resp, _, err := do(t, t.Context(), "GET", "http://"+p.Addr+"/blob", nil); err != nil || resp.StatusCode != http.StatusOK {
			t.Errorf("GET, not eligible: %v %v", resp, err)
		}
		if resp, _, err := do(t, t.Context(), "POST", "http://"+p.Addr+"/blob", nil); err != nil || resp.StatusCode < 500 {
			t.Errorf("POST, eligible: %v %v", resp, err)
		}
		if p.Requests.Load() != 2 || p.Injected.Load() != 1 {
			t.Errorf("requests %d, injected %d; want 2, 1", p.Requests.Load(), p.Injected.Load())
		}
	})
}

// TestFaultProxyHeaders checks that the Host header passes through and that Location and
// Link headers naming the backend are pointed at the proxy.
func TestFaultProxyHeaders(t *testing.T) {
	var backendHost string
	var gotHost atomic.Value
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		gotHost.Store(r.Host)
		switch r.URL.Path {
		case "/absolute":
			w.Header().Set("Location", "http://"+backendHost+"/v2/app/blobs/uploads/u1?_state=abc%3D")
		case "/relative":
			w.Header().Set("Location", "/v2/app/blobs/uploads/u2?_state=x")
		case "/foreign":
			// Same host, another port whose number starts with the backend's: not the backend.
			w.Header().Set("Location", "http://"+backendHost+"1/elsewhere")
		case "/link":
			w.Header().Add("Link", `<http://`+backendHost+`/v2/_catalog?last=a&n=1>; rel="next"`)
			w.Header().Add("Link", `</v2/_catalog?last=b&n=1>; rel="next", <http://example.com/x>; rel="other"`)
		}
		w.WriteHeader(http.StatusAccepted)
	}))
	t.Cleanup(srv.Close)
	backendHost = srv.Listener.Addr().String()
	p := NewFaultProxy(t, backendHost, Faults{})

	for _, tc := range []struct {
		path, header string
		want         []string
	}{
		{"/absolute", "Location", []string{"http://" + p.Addr + "/v2/app/blobs/uploads/u1?_state=abc%3D"}},
		{"/relative", "Location", []string{"/v2/app/blobs/uploads/u2?_state=x"}},
		{"/foreign", "Location", []string{"http://" + backendHost + "1/elsewhere"}},
		{"/link", "Link", []string{
			`<http://` + p.Addr + `/v2/_catalog?last=a&n=1>; rel="next"`,
			`</v2/_catalog?last=b&n=1>; rel="next", <http://example.com/x>; rel="other"`,
		}},
	} {
		resp, _, err := do(t, t.Context(), "GET", "http://"+p.Addr+tc.path, nil)
		if err != nil {
			t.Fatal(err)
		}
		if got := resp.Header.Values(tc.header); !slices.Equal(got, tc.want) {
			t.Errorf("%s: %s %q, want %q", tc.path, tc.header, got, tc.want)
		}
		if h := gotHost.Load(); h != p.Addr {
			t.Errorf("%s: backend saw Host %q, want the client's %q", tc.path, h, p.Addr)
		}
	}
}

// TestFaultProxyTransparent pushes and pulls an image through a proxy without faults.
func TestFaultProxyTransparent(t *testing.T) {
	host := Registry(t)
	p := NewFaultProxy(t, host, Faults{Seed: 1})
	ref, err := name.ParseReference(p.Addr + "/fault/app:1")
	if err != nil {
		t.Fatal(err)
	}
	img := Image(t, "linux/amd64")
	if err := remote.Write(ref, img, remote.WithContext(t.Context())); err != nil {
		t.Fatalf("push through the proxy: %v", err)
	}
	got, err := remote.Image(ref, remote.WithContext(t.Context()))
	if err != nil {
		t.Fatal(err)
	}
	want, _ := img.Digest()
	if d, err := got.Digest(); err != nil || d != want {
		t.Errorf("pulled %s (%v), pushed %s", d, err, want)
	}
	layers, err := got.Layers()
	if err != nil || len(layers) != 1 {
		t.Fatalf("layers: %v %v", layers, err)
	}
	rc, err := layers[0].Compressed()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	if _, err := io.Copy(io.Discard, rc); err != nil { // verifies the digest as it reads
		t.Fatalf("layer through the proxy: %v", err)
	}

	// The uploads followed the registry's Location headers, and so came through the proxy.
	var uploads int
	for _, e := range p.Events() {
		if (e.Method == http.MethodPatch || e.Method == http.MethodPut) && strings.HasPrefix(e.Path, "/v2/fault/app/blobs/uploads/") {
			uploads++
		}
	}
	if uploads < 2 { // the layer and the config
		t.Errorf("proxy saw %d blob upload PATCH/PUTs, want at least 2; events:\n%v", uploads, p.Events())
	}
	if p.Injected.Load() != 0 {
		t.Errorf("injected %d faults at rate 0", p.Injected.Load())
	}
	resp, _, err := do(t, t.Context(), "POST", "http://"+p.Addr+"/v2/fault/app/blobs/uploads/", nil)
	if err != nil {
		t.Fatal(err)
	}
	if loc, err := url.Parse(resp.Header.Get("Location")); err != nil || (loc.Host != "" && loc.Host != p.Addr) {
		t.Errorf("upload Location %q does not point at the proxy %s", resp.Header.Get("Location"), p.Addr)
	}
}

// TestFaultProxyTruncateUploadRegistry checks that a truncated blob upload leaves no blob.
func TestFaultProxyTruncateUploadRegistry(t *testing.T) {
	host := Registry(t)
	p := NewFaultProxy(t, host, Faults{TruncateUpload: 1})
	for _, method := range []string{http.MethodPut, http.MethodPatch} {
		t.Run(method, func(t *testing.T) {
			data := make([]byte, 1<<16)
			rand.Read(data)
			digest := fmt.Sprintf("sha256:%x", sha256.Sum256(data))
			repo := "http://" + p.Addr + "/v2/fault/" + strings.ToLower(method)
			resp, _, err := do(t, t.Context(), "POST", repo+"/blobs/uploads/", nil) // no body: not eligible
			if err != nil || resp.StatusCode != http.StatusAccepted {
				t.Fatalf("start upload: %v %v", resp, err)
			}
			loc, err := resp.Request.URL.Parse(resp.Header.Get("Location"))
			if err != nil || loc.Host != p.Addr {
				t.Fatalf("upload Location %q (%v) does not point at the proxy", resp.Header.Get("Location"), err)
			}
			q := loc.Query()
			if method == http.MethodPut { // monolithic: the whole blob in the closing PUT
				q.Set("digest", digest)
				loc.RawQuery = q.Encode()
				resp, _, err = do(t, t.Context(), "PUT", loc.String(), bytes.NewReader(data))
			} else { // chunked: PATCH the blob, then close it with an empty PUT
				resp, _, err = do(t, t.Context(), "PATCH", loc.String(), bytes.NewReader(data))
				if err == nil && resp.StatusCode == http.StatusAccepted {
					next, _ := resp.Request.URL.Parse(resp.Header.Get("Location"))
					q = next.Query()
					q.Set("digest", digest)
					next.RawQuery = q.Encode()
					resp, _, err = do(t, t.Context(), "PUT", next.String(), nil)
				}
			}
			if err == nil && resp.StatusCode == http.StatusCreated {
				t.Errorf("truncated %s upload was accepted", method)
			}
			resp, _, err = do(t, t.Context(), "HEAD", "http://"+host+"/v2/fault/"+strings.ToLower(method)+"/blobs/"+digest, nil)
			if err != nil || resp.StatusCode != http.StatusNotFound {
				t.Errorf("HEAD of the truncated blob: %v %v, want 404", resp, err)
			}
		})
	}
	if p.Counts()[FaultTruncate] != 2 {
		t.Errorf("counts %v, want 2 truncates", p.Counts())
	}
}

// TestFaultProxySeed checks that a seed replays the same faults, and another seed does not.
func TestFaultProxySeed(t *testing.T) {
	b := newEchoBackend(t)
	trial := func(seed uint64) (events []Event, seen []string, counts map[string]int64) {
		p := NewFaultProxy(t, b.url, Faults{
			Seed: seed, ServerError: 0.3, TooMany: 0.3, Reset: 0.3, Stall: 0.3, TruncateUpload: 0.3,
			StallFor: 5 * time.Millisecond,
		})
		for i := range 200 {
			resp, _, err := do(t, t.Context(), "POST", fmt.Sprintf("http://%s/r/%d", p.Addr, i), strings.NewReader("some bytes to upload"))
			switch {
			case resp == nil:
				seen = append(seen, "no response")
			case err != nil:
				seen = append(seen, resp.Status+", cut")
			default:
				seen = append(seen, resp.Status)
			}
		}
		return p.Events(), seen, p.Counts()
	}
	events, seen, counts := trial(42)
	if len(events) != 200 {
		t.Fatalf("%d events, want 200", len(events))
	}
	for _, kind := range []string{Fault500, Fault502, Fault503, Fault429, FaultReset, FaultStall, FaultTruncate} {
		if counts[kind] == 0 {
			t.Errorf("no %s in 200 requests at 30%%: %v", kind, counts)
		}
	}
	events2, seen2, _ := trial(42)
	if !slices.Equal(events, events2) {
		t.Errorf("seed 42 twice gave different faults:\n%v\n%v", events, events2)
	}
	if !slices.Equal(seen, seen2) {
		t.Errorf("seed 42 twice gave the client different answers:\n%q\n%q", seen, seen2)
	}
	if events3, _, _ := trial(43); slices.Equal(events, events3) {
		t.Errorf("seeds 42 and 43 gave the same faults")
	}
}

func TestFaultProxySetFaults(t *testing.T) {
	b := newEchoBackend(t)
	p := NewFaultProxy(t, b.url, Faults{ServerError: 1})
	status := func() (int, string) {
		t.Helper()
		resp, _, err := do(t, t.Context(), "GET", "http://"+p.Addr+"/blob", nil)
		if err != nil {
			t.Fatal(err)
		}
		return resp.StatusCode, resp.Header.Get("Retry-After")
	}
	if code, _ := status(); code < 500 {
		t.Errorf("ServerError 1: %d", code)
	}
	p.SetFaults(Faults{})
	if code, _ := status(); code != http.StatusOK {
		t.Errorf("after SetFaults(Faults{}): %d, want 200", code)
	}
	p.SetFaults(Faults{TooMany: 1, RetryAfter: 2 * time.Second})
	if code, after := status(); code != http.StatusTooManyRequests || after != "2" {
		t.Errorf("after SetFaults(TooMany): %d Retry-After %q, want 429 and 2", code, after)
	}
	if p.Requests.Load() != 3 || p.Injected.Load() != 2 || p.Counts()[Fault429] != 1 {
		t.Errorf("requests %d, injected %d, counts %v", p.Requests.Load(), p.Injected.Load(), p.Counts())
	}
}
