package tlsscope

import (
	"crypto/tls"
	"errors"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"
)

func tlsServer(t *testing.T, h http.HandlerFunc) *httptest.Server {
	t.Helper()
	s := httptest.NewUnstartedServer(h)
	s.Config.ErrorLog = log.New(io.Discard, "", 0) // the refused handshakes are expected
	s.StartTLS()
	t.Cleanup(s.Close)
	return s
}

// Two TLS servers with self-signed certificates: the insecure host is reached, the other (a
// token realm, a redirect's target) fails verification, asked directly or redirected to.
func TestInsecureIsScopedToItsHost(t *testing.T) {
	realm := tlsServer(t, func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, `{"token":"t"}`) })
	reg := tlsServer(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/v2/app/blobs/x" {
			http.Redirect(w, r, realm.URL+"/blob", http.StatusTemporaryRedirect)
			return
		}
		w.WriteHeader(http.StatusOK)
	})
	base := &http.Transport{}
	c := &http.Client{Transport: Insecure(base, reg.Listener.Addr().String())}

	resp, err := c.Get(reg.URL + "/v2/")
	if err != nil {
		t.Fatalf("the insecure host: %v", err)
	}
	resp.Body.Close()

	for _, u := range []string{realm.URL + "/token?scope=x", reg.URL + "/v2/app/blobs/x"} {
		_, err := c.Get(u)
		var cert *tls.CertificateVerificationError
		if !errors.As(err, &cert) {
			t.Errorf("GET %s: err = %v, want a certificate verification error", u, err)
		}
	}
	if base.TLSClientConfig != nil && base.TLSClientConfig.InsecureSkipVerify {
		t.Error("the base transport was changed")
	}
}

func TestHostMatch(t *testing.T) {
	for _, tc := range []struct {
		host, url string
		insecure  bool
	}{
		{"registry.example", "https://registry.example/v2/", true},
		{"registry.example", "https://Registry.Example:443/v2/", true},
		{"registry.example:443", "https://registry.example/v2/", true},
		{"registry.example:5000", "https://registry.example:5000/v2/", true},
		{"registry.example:5000", "https://registry.example/v2/", false},
		{"registry.example", "https://registry.example:5000/v2/", false},
		{"registry.example", "https://auth.registry.example/token", false},
		{"[::1]:5000", "https://[::1]:5000/v2/", true},
		{"127.0.0.1:5000", "https://127.0.0.1:5001/v2/", false},
	} {
		s := Insecure(&http.Transport{}, tc.host).(*scoped)
		u, _ := url.Parse(tc.url)
		if got := s.skips(u); got != tc.insecure {
			t.Errorf("host %s, URL %s: insecure = %v, want %v", tc.host, tc.url, got, tc.insecure)
		}
	}
}
