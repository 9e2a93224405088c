package sign

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"sync"
	"time"

	sgsign "github.com/sigstore/sigstore-go/pkg/sign"
	"google.golang.org/protobuf/encoding/protojson"
)

// InTotoPayloadType is the DSSE payload type of in-toto statements.
const InTotoPayloadType = "application/vnd.in-toto+json"

// Public-good Sigstore instances, the defaults of keyless signing.
const (
	DefaultFulcioURL = "https://fulcio.sigstore.dev"
	DefaultRekorURL  = "https://rekor.sigstore.dev"
)

// Signer turns in-toto statements into Sigstore bundles. It is safe for concurrent use.
type Signer struct {
	keypair sgsign.Keypair
	opts    sgsign.BundleOptions
	keyless bool
}

// NewKeySigner signs with k, offline: the bundle's verification material is k's public key
// hint, with no certificate and no transparency-log entry (verifiers pass
// --insecure-ignore-tlog, as for `cosign sign --key --tlog-upload=false`).
func NewKeySigner(k *Key) *Signer {
	return &Signer{keypair: k}
}

// Keyless configures signing with a short-lived Fulcio certificate for an OIDC identity.
type Keyless struct {
	FulcioURL string // default DefaultFulcioURL
	RekorURL  string // default DefaultRekorURL; "off" for no transparency-log entry
	// IDToken returns the OIDC identity token Fulcio certifies (see IDToken in oidc.go). It is
	// called once, on the first signature.
	IDToken func(ctx context.Context) (string, error)
	Timeout time.Duration // per request to Fulcio or Rekor, default 30s
}

// NewKeylessSigner signs with an ephemeral key that Fulcio certifies once, on first use, for
// the identity in the OIDC token, and records every signature in Rekor: the bundles carry the
// certificate and the log entry, and verify against the Sigstore trusted root and an identity.
func NewKeylessSigner(kl Keyless) (*Signer, error) {
	if kl.IDToken == nil {
		return nil, errors.New("keyless signing: no identity token source")
	}
	if kl.FulcioURL == "" {
		kl.FulcioURL = DefaultFulcioURL
	}
	if kl.RekorURL == "" {
		kl.RekorURL = DefaultRekorURL
	}
	kp, err := sgsign.NewEphemeralKeypair(nil)
	if err != nil {
		return nil, fmt.Errorf("keyless signing: %w", err)
	}
	s := &Signer{keypair: kp, keyless: true}
	s.opts.CertificateProvider = &onceCert{
		next:  sgsign.NewFulcio(&sgsign.FulcioOptions{BaseURL: kl.FulcioURL, Timeout: kl.Timeout}),
		token: kl.IDToken,
	}
	if kl.RekorURL != "off" {
		s.opts.TransparencyLogs = []sgsign.Transparency{
			sgsign.NewRekor(&sgsign.RekorOptions{BaseURL: kl.RekorURL, Timeout: kl.Timeout}),
		}
	}
	return s, nil
}

// Keyless reports whether s signs with Fulcio certificates.
func (s *Signer) Keyless() bool { return s.keyless }

// ID names the signer without secrets: "key:<hint>" (base64 of the SHA-256 of the public key's
// DER, the hint in the bundles' verification material) or "keyless".
func (s *Signer) ID() string {
	if s.keyless {
		return "keyless"
	}
	return "key:" + string(s.keypair.GetHint())
}

// Bundle signs statement (an in-toto statement's JSON) into a DSSE envelope and returns the
// Sigstore bundle (v0.3) as protobuf JSON, the blob cosign stores as a referrer.
func (s *Signer) Bundle(ctx context.Context, statement []byte) ([]byte, error) {
	opts := s.opts
	opts.Context = ctx
	b, err := sgsign.Bundle(&sgsign.DSSEData{Data: statement, PayloadType: InTotoPayloadType}, s.keypair, opts)
	if err != nil {
		return nil, fmt.Errorf("sign bundle: %w", err)
	}
	out, err := protojson.Marshal(b)
	if err != nil {
		return nil, fmt.Errorf("sign bundle: %w", err)
	}
	return out, nil
}

// onceCert asks Fulcio for one certificate for the signer's ephemeral key and reuses it for every
// bundle (Fulcio certificates live ten minutes; a run signs many manifests, and cosign too signs
// everything of one invocation with one certificate). A failure is retried on the next call.
type onceCert struct {
	next  sgsign.CertificateProvider
	token func(ctx context.Context) (string, error)

	mu      sync.Mutex
	der     []byte
	expires time.Time
}

func (c *onceCert) GetCertificate(ctx context.Context, kp sgsign.Keypair, _ *sgsign.CertificateProviderOptions) ([]byte, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.der != nil && time.Now().Before(c.expires) {
		return c.der, nil
	}
	tok, err := c.token(ctx)
	if err != nil {
		return nil, fmt.Errorf("identity token: %w", err)
	}
	der, err := c.next.GetCertificate(ctx, kp, &sgsign.CertificateProviderOptions{IDToken: tok})
	if err != nil {
		return nil, fmt.Errorf("fulcio: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("fulcio: certificate: %w", err)
	}
	c.der = der
	// Leave a margin: each Rekor entry must be integrated while the certificate is valid.
	c.expires = cert.NotAfter.Add(-2 * time.Minute)
	return der, nil
}
