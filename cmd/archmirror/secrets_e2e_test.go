package main

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/secure-systems-lab/go-securesystemslib/encrypted"

	"github.com/archmirror/archmirror/internal/attest/sign"
	"github.com/archmirror/archmirror/internal/testenv"
)

// TestSecretsStayOut runs a full sync with a registry password, a GITHUB_TOKEN and an encrypted
// signing key's password set, then looks for the secrets everywhere archmirror writes: its
// stdout and stderr (table, JSON, logs), `serve`'s logs, API answers, metrics and status page
// after a run it made, the per-job build logs, and everything in the
// registry an image carries — manifests, image configs (labels), indexes (annotations) and the
// attestation bundles (provenance, SBOM, mirror predicate). None may appear, plain or base64.
func TestSecretsStayOut(t *testing.T) {
	if testing.Short() {
		t.Skip("builds images")
	}
	const (
		regUser = "mirror-bot"
		regPass = "reg-S3cret-d41d8cd98f00b204"
		ghToken = "ghp_SecretToken0123456789abcdefABCDEF01"
		keyPass = "key-S3cret-9e107d9d372bb682"
	)
	t.Setenv("ARCHMIRROR_TEST_REGISTRY_PASSWORD", regPass)
	t.Setenv("GITHUB_TOKEN", ghToken)
	t.Setenv("COSIGN_PASSWORD", keyPass)

	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, _ := x509.MarshalPKCS8PrivateKey(k)
	enc, err := encrypted.Encrypt(der, []byte(keyPass))
	if err != nil {
		t.Fatal(err)
	}
	keyPath := filepath.Join(t.TempDir(), "cosign.key")
	if err := os.WriteFile(keyPath, pem.EncodeToMemory(&pem.Block{Type: sign.SigstorePrivateKeyPEMType, Bytes: enc}), 0o600); err != nil {
		t.Fatal(err)
	}
	w := testenv.NewWorld(t, testenv.WithSign("{key: 'file://"+keyPath+"'}"),
		testenv.WithBasicAuth(regUser, regPass, "env://ARCHMIRROR_TEST_REGISTRY_PASSWORD"),
		// The fake upstream is not api.github.com: $GITHUB_TOKEN goes there only when named.
		testenv.WithSourceToken("env://GITHUB_TOKEN"))

	var seen bytes.Buffer
	for _, args := range [][]string{
		{"sync", "-c", w.ConfigPath, "--app", "hello", "--log-level", "debug"},
		{"sync", "-c", w.ConfigPath, "--app", "hello", "--json", "--log-level", "debug"},
		{"plan", "-c", w.ConfigPath, "--json"},
		{"attest", "-c", w.ConfigPath, "--app", "hello", "--json"},
	} {
		out, errOut, code := cli(t, args...)
		if code != 0 {
			t.Fatalf("archmirror %v: exit %d\n%s\n%s", args, code, out, errOut)
		}
		seen.WriteString(out)
		seen.WriteString(errOut)
	}
	// serve: a run of the app the CLI did not sync (real builds through the same secrets),
	// then every read endpoint and the status page, and serve's own logs.
	svc := startService(t, w.ConfigPath, freeAddr(t))
	r := postRun(t, svc.url, `{"apps":["twostep"]}`)
	if done := waitRun(t, svc.url, r.ID, "succeeded", "failed"); done.Status != "succeeded" {
		t.Fatalf("serve's run %s: %s\n%s", r.ID, done.Status, svc.logs)
	}
	for _, path := range []string{"/api/v1/runs?limit=100", "/api/v1/runs/" + r.ID, "/api/v1/apps", "/metrics", "/", "/healthz", "/readyz"} {
		resp, err := http.Get(svc.url + path)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("GET %s: %d %s", path, resp.StatusCode, b)
		}
		seen.Write(b)
	}
	svc.stop(t, 30*time.Second)
	seen.Write(svc.logs.Bytes())
	if !strings.Contains(seen.String(), "twostep") {
		t.Fatal("serve's answers never mention the app it ran: the test would prove nothing")
	}

	// The upstream got the token (so it was in play), and the registry the password.
	if !strings.Contains(strings.Join(w.Upstream.Credentials(), " "), ghToken) {
		t.Fatal("the fake upstream never saw GITHUB_TOKEN: the test would prove nothing")
	}

	// Every build log.
	if err := filepath.WalkDir(filepath.Join(w.Dir, "cache", "logs"), func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(path)
		seen.Write(b)
		return err
	}); err != nil {
		t.Fatal(err)
	}

	// Everything small in the registry: every tag's manifest, the manifests and configs it
	// names, and every referrer's manifest and bundle.
	registryText := readRegistry(t, w.Registry, regUser, regPass)
	if !strings.Contains(registryText, "https://slsa.dev/provenance/v1") || !strings.Contains(registryText, "org.opencontainers.image.source") {
		t.Fatalf("the registry walk found no provenance or labels (%d bytes): the test would prove nothing", len(registryText))
	}
	seen.WriteString(registryText)

	for name, secret := range map[string]string{"registry password": regPass, "GITHUB_TOKEN": ghToken, "signing key password": keyPass} {
		for _, form := range []string{secret, base64.StdEncoding.EncodeToString([]byte(secret)),
			base64.StdEncoding.EncodeToString([]byte(regUser + ":" + secret))} {
			if i := bytes.Index(seen.Bytes(), []byte(form)); i >= 0 {
				lo, hi := max(0, i-200), min(seen.Len(), i+200)
				t.Errorf("the %s appears in archmirror's output or the registry:\n…%s…", name, seen.Bytes()[lo:hi])
			}
		}
	}
}

