package target

import (
	"fmt"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"

	"github.com/archmirror/archmirror/internal/config"
)

// BuilderKeychain is the keychain a builder (BuildKit) pushes to the target with: it resolves
// the config's target credentials (target.username / password) for the target's registry and
// defers to next for every other host (base images, caches on other registries). BuildKit asks for credentials through its session with it, so a push to the
// target uses the same credentials as the registry target itself; without configured
// credentials it is next alone (Docker config and credential helpers).
func BuilderKeychain(t config.Target, next authn.Keychain) (authn.Keychain, error) {
	if _, ok := t.Layout(); ok || t.Username == "" {
		return next, nil
	}
	repo, err := name.NewRepository(t.Registry + "/x")
	if err != nil {
		return nil, fmt.Errorf("target.registry: %w", err)
	}
	password, err := t.Password.Value()
	if err != nil {
		return nil, fmt.Errorf("target.password: %w", err)
	}
	return keychain{host: repo.RegistryStr(), auth: &authn.Basic{Username: t.Username, Password: password}, next: next}, nil
}

type keychain struct {
	host string
	auth authn.Authenticator
	next authn.Keychain
}

func (k keychain) Resolve(r authn.Resource) (authn.Authenticator, error) {
	if r.RegistryStr() == k.host {
		return k.auth, nil
	}
	return k.next.Resolve(r)
}
