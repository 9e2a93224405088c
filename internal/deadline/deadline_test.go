package deadline

import (
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// TestLimits: each limit fails its request with an error naming the host and the limit.
func TestLimits(t *testing.T) {
	release := make(chan struct{})
	defer close(release)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/silent":
			select {
			case <-release:
			case <-r.Context().Done():
			}
		case "/trickle", "/blobs/trickle":
			w.WriteHeader(http.StatusOK)
			for range 50 {
				_, _ = w.Write([]byte("x"))
				w.(http.Flusher).Flush()
				select {
				case <-time.After(50 * time.Millisecond):
				case <-r.Context().Done():
					return
				}
			}
		case "/blobs/stall":
			w.WriteHeader(http.StatusOK)
			w.(http.Flusher).Flush()
			select {
			case <-release:
			case <-r.Context().Done():
			}
		}
	}))
	defer srv.Close()
	host := strings.TrimPrefix(srv.URL, "http://")
	rt := &Transport{
		Noun:      "registry",
		Header:    Limit{After: 200 * time.Millisecond, What: "no answer"},
		Request:   Limit{After: 600 * time.Millisecond, What: "request not done"},
		Streaming: func(r *http.Request) bool { return strings.HasPrefix(r.URL.Path, "/blobs/") },
		Idle:      Limit{After: 200 * time.Millisecond, What: "no byte moved"},
	}
	tests := []struct{ path, want string }{
		{"/silent", "registry " + host + ": no answer within 200ms"},
		{"/trickle", "registry " + host + ": request not done within 600ms"},
		{"/blobs/trickle", ""}, // bytes keep moving: no limit applies
		{"/blobs/stall", "registry " + host + ": no byte moved within 200ms"},
	}
	for _, tt := range tests {
		err := get(rt, srv.URL+tt.path)
		var de *Error
		switch {
		case tt.want == "" && err != nil:
			t.Errorf("%s: %v", tt.path, err)
		case tt.want != "" && (!errors.As(err, &de) || !strings.Contains(err.Error(), tt.want)):
			t.Errorf("%s: err = %v, want %q", tt.path, err, tt.want)
		}
	}
}

func get(rt http.RoundTripper, url string) error {
	resp, err := (&http.Client{Transport: rt}).Get(url)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	_, err = io.Copy(io.Discard, resp.Body)
	return err
}
