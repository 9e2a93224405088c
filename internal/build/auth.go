package build

import (
	"context"
	"fmt"

	"github.com/docker/cli/cli/config/types"
	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/moby/buildkit/session"
	"github.com/moby/buildkit/session/auth/authprovider"
)

// authProvider answers buildkitd's credential requests (pull, push, cache) from a
// go-containerregistry keychain, so builds and the registry target resolve credentials the
// same way. buildkitd asks through the client's session, so credentials never sit in
// buildkitd's configuration nor in a build argument.
func authProvider(k authn.Keychain) session.Attachable {
	return authprovider.NewDockerAuthProvider(authprovider.DockerAuthProviderConfig{
		AuthConfigProvider: func(ctx context.Context, host string, _ []string, _ authprovider.ExpireCachedAuthCheck) (types.AuthConfig, error) {
			if host == authprovider.DockerHubRegistryHost {
				host = name.DefaultRegistry
			}
			reg, err := name.NewRegistry(host, name.WeakValidation)
			if err != nil {
				return types.AuthConfig{}, fmt.Errorf("registry %q: %w", host, err)
			}
			a, err := authn.Resolve(ctx, k, reg)
			if err != nil {
				return types.AuthConfig{}, fmt.Errorf("credentials for %s: %w", host, err)
			}
			c, err := authn.Authorization(ctx, a)
			if err != nil {
				return types.AuthConfig{}, fmt.Errorf("credentials for %s: %w", host, err)
			}
			return types.AuthConfig{
				Username:      c.Username,
				Password:      c.Password,
				Auth:          c.Auth,
				IdentityToken: c.IdentityToken,
				RegistryToken: c.RegistryToken,
				ServerAddress: host,
			}, nil
		},
	})
}