// readRegistry walks the registry's catalog with the credentials and returns the text of every
// manifest, image config and referrer bundle (not the layers: labels and annotations are in
// the configs and manifests).
func readRegistry(t *testing.T, host, user, pass string) string {
	t.Helper()
	get := func(path, accept string) []byte {
		req, _ := http.NewRequest("GET", "http://"+host+path, nil)
		req.SetBasicAuth(user, pass)
		if accept != "" {
			req.Header.Set("Accept", accept)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 32<<20))
		if resp.StatusCode != 200 {
			t.Fatalf("GET %s: %d %s", path, resp.StatusCode, b)
		}
		return b
	}
	const accept = "application/vnd.oci.image.index.v1+json, application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json, application/vnd.docker.distribution.manifest.list.v2+json"
	var catalog struct{ Repositories []string }
	if err := json.Unmarshal(get("/v2/_catalog", ""), &catalog); err != nil {
		t.Fatal(err)
	}
	var out strings.Builder
	seen := map[string]bool{}
	var walk func(repo, ref string)
	walk = func(repo, ref string) {
		if seen[repo+"@"+ref] {
			return
		}
		seen[repo+"@"+ref] = true
		raw := get("/v2/"+repo+"/manifests/"+ref, accept)
		out.Write(raw)
		var m struct {
			Manifests []struct{ Digest string }
			Config    struct{ Digest string }
			Layers    []struct {
				Digest    string
				MediaType string
			}
		}
		if json.Unmarshal(raw, &m) != nil {
			return
		}
		for _, c := range m.Manifests {
			walk(repo, c.Digest)
		}
		if m.Config.Digest != "" {
			out.Write(get("/v2/"+repo+"/blobs/"+m.Config.Digest, ""))
		}
		for _, l := range m.Layers {
			if strings.Contains(l.MediaType, "sigstore.bundle") {
				out.Write(get("/v2/"+repo+"/blobs/"+l.Digest, ""))
			}
		}
	}
	for _, repo := range catalog.Repositories {
		var tags struct{ Tags []string }
		if err := json.Unmarshal(get("/v2/"+repo+"/tags/list", ""), &tags); err != nil {
			t.Fatal(err)
		}
		for _, tag := range tags.Tags {
			walk(repo, tag) // version tags, latest, and the sha256-… referrer indexes
		}
	}
	// Bundles hold their statements base64-encoded: decode them so a secret inside is found.
	text := out.String()
	var decoded strings.Builder
	for _, field := range strings.Split(text, `"payload":"`)[1:] {
		end := strings.IndexByte(field, '"')
		if end < 0 {
			continue
		}
		if b, err := base64.StdEncoding.DecodeString(field[:end]); err == nil {
			decoded.Write(b)
		}
	}
	return text + decoded.String()
}
