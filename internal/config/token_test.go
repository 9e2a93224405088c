package config

import (
	"strings"
	"testing"
)

// TestSourceToken: token: none, a reference, and the places a token may not go.
func TestSourceToken(t *testing.T) {
	src := func(s string) string { return strings.Replace(base, "{github: acme/app}", s, 1) }
	tests := []struct {
		name    string
		source  string
		want    Token  // when it loads
		wantErr string // else
	}{
		{"unset", "{github: acme/app}", Token{}, ""},
		{"empty is unset", "{github: acme/app, token: ''}", Token{}, ""},
		{"none", "{github: acme/app, token: none}", Token{None: true}, ""},
		{"reference", "{github: acme/app, token: env://GH}", Token{Secret: Secret{Ref: "env://GH"}}, ""},
		{"own token over https", "{gitlab: g/p, api: 'https://git.example', token: env://GL}", Token{Secret: Secret{Ref: "env://GL"}}, ""},
		{"own token over http to loopback", "{gitlab: g/p, api: 'http://127.0.0.1:8080', token: env://GL}", Token{Secret: Secret{Ref: "env://GL"}}, ""},
		{"own token over http to localhost", "{github: acme/app, api: 'http://localhost:8080', token: env://GH}", Token{Secret: Secret{Ref: "env://GH"}}, ""},
		{"own token over http to ::1", "{github: acme/app, api: 'http://[::1]:8080', token: env://GH}", Token{Secret: Secret{Ref: "env://GH"}}, ""},
		{"none over http", "{github: acme/app, api: 'http://ghe.example/api/v3', token: none}", Token{None: true}, ""},
		{"own token over http elsewhere", "{github: acme/app,\n      api: 'http://ghe.example/api/v3', token: env://GH}", Token{},
			"c.yaml:5: apps.app.source.api: plain http:// to \"ghe.example\" would send the token in clear"},
		{"own gitlab token over http to a private address", "{gitlab: g/p, api: 'http://10.0.0.5', token: file:///run/t}", Token{},
			"c.yaml:4: apps.app.source.api: plain http:// to \"10.0.0.5\""},
		{"inline token", "{github: acme/app, token: ghp_hunter2}", Token{}, "c.yaml:4: apps.app.source.token: want env://NAME, file:///path or none"},
		{"NONE is not none", "{github: acme/app, token: NONE}", Token{}, "apps.app.source.token: want env://NAME, file:///path or none"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := Parse("c.yaml", []byte(src(tt.source)), noKinds{})
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v\nwant %q", err, tt.wantErr)
				}
				if strings.Contains(err.Error(), "hunter2") {
					t.Errorf("error leaks the inline token: %v", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := cfg.Apps[0].Source.Token; got != tt.want {
				t.Errorf("token = %+v, want %+v", got, tt.want)
			}
		})
	}
	if s := (Token{None: true}).String(); s != "none" {
		t.Errorf("String() = %q", s)
	}
}

// TestSourceInsecure: insecure: true is kept (which kinds take it: TestSourceKinds).
func TestSourceInsecure(t *testing.T) {
	cfg, err := Parse("c.yaml", []byte(strings.Replace(base, "{github: acme/app}", "{registry: '10.0.0.5:5000/acme/app', insecure: true}", 1)), noKinds{})
	if err != nil {
		t.Fatal(err)
	}
	if !cfg.Apps[0].Source.Insecure {
		t.Error("insecure not set")
	}
}

func TestIsLoopback(t *testing.T) {
	for host, want := range map[string]bool{
		"127.0.0.1": true, "127.0.0.1:5000": true, "127.3.4.5": true, "[::1]:80": true, "::1": true,
		"localhost": true, "LOCALHOST:8080": true,
		"10.0.0.1": false, "192.168.1.2:5000": false, "example.local": false, "localhost.example.com": false,
		"foo.localhost": false, "": false,
	} {
		if got := IsLoopback(host); got != want {
			t.Errorf("IsLoopback(%q) = %v, want %v", host, got, want)
		}
	}
}
