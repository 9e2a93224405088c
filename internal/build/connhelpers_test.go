package build

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/moby/buildkit/client/connhelper"

	"github.com/archmirror/archmirror/internal/config"
	"github.com/archmirror/archmirror/internal/testenv"
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
		case h != nil && helperCLIs[scheme] == "":
			t.Errorf("%s: helperCLIs does not say which program its helper runs", addr)
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

func TestHelperCLIMissing(t *testing.T) {
	t.Setenv("PATH", t.TempDir())
	b := NewBuildKit("docker-container://buildx_buildkit_b0")
	_, err := b.Platforms(context.Background())
	if err == nil || !strings.Contains(err.Error(), "buildkit docker-container://buildx_buildkit_b0: docker-container:// addresses run docker, which is not on PATH") {
		t.Fatalf("err %v", err)
	}
	for scheme := range helperCLIs {
		if !slices.Contains(config.BuilderSchemes(), scheme) {
			t.Errorf("%s has a CLI but the config refuses it", scheme)
		}
	}
}

// fakeDocker is a docker CLI that only knows `docker exec -i NAME buildctl dial-stdio`, which
// the docker-container helper runs: it bridges its stdin and stdout to a buildkitd socket.
const fakeDocker = `#!/usr/bin/env python3
import os, socket, sys, threading
a = sys.argv[1:]
if a != ["exec", "-i", os.environ["ARCHMIRROR_FAKE_CONTAINER"], "buildctl", "dial-stdio"]:
    sys.stderr.write("fake docker: no such container or command: %r\n" % a)
    sys.exit(1)
s = socket.socket(socket.AF_UNIX)
s.connect(os.environ["ARCHMIRROR_FAKE_SOCK"])
def up():
    while True:
        b = os.read(0, 65536)
        if not b:
            s.shutdown(socket.SHUT_WR)
            return
        s.sendall(b)
threading.Thread(target=up, daemon=True).start()
out = sys.stdout.buffer
while True:
    b = s.recv(65536)
    if not b:
        break
    out.write(b)
    out.flush()
`

// A docker-container:// address is dialled through the docker CLI on PATH, as for a `docker
// buildx create` builder (here a fake docker in front of a real buildkitd).
func TestDockerContainerAddress(t *testing.T) {
	if _, err := exec.LookPath("python3"); err != nil {
		testenv.Missing(t, "python3 is not installed (the fake docker CLI is a python3 script)")
	}
	sock := strings.TrimPrefix(testenv.BuildKit(t), "unix://")
	bin := t.TempDir()
	if err := os.WriteFile(filepath.Join(bin, "docker"), []byte(fakeDocker), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", bin+string(os.PathListSeparator)+os.Getenv("PATH"))
	t.Setenv("ARCHMIRROR_FAKE_SOCK", sock)
	t.Setenv("ARCHMIRROR_FAKE_CONTAINER", "buildx_buildkit_b0")

	b := ForNode(config.Node{Addr: "docker-container://buildx_buildkit_b0"}, WithPingTimeout(20*time.Second))
	defer b.Close()
	if ps, err := b.Platforms(context.Background()); err != nil || len(ps) == 0 {
		t.Fatalf("platforms %v, %v", ps, err)
	}
	other := ForNode(config.Node{Addr: "docker-container://nosuch"}, WithPingTimeout(5*time.Second))
	defer other.Close()
	if _, err := other.Platforms(context.Background()); err == nil || !strings.Contains(err.Error(), "buildkit docker-container://nosuch") {
		t.Fatalf("err %v, want one naming the node", err)
	}
}
