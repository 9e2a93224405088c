package build

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/moby/buildkit/client/connhelper"

	"github.com/archmirror/archmirror/internal/config"
)

// Every scheme the config accepts is dialled: unix and tcp by BuildKit's client itself, the
// others by a connection helper this package registers. A scheme added to the config without
// its helper (or a helper that refuses what the config accepts) fails here.
func TestConnHelpersRegistered(t *testing.T) {
	examples := map[string]string{
		"unix":              "unix:///run/buildkit/buildkitd.sock",
		"tcp":               "tcp://host:1234",
		"docker-container":  "docker-container://buildx_buildkit_b0?context=default",
		"podman-container":  "podman-container://buildkitd",
		"nerdctl-container": "nerdctl-container://buildkitd?namespace=default",
		"kube-pod":          "kube-pod://buildkitd-0?namespace=ci&container=buildkitd&context=prod",
		"ssh":               "ssh://me@host:2222/run/buildkit/buildkitd.sock",
	}
	for _, scheme := range config.BuilderSchemes() {
		addr, ok := examples[scheme]
		if !ok {
			t.Errorf("config accepts %s://, which this test has no example of", scheme)
			continue
		}
		if err := config.CheckBuilderAddress(addr); err != nil {
			t.Errorf("config refuses %s: %v", addr, err)
		}
		h, err := connhelper.GetConnectionHelper(addr)
		switch {
		case err != nil:
			t.Errorf("%s: the connection helper refuses what the config accepts: %v", addr, err)
		case h == nil && scheme != "unix" && scheme != "tcp":
			t.Errorf("%s: no connection helper registered", addr)
		}
	}
}

// What the config refuses, the helpers refuse too (or it is not theirs to dial).
func TestConnHelpersRefuse(t *testing.T) {
	for _, addr := range []string{"docker-container://", "podman-container://", "nerdctl-container://", "kube-pod://", "kube-pod://Pod", "ssh://", "ssh://me:pw@host"} {
		if config.CheckBuilderAddress(addr) == nil {
			t.Errorf("config accepts %s", addr)
		}
		if h, err := connhelper.GetConnectionHelper(addr); err == nil && h != nil {
			t.Errorf("%s: the helper accepts it; the config could too", addr)
		}
	}
}

func TestTLSOptions(t *testing.T) {
	const pem = "-----BEGIN PRIVATE KEY-----\nc2VjcmV0\n-----END PRIVATE KEY-----"
	t.Setenv("ARCHMIRROR_TEST_KEY", pem)
	opts, cleanup, err := tlsOptions(&config.NodeTLS{CA: config.Secret{Ref: "file:///certs/ca.pem"}, Cert: config.Secret{Ref: "file:///certs/c.pem"}, Key: config.Secret{Ref: "env://ARCHMIRROR_TEST_KEY"}})
	if err != nil {
		t.Fatal(err)
	}
	if len(opts) != 2 {
		t.Fatalf("%d options, want server config and credentials", len(opts))
	}
	dirs, _ := filepath.Glob(filepath.Join(os.TempDir(), "archmirror-tls-*"))
	var keyFile string
	for _, d := range dirs {
		if b, err := os.ReadFile(d + "/key.pem"); err == nil && strings.TrimSpace(string(b)) == pem {
			keyFile = d + "/key.pem"
		}
	}
	if keyFile == "" {
		t.Fatal("env:// key not written to a temporary file")
	}
	if fi, err := os.Stat(keyFile); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("key file mode %v, %v; want 0600", fi.Mode(), err)
	}
	cleanup()
	if _, err := os.Stat(keyFile); !os.IsNotExist(err) {
		t.Fatalf("key file left behind: %v", err)
	}

	_, _, err = tlsOptions(&config.NodeTLS{Cert: config.Secret{Ref: "file:///c.pem"}, Key: config.Secret{Ref: "env://ARCHMIRROR_TEST_UNSET"}})
	if err == nil || !strings.Contains(err.Error(), "tls key") || !strings.Contains(err.Error(), "env://ARCHMIRROR_TEST_UNSET") {
		t.Fatalf("err %v, want one naming tls key and its reference", err)
	}
}

func TestTLSUnreadableNamesNode(t *testing.T) {
	t.Setenv("ARCHMIRROR_TEST_CA", "not a certificate")
	b := ForNode(config.Node{Addr: "tcp://127.0.0.1:1", TLS: &config.NodeTLS{CA: config.Secret{Ref: "env://ARCHMIRROR_TEST_CA"}}})
	_, err := b.Platforms(context.Background())
	if err == nil || !strings.Contains(err.Error(), "buildkit tcp://127.0.0.1:1") || strings.Contains(err.Error(), "not a certificate") {
		t.Fatalf("err %v, want one naming the node and not the secret", err)
	}
}
