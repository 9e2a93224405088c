package sign

import (
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	protobundle "github.com/sigstore/protobuf-specs/gen/pb-go/bundle/v1"
	"github.com/sigstore/sigstore-go/pkg/bundle"
	"github.com/sigstore/sigstore-go/pkg/fulcio/certificate"
	"github.com/sigstore/sigstore-go/pkg/root"
	"github.com/sigstore/sigstore-go/pkg/verify"
	"github.com/sigstore/sigstore/pkg/cryptoutils"
	"github.com/sigstore/sigstore/pkg/signature"
	"google.golang.org/protobuf/encoding/protojson"
)

// Verifier checks bundles made by a Signer: with a public key (what `cosign verify --key
// cosign.pub --insecure-ignore-tlog` accepts), or keyless against a Sigstore trusted root and
// an expected certificate identity. It is safe for concurrent use.
type Verifier struct {
	v      *verify.Verifier
	policy []verify.PolicyOption
}

// NewKeyVerifier verifies bundles signed by the private half of pubPEM (a PKIX "PUBLIC KEY"
// PEM, cosign.pub). Bundles need no transparency-log entry or timestamp.
func NewKeyVerifier(pubPEM []byte) (*Verifier, error) {
	pub, err := cryptoutils.UnmarshalPEMToPublicKey(pubPEM)
	if err != nil {
		return nil, fmt.Errorf("public key: %w", err)
	}
	alg, err := signature.GetDefaultAlgorithmDetails(pub)
	if err != nil {
		return nil, fmt.Errorf("public key: %w", err)
	}
	sv, err := signature.LoadVerifierFromAlgorithmDetails(pub, alg)
	if err != nil {
		return nil, fmt.Errorf("public key: %w", err)
	}
	key := root.NewExpiringKey(sv, time.Time{}, time.Time{})
	tm := root.NewTrustedPublicKeyMaterial(func(string) (root.TimeConstrainedVerifier, error) { return key, nil })
	v, err := verify.NewVerifier(tm, verify.WithNoObserverTimestamps())
	if err != nil {
		return nil, fmt.Errorf("verifier: %w", err)
	}
	return &Verifier{v: v, policy: []verify.PolicyOption{verify.WithKey()}}, nil
}

// Identity is the certificate identity a keyless signature must carry: the OIDC subject (an
// e-mail, or a workflow URL for GitHub Actions) and issuer, each exact or as a regular expression.
type Identity struct {
	Subject, SubjectRegexp string
	Issuer, IssuerRegexp   string
}

// NewKeylessVerifier verifies bundles with a Fulcio certificate for id, a Rekor entry and a
// signed certificate timestamp, against trusted (the Sigstore public-good root from TUF, or a
// trusted_root.json: root.NewTrustedRootFromPath).
func NewKeylessVerifier(trusted root.TrustedMaterial, id Identity) (*Verifier, error) {
	san, err := verify.NewSANMatcher(id.Subject, id.SubjectRegexp)
	if err != nil {
		return nil, fmt.Errorf("identity: %w", err)
	}
	iss, err := verify.NewIssuerMatcher(id.Issuer, id.IssuerRegexp)
	if err != nil {
		return nil, fmt.Errorf("identity: %w", err)
	}
	ci, err := verify.NewCertificateIdentity(san, iss, certificate.Extensions{})
	if err != nil {
		return nil, fmt.Errorf("identity: %w", err)
	}
	v, err := verify.NewVerifier(trusted, verify.WithTransparencyLog(1), verify.WithSignedCertificateTimestamps(1),
		verify.WithIntegratedTimestamps(1))
	if err != nil {
		return nil, fmt.Errorf("verifier: %w", err)
	}
	return &Verifier{v: v, policy: []verify.PolicyOption{verify.WithCertificateIdentity(ci)}}, nil
}

// Statement is the in-toto statement of a verified bundle.
type Statement struct {
	PredicateType string          `json:"predicateType"`
	Predicate     json.RawMessage `json:"predicate"`
}

// Verify checks that bundleJSON is a valid Sigstore bundle (v0.3 or later) whose DSSE envelope
// is signed as v expects and whose in-toto statement names digest as a subject, and returns the
// statement.
func (v *Verifier) Verify(bundleJSON []byte, digest v1.Hash) (Statement, error) {
	pb := &protobundle.Bundle{}
	if err := protojson.Unmarshal(bundleJSON, pb); err != nil {
		return Statement{}, fmt.Errorf("bundle: %w", err)
	}
	b, err := bundle.NewBundle(pb)
	if err != nil {
		return Statement{}, fmt.Errorf("bundle: %w", err)
	}
	if !b.MinVersion("v0.3") {
		return Statement{}, errors.New("bundle: older than v0.3")
	}
	raw, err := hex.DecodeString(digest.Hex)
	if err != nil || digest.Algorithm == "" {
		return Statement{}, fmt.Errorf("digest %q: not a valid digest", digest)
	}
	res, err := v.v.Verify(b, verify.NewPolicy(verify.WithArtifactDigest(digest.Algorithm, raw), v.policy...))
	if err != nil {
		return Statement{}, err
	}
	if res.Statement == nil {
		return Statement{}, errors.New("bundle: no in-toto statement")
	}
	pred, err := protojson.Marshal(res.Statement.GetPredicate())
	if err != nil {
		return Statement{}, fmt.Errorf("bundle: predicate: %w", err)
	}
	return Statement{PredicateType: res.Statement.GetPredicateType(), Predicate: pred}, nil
}
