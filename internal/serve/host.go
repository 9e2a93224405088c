package serve

import (
	"fmt"
	"net"
	"net/http"
	"strings"
)

// hostPolicy is which Host headers the API answers: a page of another site whose name an attacker
// points at the service's address (DNS rebinding) sends its own name as Host and is refused.
type hostPolicy struct {
	any   bool            // bound to a wildcard address with no allow-list: every Host
	names map[string]bool // allowed host names, lower case, any port
}

// newHostPolicy is the policy of a service listening on listen: the listen host's name, and
// localhost, 127.0.0.1 and ::1 when it is loopback; every name when it is a wildcard address
// (0.0.0.0, ::, or none), unless allowed lists names. Names in allowed are accepted in every case.
func newHostPolicy(listen string, allowed []string) (hostPolicy, error) {
	host, _, err := net.SplitHostPort(listen)
	if err != nil {
		return hostPolicy{}, fmt.Errorf("listen %s: %w", listen, err)
	}
	p := hostPolicy{names: map[string]bool{}}
	for _, a := range allowed {
		if n := hostName(strings.TrimSpace(a)); n != "" {
			p.names[n] = true
		}
	}
	ip := net.ParseIP(host)
	switch {
	case host == "" || ip != nil && ip.IsUnspecified():
		p.any = len(p.names) == 0
	case strings.EqualFold(host, "localhost") || ip != nil && ip.IsLoopback():
		for _, n := range []string{hostName(host), "localhost", "127.0.0.1", "::1"} {
			p.names[n] = true
		}
	default:
		p.names[hostName(host)] = true
	}
	return p, nil
}

// allows says whether a request with Host host is answered.
func (p hostPolicy) allows(host string) bool {
	return p.any || p.names[hostName(host)]
}

// hostName is the name of a Host header or an allow-list entry: without its port and IPv6
// brackets, lower case, without a trailing dot.
func hostName(h string) string {
	if name, _, err := net.SplitHostPort(h); err == nil {
		h = name
	}
	h = strings.TrimSuffix(strings.TrimPrefix(h, "["), "]")
	return strings.TrimSuffix(strings.ToLower(h), ".")
}

// checkHost answers 421 with a short plain message to a request whose Host the policy does not
// allow. Probes (/healthz, /readyz) are answered whatever their Host: Kubernetes sends the pod's
// IP, and they tell nothing.
func checkHost(p hostPolicy, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !p.allows(r.Host) && r.URL.Path != "/healthz" && r.URL.Path != "/readyz" {
			w.Header().Set("Content-Type", "text/plain; charset=utf-8")
			w.Header().Set("Cache-Control", "no-store")
			w.WriteHeader(http.StatusMisdirectedRequest)
			_, _ = fmt.Fprintln(w, "host not allowed: this service answers only its own names (serve --allowed-hosts)")
			return
		}
		next.ServeHTTP(w, r)
	})
}
