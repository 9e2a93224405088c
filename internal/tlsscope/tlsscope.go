// Package tlsscope confines "insecure: true" to the host it was said of: a registry with a
// self-signed certificate is reached without verifying it, while its token realm, a blob
// redirect's storage host or any other host it sends the client to are still verified.
package tlsscope

import (
	"crypto/tls"
	"net"
	"net/http"
	"net/url"
	"strings"
)

// Insecure returns a RoundTripper that sends requests to host (host[:port], as a registry is
// named; no port means 443) over a clone of base with TLS verification off, and every other
// request over a clone of base that verifies as base does. base itself is not changed.
func Insecure(base *http.Transport, host string) http.RoundTripper {
	insecure := base.Clone()
	if insecure.TLSClientConfig == nil {
		insecure.TLSClientConfig = &tls.Config{}
	}
	insecure.TLSClientConfig.InsecureSkipVerify = true //nolint:gosec // the config asks for it, for this host only
	return &scoped{host: canonical(host, "443"), insecure: insecure, verified: base.Clone()}
}

type scoped struct {
	host               string // canonical host:port
	insecure, verified *http.Transport
}

func (s *scoped) RoundTrip(req *http.Request) (*http.Response, error) {
	if s.skips(req.URL) {
		return s.insecure.RoundTrip(req)
	}
	return s.verified.RoundTrip(req)
}

// skips reports whether a request to u goes unverified: u is on the insecure host and port.
func (s *scoped) skips(u *url.URL) bool { return canonical(u.Host, defaultPort(u.Scheme)) == s.host }

// CloseIdleConnections closes the idle connections of both transports.
func (s *scoped) CloseIdleConnections() {
	s.insecure.CloseIdleConnections()
	s.verified.CloseIdleConnections()
}

// canonical is host:port in lower case, with port def when host has none.
func canonical(host, def string) string {
	h, p, err := net.SplitHostPort(host)
	if err != nil { // no port
		h, p = strings.Trim(host, "[]"), def
	}
	return net.JoinHostPort(strings.ToLower(h), p)
}

func defaultPort(scheme string) string {
	if strings.EqualFold(scheme, "http") {
		return "80"
	}
	return "443"
}
