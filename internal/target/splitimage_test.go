package target

import (
	"strings"
	"testing"
)

func TestSplitImage(t *testing.T) {
	d := "sha256:" + strings.Repeat("a", 64)
	for _, tt := range []struct{ in, prefix, repo, tag, digest string }{
		{"127.0.0.1:5000/mirror/hello:1.2.0", "127.0.0.1:5000/mirror", "hello", "1.2.0", ""},
		{"127.0.0.1:5000/hello", "127.0.0.1:5000", "hello", "latest", ""},
		{"ghcr.io/acme/mirror/app@" + d, "ghcr.io/acme/mirror", "app", "", d},
		{"oci:/tmp/mirror/hello:1.0.0", "oci:/tmp/mirror", "hello", "1.0.0", ""},
		{"oci:./mirror/hello", "oci:./mirror", "hello", "latest", ""},
	} {
		prefix, repo, tag, digest, err := SplitImage(tt.in)
		got := ""
		if digest.Hex != "" {
			got = digest.String()
		}
		if err != nil || prefix != tt.prefix || repo != tt.repo || tag != tt.tag || got != tt.digest {
			t.Errorf("SplitImage(%q) = %q %q %q %q, %v", tt.in, prefix, repo, tag, got, err)
		}
	}
	for _, bad := range []string{"hello", "host/", "host/app@sha256:zz"} {
		if _, _, _, _, err := SplitImage(bad); err == nil {
			t.Errorf("SplitImage(%q) accepted", bad)
		}
	}
}
