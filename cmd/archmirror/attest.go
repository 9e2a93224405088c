package main

import (
	"errors"
	"fmt"
	"os"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/sigstore/sigstore-go/pkg/root"
	"github.com/spf13/cobra"

	"github.com/archmirror/archmirror/internal/attest"
	"github.com/archmirror/archmirror/internal/attest/sign"
	"github.com/archmirror/archmirror/internal/config"
	"github.com/archmirror/archmirror/internal/discover"
	"github.com/archmirror/archmirror/internal/report"
	"github.com/archmirror/archmirror/internal/run"
	"github.com/archmirror/archmirror/internal/target"
)

func attestCmd(g *globals) *cobra.Command {
	var parallel int
	cmd := &cobra.Command{
		Use:   "attest",
		Short: "Sign and attest every complete version in the target that lacks it",
		Long: `attest finds, as plan does, every version of the window that is complete in the target,
and attaches to its index and to each platform image whatever is missing of: an SPDX SBOM, SLSA
v1 provenance, the mirror predicate and a cosign signature — Sigstore bundles stored as OCI
referrers (or the referrers tag schema on registries without the API). sync does this after
publishing; attest on its own re-attests versions published before signing was configured, or
with a new key. Images built by an earlier run get provenance from the config alone.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := positive("parallel", parallel); err != nil {
				return err
			}
			cfg, err := g.loadConfig()
			if err != nil {
				return err
			}
			if cfg.Sign.Off {
				return usage(errors.New("sign: off in the config: configure sign: {key: …} or {keyless: true}"))
			}
			signer, err := run.Signer(cfg.Sign)
			if err != nil {
				return usage(err)
			}
			rep, err := run.Attest(cmd.Context(), cfg, run.AttestOptions{
				Options: run.Options{Log: g.log, Version: versionString()}, Parallel: parallel, Signer: signer,
			})
			if err != nil {
				return failed(err)
			}
			if g.json {
				err = report.JSON(g.stdout, rep)
			} else {
				err = report.AttestSummary(g.stdout, rep)
			}
			if err != nil {
				return err
			}
			if rep.Failed() {
				return failed(errors.New("some versions could not be attested (see above)"))
			}
			return nil
		},
	}
	cmd.Flags().IntVar(&parallel, "parallel", 2, "versions attested at once")
	return cmd
}

// verifyFlags are verify's own flags.
type verifyFlags struct {
	key                  string
	identity, identityRE string
	issuer, issuerRE     string
	trustedRoot          string
	platforms            []string
	insecure             bool
}

func verifyCmd(g *globals) *cobra.Command {
	var f verifyFlags
	cmd := &cobra.Command{
		Use:   "verify IMAGE[:TAG|@DIGEST]",
		Short: "Check a published version: complete index, signatures and attestations on every manifest",
		Long: `verify checks that IMAGE (a registry reference, or oci:DIR/REPO[:TAG] for a layout; the tag
defaults to latest) is an image index with exactly one image per platform (--platform, else the
config's platforms when -c names a readable config, else linux/amd64 and linux/arm64), and that
the index and every image carry a signature, an SPDX SBOM, SLSA provenance and the mirror
predicate, each verifying with --key (a cosign.pub) or, keyless, a Fulcio certificate for the
given identity. It prints one row per manifest and exits 0 only if everything holds, 1 if not.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			v, err := f.verifier()
			if err != nil {
				return usage(err)
			}
			prefix, repo, tag, digest, err := target.SplitImage(args[0])
			if err != nil {
				return usage(err)
			}
			want := f.platforms
			if len(want) == 0 {
				want = g.configPlatforms(cmd, repo)
			}
			tgt, err := target.New(config.Target{Registry: prefix, Insecure: f.insecure})
			if err != nil {
				return usage(err)
			}
			ctx := cmd.Context()
			if digest.Hex == "" {
				st, err := tgt.Inspect(ctx, repo, tag)
				if err != nil {
					return failed(err)
				}
				if !st.Exists {
					return failed(fmt.Errorf("%s:%s does not exist", tgt.Ref(repo), tag))
				}
				if digest, err = v1.NewHash(st.Digest); err != nil {
					return failed(err)
				}
			}
			rep := attest.Verify(ctx, tgt, v, repo, digest, want)
			if g.json {
				err = report.JSON(g.stdout, rep)
			} else {
				err = report.VerifyTable(g.stdout, rep)
			}
			if err != nil {
				return err
			}
			if !rep.OK() {
				return failed(errors.New(""))
			}
			return nil
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&f.key, "key", "", "public key (PEM, as cosign.pub) the bundles must verify with")
	fl.StringVar(&f.identity, "certificate-identity", "", "keyless: the signer's identity (e-mail or workflow URL)")
	fl.StringVar(&f.identityRE, "certificate-identity-regexp", "", "keyless: a regular expression the identity must match")
	fl.StringVar(&f.issuer, "certificate-oidc-issuer", "", "keyless: the identity's OIDC issuer")
	fl.StringVar(&f.issuerRE, "certificate-oidc-issuer-regexp", "", "keyless: a regular expression the issuer must match")
	fl.StringVar(&f.trustedRoot, "trusted-root", "", "keyless: a Sigstore trusted_root.json (default: the public-good root, fetched through TUF)")
	fl.StringSliceVar(&f.platforms, "platform", nil, "platforms the index must have (repeatable)")
	fl.BoolVar(&f.insecure, "insecure", false, "the registry speaks plain HTTP or has an unverified certificate (loopback registries always may)")
	return cmd
}

// verifier makes the bundle verifier the flags describe.
func (f verifyFlags) verifier() (*sign.Verifier, error) {
	keyless := f.identity != "" || f.identityRE != "" || f.issuer != "" || f.issuerRE != ""
	switch {
	case f.key != "" && keyless:
		return nil, errors.New("--key and --certificate-* exclude each other")
	case f.key != "":
		pem, err := os.ReadFile(f.key)
		if err != nil {
			return nil, fmt.Errorf("--key: %w", err)
		}
		return sign.NewKeyVerifier(pem)
	case keyless:
		if (f.identity == "" && f.identityRE == "") || (f.issuer == "" && f.issuerRE == "") {
			return nil, errors.New("keyless verification needs --certificate-identity[-regexp] and --certificate-oidc-issuer[-regexp]")
		}
		var trusted root.TrustedMaterial
		var err error
		if f.trustedRoot != "" {
			trusted, err = root.NewTrustedRootFromPath(f.trustedRoot)
		} else {
			trusted, err = root.FetchTrustedRoot()
		}
		if err != nil {
			return nil, fmt.Errorf("trusted root: %w", err)
		}
		return sign.NewKeylessVerifier(trusted, sign.Identity{
			Subject: f.identity, SubjectRegexp: f.identityRE, Issuer: f.issuer, IssuerRegexp: f.issuerRE,
		})
	}
	return nil, errors.New("pass --key cosign.pub, or --certificate-identity and --certificate-oidc-issuer")
}

// configPlatforms are the platforms the config gives repo's app when -c names a config that
// loads, else linux/amd64 and linux/arm64.
func (g *globals) configPlatforms(cmd *cobra.Command, repo string) []string {
	def := []string{"linux/amd64", "linux/arm64"}
	if !cmd.Flags().Changed("config") {
		if _, err := os.Stat(g.config); err != nil {
			return def
		}
	}
	cfg, err := config.Load(g.config, discover.SourceKinds())
	if err != nil {
		return def
	}
	for _, a := range cfg.Apps {
		for _, c := range a.Components {
			if c.Name == repo {
				var out []string
				for _, p := range a.Platforms {
					out = append(out, p.String())
				}
				return out
			}
		}
	}
	return def
}
