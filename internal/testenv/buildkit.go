package testenv

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// BuildKitdEnv overrides where the buildkitd binary is looked up.
const BuildKitdEnv = "ARCHMIRROR_BUILDKITD"

// BuildKit starts a buildkitd (OCI worker, runc, host networking) with its own root under
// /tmp, and stops it and removes the root when the test ends. It returns the daemon's address
// ("unix:///tmp/archmirror-buildkit-…/buildkitd.sock"). Each insecureRegistries host
// ("127.0.0.1:5000") is reached over plain HTTP, for base images, pushes and the cache.
//
// RUN steps share the host's network, so they reach test servers on 127.0.0.1. linux/arm64
// builds need qemu-user-static with binfmt_misc (scripts/deps.sh buildkit); the daemon starts
// without it, listing only the native platform.
//
// A daemon starts in about a second; tests that build several times should share one.
func BuildKit(t testing.TB, insecureRegistries ...string) string {
	t.Helper()
	return BuildKitNode(t, insecureRegistries...).Addr
}

// Node is a running buildkitd.
type Node struct {
	Addr string
	// Kill stops the daemon at once (SIGKILL), as a machine that dies does; the test's cleanup
	// still removes its files.
	Kill func()
}

// BuildKitNode is BuildKit, for tests that also need to kill the daemon.
func BuildKitNode(t testing.TB, insecureRegistries ...string) Node {
	t.Helper()
	n, err := startBuildKit(t, requireBuildKit(t), insecureRegistries)
	if err != nil {
		t.Fatalf("testenv: %v", err)
	}
	return n
}

// TLSFiles are the PEM files of a buildkitd that serves mutual TLS: the CA its clients'
// certificates must chain to, and its own certificate and key.
type TLSFiles struct{ CA, Cert, Key string }

// BuildKitTLS starts a buildkitd, as BuildKit does, that also listens on tcp://127.0.0.1:PORT
// with mutual TLS, and returns that address.
func BuildKitTLS(t testing.TB, f TLSFiles) string {
	t.Helper()
	bin := requireBuildKit(t)
	port, err := freePort()
	if err != nil {
		t.Fatalf("testenv: %v", err)
	}
	addr := fmt.Sprintf("tcp://127.0.0.1:%d", port)
	if _, err := startBuildKit(t, bin, nil, "--addr", addr, "--tlscacert", f.CA, "--tlscert", f.Cert, "--tlskey", f.Key); err != nil {
		t.Fatalf("testenv: %v", err)
	}
	return addr
}

// requireBuildKit is the buildkitd binary, once it is known to be able to run here.
func requireBuildKit(t testing.TB) string {
	t.Helper()
	bin := buildkitdBinary(t)
	if os.Geteuid() != 0 {
		Missing(t, "buildkitd needs root here (rootless BuildKit is not set up)")
	}
	if _, err := exec.LookPath("runc"); err != nil {
		Missing(t, "runc is not installed (apt-get install -y runc, or scripts/deps.sh buildkit)")
	}
	return bin
}

func buildkitdBinary(t testing.TB) string {
	t.Helper()
	return tool(t, BuildKitdEnv, "buildkitd", "buildkitd", "scripts/deps.sh buildkit builds it into ~/.cache/archmirror/bin")
}

// buildkitdConfig is the daemon's TOML configuration.
func buildkitdConfig(insecureRegistries []string) string {
	var b strings.Builder
	b.WriteString(`[log]
  level = "warn"

[worker.oci]
  enabled = true
  # no CNI here: RUN steps use the host's network (and reach 127.0.0.1)
  networkMode = "host"
  gc = false

[worker.containerd]
  enabled = false
`)
	seen := map[string]bool{}
	for _, r := range insecureRegistries {
		if !seen[r] { // buildkitd refuses a config that names a registry twice
			seen[r] = true
			fmt.Fprintf(&b, "\n[registry.%q]\n  http = true\n", r)
		}
	}
	return b.String()
}

// startBuildKit starts a buildkitd on a unix socket; args are more of its flags.
func startBuildKit(t testing.TB, bin string, insecureRegistries []string, args ...string) (Node, error) {
	t.Helper()
	// Not t.TempDir: the socket path must stay short (108 bytes), and the root holds overlay
	// mounts until the daemon has stopped.
	dir, err := os.MkdirTemp("/tmp", "archmirror-buildkit-")
	if err != nil {
		return Node{}, err
	}
	config := filepath.Join(dir, "buildkitd.toml")
	if err := os.WriteFile(config, []byte(buildkitdConfig(insecureRegistries)), 0o644); err != nil {
		os.RemoveAll(dir)
		return Node{}, err
	}
	sock := filepath.Join(dir, "buildkitd.sock")
	addr := "unix://" + sock

	// buildkitd tells systemd it is ready (after its workers are up and it serves gRPC) by
	// sending READY=1 to $NOTIFY_SOCKET: listen there instead of polling.
	notifyPath := filepath.Join(dir, "notify.sock")
	notify, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: notifyPath, Net: "unixgram"})
	if err != nil {
		os.RemoveAll(dir)
		return Node{}, err
	}
	defer notify.Close()
	ready := make(chan struct{})
	go func() {
		buf := make([]byte, 512)
		for {
			n, _, err := notify.ReadFromUnix(buf)
			if err != nil {
				return
			}
			if strings.Contains(string(buf[:n]), "READY=1") {
				close(ready)
				return
			}
		}
	}()

	logPath := filepath.Join(dir, "buildkitd.log")
	logf, err := os.Create(logPath)
	if err != nil {
		os.RemoveAll(dir)
		return Node{}, err
	}
	cmd := exec.Command(bin, append([]string{"--addr", addr, "--root", filepath.Join(dir, "root"), "--config", config}, args...)...)
	cmd.Env = append(os.Environ(), "NOTIFY_SOCKET="+notifyPath)
	// If the test binary dies without cleaning up (a -timeout panic), stop the daemon too.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		logf.Close()
		os.RemoveAll(dir)
		return Node{}, fmt.Errorf("start %s: %w", bin, err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait(); logf.Close() }()

	stop := func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(15 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
		}
		if err := os.RemoveAll(dir); err != nil {
			t.Logf("testenv: remove buildkitd root: %v", err)
		}
	}
	logTail := func() string { b, _ := os.ReadFile(logPath); return tail(string(b), 40) }

	const timeout = 60 * time.Second
	select {
	case <-ready:
	case err := <-exited:
		exited <- err
		msg := logTail()
		stop()
		return Node{}, fmt.Errorf("buildkitd exited before it was ready (%v):\n%s", err, msg)
	case <-time.After(timeout):
		msg := logTail()
		stop()
		return Node{}, fmt.Errorf("buildkitd not ready after %s:\n%s", timeout, msg)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("testenv: buildkitd log:\n%s", logTail())
		}
		stop()
	})
	kill := func() {
		_ = cmd.Process.Kill()
		err := <-exited
		exited <- err // for stop
	}
	return Node{Addr: addr, Kill: kill}, nil
}
