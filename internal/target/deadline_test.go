package target_test

import (
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/archmirror/archmirror/internal/config"
	"github.com/archmirror/archmirror/internal/target"
	"github.com/archmirror/archmirror/internal/testenv"
)

// silentListener accepts connections and never answers; it returns its host:port.
func silentListener(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		var conns []net.Conn
		defer func() {
			for _, c := range conns {
				c.Close()
			}
		}()
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			conns = append(conns, c) // held open, never read or written
		}
	}()
	return l.Addr().String()
}

// stall sends a response's headers and a few bytes of its body, then nothing until the
// client gives up.
func stall(w http.ResponseWriter, r *http.Request, contentType string) {
	w.Header().Set("Content-Type", contentType)
	w.Header().Set("Content-Length", "4096")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write([]byte("{"))
	w.(http.Flusher).Flush()
	<-r.Context().Done()
}

// A registry that takes the connection and never answers fails the inspection with its host
// named, within the configured header timeout, instead of blocking the run.
func TestTimeoutNoAnswer(t *testing.T) {
	host := silentListener(t)
	for _, insecure := range []bool{false, true} {
		tgt, err := target.New(config.Target{Registry: host + "/mirror", Insecure: insecure},
			target.WithTimeouts(300*time.Millisecond, time.Second), target.WithRetry(noRetry))
		if err != nil {
			t.Fatal(err)
		}
		_, err = tgt.Inspect(t.Context(), "app", "1.2.0")
		if want := "registry " + host + ": no answer within 300ms"; err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("insecure %v: err = %v, want it to say %q", insecure, err, want)
		}
	}
}

// The bounds hold with a transport of the caller's (serve passes one).
func TestTimeoutWithCustomTransport(t *testing.T) {
	host := silentListener(t)
	tgt, err := target.New(config.Target{Registry: host + "/mirror"},
		target.WithTransport(newCounter()), target.WithTimeouts(300*time.Millisecond, time.Second), target.WithRetry(noRetry))
	if err != nil {
		t.Fatal(err)
	}
	_, err = tgt.Inspect(t.Context(), "app", "1.2.0")
	if want := "registry " + host + ": no answer within 300ms"; err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("err = %v, want it to say %q", err, want)
	}
}

// A registry that sends a manifest's headers and then stalls its body: the request's overall
// bound ends it.
func TestTimeoutStalledManifest(t *testing.T) {
	host := serverHost(t, apiRoot(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodHead {
			w.Header().Set("Content-Type", "application/vnd.oci.image.index.v1+json")
			return // no digest: the target GETs the manifest by tag
		}
		stall(w, r, "application/vnd.oci.image.index.v1+json")
	}))
	tgt, err := target.New(config.Target{Registry: host + "/mirror"},
		target.WithTimeouts(300*time.Millisecond, 600*time.Millisecond), target.WithRetry(noRetry))
	if err != nil {
		t.Fatal(err)
	}
	_, err = tgt.Inspect(t.Context(), "app", "1.2.0")
	if want := "registry " + host + ": request not done within 600ms"; err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("err = %v, want it to say %q", err, want)
	}
}

// A blob's body is not bounded as a whole, only by the time no byte moved: a config that
// trickles in for longer than the request bound is read; one that stops fails.
func TestTimeoutBlobBody(t *testing.T) {
	h := registry.New(registry.Logger(nilLogger()))
	open := serverHost(t, h)
	img := testenv.Image(t, "linux/amd64")
	ref, err := name.NewTag(open + "/mirror/app:1.2.0")
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(ref, img); err != nil {
		t.Fatal(err)
	}
	cfg, err := img.ConfigName()
	if err != nil {
		t.Fatal(err)
	}
	configPath := "/v2/mirror/app/blobs/" + cfg.String()

	trickle := serverHost(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet || r.URL.Path != configPath {
			h.ServeHTTP(w, r)
			return
		}
		rec := &bodyRecorder{header: http.Header{}}
		h.ServeHTTP(rec, r)
		for k, v := range rec.header {
			w.Header()[k] = v
		}
		w.WriteHeader(rec.code)
		for i, b := range rec.body {
			_, _ = w.Write([]byte{b})
			w.(http.Flusher).Flush()
			if i < 8 {
				time.Sleep(100 * time.Millisecond) // 800ms in all, more than the request bound
			}
		}
	}))
	tgt, err := target.New(config.Target{Registry: trickle + "/mirror"},
		target.WithTimeouts(500*time.Millisecond, 400*time.Millisecond), target.WithRetry(noRetry))
	if err != nil {
		t.Fatal(err)
	}
	if st, err := tgt.Inspect(t.Context(), "app", "1.2.0"); err != nil || !st.Exists {
		t.Errorf("trickled config: %+v, %v", st, err)
	}

	stalled := serverHost(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet || r.URL.Path != configPath {
			h.ServeHTTP(w, r)
			return
		}
		stall(w, r, "application/octet-stream")
	}))
	tgt, err = target.New(config.Target{Registry: stalled + "/mirror"},
		target.WithTimeouts(300*time.Millisecond, 10*time.Second), target.WithRetry(noRetry))
	if err != nil {
		t.Fatal(err)
	}
	_, err = tgt.Inspect(t.Context(), "app", "1.2.0")
	if want := "registry " + stalled + ": no byte moved within 300ms"; err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("stalled config: err = %v, want it to say %q", err, want)
	}
}

// bodyRecorder keeps a handler's answer.
type bodyRecorder struct {
	header http.Header
	code   int
	body   []byte
}

func (r *bodyRecorder) Header() http.Header { return r.header }
func (r *bodyRecorder) WriteHeader(code int) {
	if r.code == 0 {
		r.code = code
	}
}

func (r *bodyRecorder) Write(b []byte) (int, error) {
	if r.code == 0 {
		r.code = http.StatusOK
	}
	r.body = append(r.body, b...)
	return len(b), nil
}
