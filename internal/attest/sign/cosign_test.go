package sign

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/sigstore/sigstore/pkg/cryptoutils"

	"github.com/archmirror/archmirror/internal/testenv"
)

// TestCosignInterop checks against the real CLI that a `cosign generate-key-pair` key opens with
// LoadKey, and that `cosign verify-blob-attestation` accepts the bundles a key Signer writes.
func TestCosignInterop(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the cosign CLI")
	}
	cosign := testenv.Cosign(t)
	dir := t.TempDir()
	const password = "interop-password"
	run := func(args ...string) []byte {
		t.Helper()
		cmd := exec.Command(cosign, args...)
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), "COSIGN_PASSWORD="+password, "COSIGN_YES=true")
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("cosign %v: %v\n%s", args, err, out)
		}
		return out
	}
	t.Logf("%s", run("version"))
	run("generate-key-pair")

	keyPEM, err := os.ReadFile(filepath.Join(dir, "cosign.key"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := LoadKey(keyPEM, static("wrong")); err == nil {
		t.Fatal("cosign key opened with a wrong password")
	}
	k, err := LoadKey(keyPEM, static(password))
	if err != nil {
		t.Fatalf("LoadKey(cosign.key): %v", err)
	}

	// Our public key is cosign's.
	theirPub, err := os.ReadFile(filepath.Join(dir, "cosign.pub"))
	if err != nil {
		t.Fatal(err)
	}
	ourPub, err := k.PublicKeyPEM()
	if err != nil {
		t.Fatal(err)
	}
	a, err := cryptoutils.UnmarshalPEMToPublicKey(theirPub)
	if err != nil {
		t.Fatal(err)
	}
	b, err := cryptoutils.UnmarshalPEMToPublicKey(ourPub)
	if err != nil {
		t.Fatal(err)
	}
	if err := cryptoutils.EqualKeys(a, b); err != nil {
		t.Fatalf("public keys differ: %v", err)
	}

	// A bundle about a blob verifies with cosign verify-blob-attestation (new bundle format,
	// cosign v3's default).
	blob := []byte("archmirror interop blob\n")
	if err := os.WriteFile(filepath.Join(dir, "blob"), blob, 0o600); err != nil {
		t.Fatal(err)
	}
	const mirrorType = "https://archmirror.dev/attestations/mirror/v1"
	bundle, err := NewKeySigner(k).Bundle(context.Background(), statement(t, digestOf(string(blob)), mirrorType))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "att.bundle"), bundle, 0o600); err != nil {
		t.Fatal(err)
	}
	verifyArgs := func(pub string) []string {
		return []string{"verify-blob-attestation", "--key", pub, "--bundle", "att.bundle",
			"--type", mirrorType, "--insecure-ignore-tlog=true", "blob"}
	}
	run(verifyArgs("cosign.pub")...)

	// And the CLI refuses it with another key.
	other := t.TempDir()
	cmd := exec.Command(cosign, "generate-key-pair")
	cmd.Dir = other
	cmd.Env = append(os.Environ(), "COSIGN_PASSWORD="+password)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("cosign generate-key-pair: %v\n%s", err, out)
	}
	cmd = exec.Command(cosign, verifyArgs(filepath.Join(other, "cosign.pub"))...)
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err == nil {
		t.Fatalf("cosign verify-blob-attestation accepted a bundle with another key:\n%s", out)
	}
}
