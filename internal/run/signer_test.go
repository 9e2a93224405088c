package run

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/secure-systems-lab/go-securesystemslib/encrypted"

	"github.com/archmirror/archmirror/internal/attest/sign"
	"github.com/archmirror/archmirror/internal/config"
)

func TestSigner(t *testing.T) {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, _ := x509.MarshalPKCS8PrivateKey(k)
	enc, err := encrypted.Encrypt(der, []byte("pw-from-env"))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	cosignKey := filepath.Join(dir, "cosign.key")
	plainKey := filepath.Join(dir, "plain.pem")
	if err := os.WriteFile(cosignKey, pem.EncodeToMemory(&pem.Block{Type: sign.SigstorePrivateKeyPEMType, Bytes: enc}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(plainKey, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	file := func(p string) config.Secret { return config.Secret{Ref: "file://" + p} }

	if s, err := Signer(config.Sign{Off: true}); s != nil || err != nil {
		t.Fatalf("sign off: %v, %v", s, err)
	}
	s, err := Signer(config.Sign{Key: file(plainKey)})
	if err != nil || s.Keyless() || !strings.HasPrefix(s.ID(), "key:") {
		t.Fatalf("plain key: %v, %v", s, err)
	}
	want := s.ID()

	t.Setenv(PasswordEnv, "pw-from-env")
	if s, err := Signer(config.Sign{Key: file(cosignKey)}); err != nil || s.ID() != want {
		t.Fatalf("cosign key with %s: %v", PasswordEnv, err)
	}
	t.Setenv("OTHER_PW", "pw-from-env")
	t.Setenv(PasswordEnv, "wrong-password")
	if _, err := Signer(config.Sign{Key: file(cosignKey), Password: config.Secret{Ref: "env://OTHER_PW"}}); err != nil {
		t.Fatalf("sign.password wins over %s: %v", PasswordEnv, err)
	}
	_, err = Signer(config.Sign{Key: file(cosignKey)})
	if err == nil || strings.Contains(err.Error(), "wrong-password") || !strings.Contains(err.Error(), cosignKey) {
		t.Fatalf("wrong password: %v", err)
	}
	os.Unsetenv(PasswordEnv)
	if _, err := Signer(config.Sign{Key: file(cosignKey)}); err == nil || !strings.Contains(err.Error(), PasswordEnv) {
		t.Fatalf("no password: %v", err)
	}
	if _, err := Signer(config.Sign{Key: config.Secret{Ref: "env://ARCHMIRROR_NO_SUCH_KEY"}}); err == nil || !strings.Contains(err.Error(), "ARCHMIRROR_NO_SUCH_KEY") {
		t.Fatalf("missing key: %v", err)
	}
	if s, err := Signer(config.Sign{Keyless: true}); err != nil || !s.Keyless() || s.ID() != "keyless" {
		t.Fatalf("keyless: %v, %v", s, err)
	}
}

func TestSplitContext(t *testing.T) {
	for in, want := range map[string][2]string{
		"https://github.com/mattermost/mattermost.git#v10.3.1:server/build": {"https://github.com/mattermost/mattermost.git", "v10.3.1"},
		"https://git.example/x.git#main":                                    {"https://git.example/x.git", "main"},
		"/abs/contexts/hello":                                               {"/abs/contexts/hello", ""},
	} {
		src, ref := splitContext(in)
		if src != want[0] || ref != want[1] {
			t.Errorf("splitContext(%q) = %q, %q", in, src, ref)
		}
	}
}
