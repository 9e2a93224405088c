// Package testenv runs the real services archmirror's tests talk to, and fills them with
// small test images.
//
// A test that needs a service the machine does not have is skipped with the command that
// installs it, unless ARCHMIRROR_E2E=1 (CI sets it): then it fails, so a broken install is a
// red build instead of a quietly skipped suite.
package testenv

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// E2EEnv is the environment variable that turns a missing service into a test failure.
const E2EEnv = "ARCHMIRROR_E2E"

// RegistryBinEnv overrides where the registry binary is looked up.
const RegistryBinEnv = "ARCHMIRROR_REGISTRY_BIN"

// Registry starts a distribution registry (Debian's docker-registry) on a free loopback port
// with its own storage directory, and stops it when the test ends. It returns the registry
// host ("127.0.0.1:PORT"), which go-containerregistry and archmirror talk to over plain HTTP.
func Registry(t testing.TB) string {
	t.Helper()
	bin := registryBinary(t)
	dir := t.TempDir()
	var lastErr error
	for attempt := range 3 { // the free port can be taken between choosing and binding it
		host, err := startRegistry(t, bin, dir, attempt)
		if err == nil {
			return host
		}
		lastErr = err
		if !errors.Is(err, errPortTaken) {
			break
		}
	}
	t.Fatalf("testenv: %v", lastErr)
	return ""
}

var errPortTaken = errors.New("address already in use")

func registryBinary(t testing.TB) string {
	t.Helper()
	if bin := os.Getenv(RegistryBinEnv); bin != "" {
		return bin
	}
	for _, name := range []string{"docker-registry", "/usr/bin/docker-registry"} {
		if bin, err := exec.LookPath(name); err == nil {
			return bin
		}
	}
	Missing(t, "docker-registry is not installed (apt-get install -y docker-registry, or scripts/deps.sh registry)")
	return ""
}

// Missing skips the test because a service is not installed, or fails it when
// ARCHMIRROR_E2E=1.
func Missing(t testing.TB, msg string) {
	t.Helper()
	if os.Getenv(E2EEnv) == "1" {
		t.Fatalf("testenv: %s (%s=1, so this is a failure)", msg, E2EEnv)
		return
	}
	t.Skipf("testenv: %s; set %s=1 to fail instead of skipping", msg, E2EEnv)
}

func startRegistry(t testing.TB, bin, dir string, attempt int) (string, error) {
	t.Helper()
	port, err := freePort()
	if err != nil {
		return "", err
	}
	host := fmt.Sprintf("127.0.0.1:%d", port)
	storage := filepath.Join(dir, fmt.Sprintf("storage-%d", attempt))
	config := filepath.Join(dir, fmt.Sprintf("config-%d.yml", attempt))
	yml := fmt.Sprintf(`version: 0.1
log:
  level: error
  accesslog: {disabled: true}
storage:
  filesystem: {rootdirectory: %q}
  delete: {enabled: true}
http:
  addr: %s
`, storage, host)
	if err := os.WriteFile(config, []byte(yml), 0o644); err != nil {
		return "", err
	}

	var out bytes.Buffer // only read after the process has exited
	cmd := exec.Command(bin, "serve", config)
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		return "", fmt.Errorf("start %s: %w", bin, err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()

	if err := waitReady(host, exited, 20*time.Second); err != nil {
		_ = cmd.Process.Kill()
		<-exited
		if strings.Contains(out.String(), "address already in use") {
			return "", errPortTaken
		}
		return "", fmt.Errorf("registry on %s: %w\n%s", host, err, tail(out.String(), 40))
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-exited
	})
	return host, nil
}

// waitReady polls GET /v2/ until it answers 200, the process exits, or timeout passes.
func waitReady(host string, exited <-chan error, timeout time.Duration) error {
	client := &http.Client{Timeout: time.Second}
	deadline := time.Now().Add(timeout)
	for {
		resp, err := client.Get("http://" + host + "/v2/")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			err = fmt.Errorf("GET /v2/: %s", resp.Status)
		}
		select {
		case werr := <-exited:
			return fmt.Errorf("exited before answering: %v", werr)
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("not ready after %s: %w", timeout, err)
		}
	}
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func tail(s string, lines int) string {
	all := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(all) > lines {
		all = all[len(all)-lines:]
	}
	return strings.Join(all, "\n")
}
