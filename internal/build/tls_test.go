package build

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/archmirror/archmirror/internal/config"
	"github.com/archmirror/archmirror/internal/testenv"
)

// testCA is a certificate authority that signs certificates for a test.
type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pem  []byte
}

func newTestCA(t *testing.T, name string) *testCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	return &testCA{cert: cert, key: key, pem: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})}
}

// issue returns a certificate and key, PEM, for a server at 127.0.0.1 or a client.
func (ca *testCA) issue(t *testing.T, serial int64, server bool) (certPEM, keyPEM []byte) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: "client"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	if server {
		tmpl.Subject.CommonName = "buildkitd"
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
		tmpl.IPAddresses = []net.IP{net.IPv4(127, 0, 0, 1)}
		tmpl.DNSNames = []string{"buildkitd"}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder})
}

func writePEM(t *testing.T, dir, name string, b []byte) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// A tcp:// node with mutual TLS, as BuildKit's deployment guide exposes one: the right CA and
// client certificate (from files or the environment) get an answer; a wrong CA or no client
// certificate is refused, naming the node.
func TestBuildKitMutualTLS(t *testing.T) {
	dir := t.TempDir()
	ca := newTestCA(t, "archmirror test CA")
	srvCert, srvKey := ca.issue(t, 2, true)
	cliCert, cliKey := ca.issue(t, 3, false)
	addr := testenv.BuildKitTLS(t, testenv.TLSFiles{
		CA:   writePEM(t, dir, "ca.pem", ca.pem),
		Cert: writePEM(t, dir, "server.pem", srvCert),
		Key:  writePEM(t, dir, "server-key.pem", srvKey),
	})
	file := func(name string, b []byte) config.Secret {
		return config.Secret{Ref: "file://" + writePEM(t, dir, name, b)}
	}
	good := config.NodeTLS{CA: file("ca.pem", ca.pem), Cert: file("client.pem", cliCert), Key: file("client-key.pem", cliKey)}
	t.Setenv("ARCHMIRROR_TEST_CLIENT_KEY", string(cliKey))
	fromEnv := good
	fromEnv.Key = config.Secret{Ref: "env://ARCHMIRROR_TEST_CLIENT_KEY"}
	named := good
	named.ServerName = "buildkitd"
	wrongCA := good
	wrongCA.CA = file("other-ca.pem", newTestCA(t, "another CA").pem)
	noClientCert := config.NodeTLS{CA: good.CA}

	for _, tt := range []struct {
		name    string
		tls     config.NodeTLS
		wantErr string // "" when the node must answer
	}{
		{"files", good, ""},
		{"key from env", fromEnv, ""},
		{"server_name", named, ""},
		{"wrong CA", wrongCA, "certificate signed by unknown authority"},
		{"no client certificate", noClientCert, "not answering"}, // TLS 1.3: "certificate required", or a broken pipe,
	} {
		t.Run(tt.name, func(t *testing.T) {
			tls := tt.tls
			b := ForNode(config.Node{Addr: addr, TLS: &tls}, WithPingTimeout(20*time.Second))
			defer b.Close()
			ps, err := b.Platforms(context.Background())
			if tt.wantErr == "" {
				if err != nil || len(ps) == 0 {
					t.Fatalf("platforms %v, %v", ps, err)
				}
				return
			}
			if err == nil {
				t.Fatalf("answered (%v) with %s", ps, tt.name)
			}
			if !strings.Contains(err.Error(), "buildkit "+addr) || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("err %v, want one naming %s and %q", err, addr, tt.wantErr)
			}
			t.Log(err)
			if strings.Contains(err.Error(), "PRIVATE KEY") {
				t.Fatalf("err quotes the key: %v", err)
			}
		})
	}
}
