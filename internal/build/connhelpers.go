package build

import (
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/moby/buildkit/client"
	// The connection helpers BuildKit ships register their schemes with client.New: they run
	// docker, podman, nerdctl, kubectl or ssh, found on PATH, to reach a buildkitd's socket.
	_ "github.com/moby/buildkit/client/connhelper/dockercontainer"
	_ "github.com/moby/buildkit/client/connhelper/kubepod"
	_ "github.com/moby/buildkit/client/connhelper/nerdctlcontainer"
	_ "github.com/moby/buildkit/client/connhelper/podmancontainer"
	_ "github.com/moby/buildkit/client/connhelper/ssh"

	"github.com/archmirror/archmirror/internal/config"
)

// helperCLIs are the programs the connection helpers run to reach buildkitd, by scheme.
var helperCLIs = map[string]string{
	"docker-container":  "docker",
	"podman-container":  "podman",
	"nerdctl-container": "nerdctl",
	"kube-pod":          "kubectl",
	"ssh":               "ssh",
}

// checkHelperCLI reports a connection helper's program missing from PATH, which would otherwise
// show as a bare "executable file not found" on the first call.
func checkHelperCLI(addr string) error {
	u, err := url.Parse(addr)
	if err != nil {
		return nil // client.New says why
	}
	cli, ok := helperCLIs[u.Scheme]
	if !ok {
		return nil
	}
	if _, err := exec.LookPath(cli); err != nil {
		return fmt.Errorf("%s:// addresses run %s, which is not on PATH", u.Scheme, cli)
	}
	return nil
}

// WithTLS makes a tcp:// node's connection mutual TLS as t says (config builders' tls).
func WithTLS(t *config.NodeTLS) Option { return func(o *options) { o.tls = t } }

// ForNode returns the builder of a configured node: its address and, for tcp://, its TLS.
func ForNode(nd config.Node, opts ...Option) *BuildKit {
	if nd.TLS != nil {
		opts = append(opts, WithTLS(nd.TLS))
	}
	return NewBuildKit(nd.Addr, opts...)
}

// tlsFiles are the PEM files BuildKit's client reads a node's TLS from: a file:// secret is
// its own path; an env:// one is written to a private temporary file, removed by cleanup once
// client.New has read it.
type tlsFiles struct {
	ca, cert, key string
	dir           string
}

func (f *tlsFiles) cleanup() {
	if f.dir != "" {
		os.RemoveAll(f.dir)
	}
}

// tlsOptions resolves t into client options; errors name the reference, never the value.
func tlsOptions(t *config.NodeTLS) ([]client.ClientOpt, func(), error) {
	f := &tlsFiles{}
	for _, s := range []struct {
		name string
		ref  config.Secret
		path *string
	}{{"ca", t.CA, &f.ca}, {"cert", t.Cert, &f.cert}, {"key", t.Key, &f.key}} {
		p, err := f.path(s.name, s.ref)
		if err != nil {
			f.cleanup()
			return nil, nil, fmt.Errorf("tls %s: %w", s.name, err)
		}
		*s.path = p
	}
	var opts []client.ClientOpt
	if f.ca != "" {
		opts = append(opts, client.WithServerConfig(t.ServerName, f.ca))
	} else {
		opts = append(opts, client.WithServerConfigSystem(t.ServerName))
	}
	if f.cert != "" {
		opts = append(opts, client.WithCredentials(f.cert, f.key))
	}
	return opts, f.cleanup, nil
}

// path is the file that holds ref's PEM ("" when ref is unset).
func (f *tlsFiles) path(name string, ref config.Secret) (string, error) {
	switch {
	case !ref.IsSet():
		return "", nil
	case strings.HasPrefix(ref.Ref, "file://"):
		return strings.TrimPrefix(ref.Ref, "file://"), nil
	}
	v, err := ref.Value()
	if err != nil {
		return "", err
	}
	if f.dir == "" {
		if f.dir, err = os.MkdirTemp("", "archmirror-tls-"); err != nil {
			return "", err
		}
	}
	p := filepath.Join(f.dir, name+".pem")
	if err := os.WriteFile(p, []byte(v+"\n"), 0o600); err != nil {
		return "", fmt.Errorf("%s: %w", ref, err)
	}
	return p, nil
}
