package target

import (
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"

	"github.com/archmirror/archmirror/internal/config"
)

type fixedKeychain struct{ a authn.Authenticator }

func (f fixedKeychain) Resolve(authn.Resource) (authn.Authenticator, error) { return f.a, nil }

func TestTargetKeychain(t *testing.T) {
	t.Setenv("AM_REG_PW", "s3cret")
	other := &authn.Basic{Username: "docker-config"}
	kc, err := BuilderKeychain(config.Target{Registry: "reg.example:5000/ns", Username: "bot", Password: config.Secret{Ref: "env://AM_REG_PW"}}, fixedKeychain{other})
	if err != nil {
		t.Fatal(err)
	}
	reg, _ := name.NewRegistry("reg.example:5000")
	a, _ := kc.Resolve(reg)
	cfg, _ := a.Authorization()
	if cfg.Username != "bot" || cfg.Password != "s3cret" {
		t.Errorf("target registry got %+v", cfg)
	}
	hub, _ := name.NewRegistry("index.docker.io")
	if a, _ := kc.Resolve(hub); a != other {
		t.Error("another registry did not fall through to the Docker keychain")
	}
	// No credentials configured: the Docker keychain alone.
	if kc, _ := BuilderKeychain(config.Target{Registry: "reg.example/ns"}, fixedKeychain{other}); kc != (fixedKeychain{other}) {
		t.Errorf("keychain = %#v", kc)
	}
	_, err = BuilderKeychain(config.Target{Registry: "reg.example/ns", Username: "bot", Password: config.Secret{Ref: "env://AM_UNSET_PW"}}, fixedKeychain{other})
	if err == nil || !strings.Contains(err.Error(), "AM_UNSET_PW is not set") || strings.Contains(err.Error(), "s3cret") {
		t.Errorf("unset password: %v", err)
	}
}
