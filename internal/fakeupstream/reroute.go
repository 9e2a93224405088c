package fakeupstream

import (
	"fmt"
	"net/http"
	"net/url"
)

// Reroute returns a RoundTripper that sends every request to base (a fake's URL, e.g. an
// httptest server's) whatever scheme and host it names, keeping the path, the query and the
// Host header. It is for code that builds its own https://host URLs, such as require: gates
// naming framagit.org. next is the transport that does the sending (nil: http.DefaultTransport).
func Reroute(base string, next http.RoundTripper) http.RoundTripper {
	if next == nil {
		next = http.DefaultTransport
	}
	u, err := url.Parse(base)
	return rerouter{base: u, err: err, next: next}
}

type rerouter struct {
	base *url.URL
	err  error
	next http.RoundTripper
}

func (t rerouter) RoundTrip(r *http.Request) (*http.Response, error) {
	if t.err != nil || t.base == nil || t.base.Host == "" {
		return nil, fmt.Errorf("fakeupstream: reroute: bad base URL")
	}
	r2 := r.Clone(r.Context())
	r2.URL.Scheme, r2.URL.Host = t.base.Scheme, t.base.Host
	if r2.Host == "" {
		r2.Host = r.URL.Host
	}
	return t.next.RoundTrip(r2)
}
