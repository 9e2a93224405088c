package build

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/moby/buildkit/client"
	"github.com/moby/buildkit/exporter/containerimage/exptypes"
	"github.com/moby/buildkit/identity"
	"github.com/moby/buildkit/session"
	ocispecs "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/tonistiigi/fsutil"

	"github.com/archmirror/archmirror/internal/config"
	"github.com/archmirror/archmirror/internal/untrusted"
)

// DefaultAddress is where buildkitd listens when neither the config nor BUILDKIT_HOST says.
const DefaultAddress = "unix:///run/buildkit/buildkitd.sock"

// HostEnv is the environment variable buildctl and buildx read the BuildKit address from.
const HostEnv = "BUILDKIT_HOST"

// Address is the BuildKit endpoint to use: configured if set, else $BUILDKIT_HOST, else
// DefaultAddress.
func Address(configured string) string {
	if configured != "" {
		return configured
	}
	if v := os.Getenv(HostEnv); v != "" {
		return v
	}
	return DefaultAddress
}

// BuildKit is a Builder that talks to one buildkitd (any platform it can run, natively or
// through QEMU) with BuildKit's Go client and its built-in Dockerfile frontend.
type BuildKit struct {
	addr string
	o    options

	mu              sync.Mutex
	c               *client.Client
	buildkitVersion string // of c's buildkitd, once asked
}

var _ Builder = (*BuildKit)(nil)

// Option configures a BuildKit.
type Option func(*options)

type options struct {
	pingTimeout time.Duration
	keychain    authn.Keychain
	clientOpts  []client.ClientOpt
	tls         *config.NodeTLS
	session     []session.Attachable
	tailLines   int

	inputsTimeout time.Duration
}

// WithPingTimeout bounds the call that checks buildkitd answers before each build (default 10s).
func WithPingTimeout(d time.Duration) Option { return func(o *options) { o.pingTimeout = d } }

// WithKeychain gives buildkitd the credentials it asks for when it pulls base images, pushes
// results and reads or writes the cache. The default is authn.DefaultKeychain (Docker config
// and credential helpers), as for the registry target.
func WithKeychain(k authn.Keychain) Option { return func(o *options) { o.keychain = k } }

// WithClientOptions passes options to BuildKit's client.New (mutual TLS from the config is
// WithTLS).
func WithClientOptions(opts ...client.ClientOpt) Option {
	return func(o *options) { o.clientOpts = append(o.clientOpts, opts...) }
}

// WithSession attaches more session providers (secrets, SSH agents) to every build.
func WithSession(a ...session.Attachable) Option {
	return func(o *options) { o.session = append(o.session, a...) }
}

// WithTailLines sets how many log lines of the failed step a build error quotes (default 10).
func WithTailLines(n int) Option { return func(o *options) { o.tailLines = n } }

// NewBuildKit returns a builder for the buildkitd at addr ("unix:///run/buildkit/buildkitd.sock",
// "tcp://host:1234", or an address of a connection helper: "docker-container://NAME",
// "podman-container://NAME", "nerdctl-container://NAME", "kube-pod://POD", "ssh://user@host";
// "" means Address("")). Nothing is dialled until the first Build. ForNode is NewBuildKit for
// a configured node, with its TLS.
func NewBuildKit(addr string, opts ...Option) *BuildKit {
	o := options{pingTimeout: 10 * time.Second, keychain: authn.DefaultKeychain, tailLines: 10, inputsTimeout: defaultInputsTimeout}
	for _, opt := range opts {
		opt(&o)
	}
	return &BuildKit{addr: Address(addr), o: o}
}

// Addr is the endpoint this builder talks to.
func (b *BuildKit) Addr() string { return b.addr }

// Close closes the connection to buildkitd, if any.
func (b *BuildKit) Close() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.c == nil {
		return nil
	}
	err := b.c.Close()
	b.c, b.buildkitVersion = nil, ""
	return err
}

// Platforms checks that buildkitd answers and returns the platforms its workers can build
// ("linux/amd64", "linux/arm64", …).
func (b *BuildKit) Platforms(ctx context.Context) ([]string, error) {
	c, err := b.client(ctx)
	if err != nil {
		return nil, err
	}
	pctx, cancel := context.WithTimeout(ctx, b.o.pingTimeout)
	defer cancel()
	workers, err := c.ListWorkers(pctx)
	if err != nil {
		return nil, fmt.Errorf("buildkit %s: not answering: %w", b.addr, err)
	}
	if len(workers) == 0 {
		return nil, fmt.Errorf("buildkit %s: no workers", b.addr)
	}
	var ps []string
	for _, w := range workers {
		for _, p := range w.Platforms {
			s := p.OS + "/" + p.Architecture
			if p.Variant != "" && !(p.Architecture == "arm64" && p.Variant == "v8") {
				s += "/" + p.Variant
			}
			if !slices.Contains(ps, s) {
				ps = append(ps, s)
			}
		}
	}
	return ps, nil
}

func (b *BuildKit) client(ctx context.Context) (*client.Client, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.c != nil {
		return b.c, nil
	}
	if err := checkHelperCLI(b.addr); err != nil {
		return nil, fmt.Errorf("buildkit %s: %w", b.addr, err)
	}
	opts := b.o.clientOpts
	if b.o.tls != nil {
		tlsOpts, cleanup, err := tlsOptions(b.o.tls)
		if err != nil {
			return nil, fmt.Errorf("buildkit %s: %w", b.addr, err)
		}
		defer cleanup()
		opts = append(slices.Clip(opts), tlsOpts...)
	}
	c, err := client.New(ctx, b.addr, opts...)
	if err != nil {
		return nil, fmt.Errorf("buildkit %s: %w", b.addr, err)
	}
	b.c = c
	return c, nil
}

// Build builds s with the Dockerfile frontend and stores the image, a single manifest, where s
// says. Errors start with the job ID (which names the app and the version), and are safe to
// print: control characters that the upstream's Dockerfile or build output put in them are
// escaped.
func (b *BuildKit) Build(ctx context.Context, s Spec) (Result, error) {
	start := time.Now()
	res, err := b.build(ctx, s)
	if err != nil {
		return Result{}, fmt.Errorf("%s: %w", jobName(s.JobID), cleanError(err))
	}
	res.Platform = s.Platform.String()
	res.Duration = time.Since(start)
	return res, nil
}

func (b *BuildKit) build(ctx context.Context, s Spec) (Result, error) {
	if err := check(s); err != nil {
		return Result{}, err
	}
	g, err := gitContext(s.Context)
	if err != nil {
		return Result{}, err
	}
	// A local Dockerfile is read and patched before buildkitd is even asked, so patch drift is
	// reported the same with or without a builder.
	var src source
	var patched []byte
	if g == nil {
		if s.Context, err = contextDir(s.Context); err != nil {
			return Result{}, err
		}
		if src, err = localDockerfile(s.Context, dockerfileName(s)); err != nil {
			return Result{}, err
		}
		if patched, err = Apply(src.data, s.Patches, src.where); err != nil {
			return Result{}, err
		}
	}

	platforms, err := b.Platforms(ctx)
	if err != nil {
		return Result{}, err
	}
	c, err := b.client(ctx)
	if err != nil {
		return Result{}, err
	}
	log := s.Log
	if log == nil {
		log = io.Discard
	}
	sess := append([]session.Attachable{authProvider(b.o.keychain)}, b.o.session...)

	if g != nil {
		if src, err = b.gitDockerfile(ctx, c, g, dockerfileName(s), sess, log); err != nil {
			return Result{}, err
		}
		if patched, err = Apply(src.data, s.Patches, src.where); err != nil {
			return Result{}, err
		}
	}
	dir, err := os.MkdirTemp("", "archmirror-dockerfile-")
	if err != nil {
		return Result{}, err
	}
	defer os.RemoveAll(dir)
	if err := os.WriteFile(filepath.Join(dir, "Dockerfile"), patched, 0o644); err != nil {
		return Result{}, err
	}
	if src.ignore != nil {
		if err := os.WriteFile(filepath.Join(dir, "Dockerfile.dockerignore"), src.ignore, 0o644); err != nil {
			return Result{}, err
		}
	}

	opt, err := solveOpt(s, g != nil, dir, sess)
	if err != nil {
		return Result{}, err
	}
	var out *layoutWriter
	if s.Layout != "" {
		out = newLayoutWriter(s.Layout)
		opt.Exports[0].Output = out.open
	}

	// a known ref, to read the build's record from buildkitd's history afterwards
	opt.Ref = identity.NewID()
	prog := newProgress(log, b.o.tailLines)
	prog.onStep = s.Step
	started := time.Now()
	resp, err := c.Solve(ctx, nil, opt, prog.ch)
	finished := time.Now()
	prog.wait()
	if out != nil {
		if werr := out.wait(); werr != nil { // the cause when the solve failed writing to us
			err = fmt.Errorf("write to OCI layout %s: %w", s.Layout, werr)
		}
	}
	if err != nil {
		err = prog.explain(err)
		if p := s.Platform.String(); !slices.Contains(platforms, p) {
			err = fmt.Errorf("%w\n(buildkit %s lists no %s worker; for emulation install qemu-user-static and enable binfmt_misc)", err, b.addr, p)
		}
		return Result{}, err
	}
	var res Result
	if out != nil {
		res, err = out.result(resp.ExporterResponse)
	} else {
		res, err = pushed(resp.ExporterResponse)
	}
	if err != nil {
		return Result{}, err
	}
	res.Inputs = b.inputs(ctx, c, opt.Ref, started, finished, src.pin, s.Args, log)
	return res, nil
}

// check rejects a Spec that cannot be built, before anything is fetched.
func check(s Spec) error {
	switch {
	case s.Platform.OS == "" || s.Platform.Arch == "":
		return errors.New("no platform")
	case (s.Push == "") == (s.Layout == ""):
		return errors.New("want exactly one output: Push or Layout")
	case s.Context == "":
		return errors.New("no build context")
	}
	if s.Dockerfile != "" && !filepath.IsLocal(s.Dockerfile) {
		return fmt.Errorf("dockerfile %s: want a path inside the context", untrusted.Quote(s.Dockerfile, maxQuoted))
	}
	return checkStrings(s)
}

// epochArg is the build arg the Dockerfile frontend takes the image's timestamps from.
const epochArg = "SOURCE_DATE_EPOCH"

// solveOpt is the Dockerfile frontend request for s, reading the (patched) Dockerfile from the
// local directory dockerfileDir. For a Layout it leaves the OCI exporter's Output to the
// caller.
func solveOpt(s Spec, git bool, dockerfileDir string, sess []session.Attachable) (client.SolveOpt, error) {
	dfFS, err := fsutil.NewFS(dockerfileDir)
	if err != nil {
		return client.SolveOpt{}, err
	}
	attrs := map[string]string{
		"platform": s.Platform.String(),
		"filename": "Dockerfile",
		// Read the Dockerfile from the "dockerfile" local mount even when the context is a
		// git URL (without this key the frontend reads the unpatched one from the repository).
		"dockerfilekey": "dockerfile",
	}
	for k, v := range s.Args {
		attrs["build-arg:"+k] = v
	}
	for k, v := range s.Labels {
		attrs["label:"+k] = v
	}
	exp := map[string]string{"oci-mediatypes": "true"}
	if !s.SourceDateEpoch.IsZero() {
		// The frontend stamps the config and history with the build arg, and the exporter
		// clamps the layers' file times to its own copy: without rewrite-timestamp every
		// file a RUN or COPY touches keeps the time of the build. An explicit build arg
		// wins; BuildKit then gives the exporter the arg's epoch itself.
		if _, ok := s.Args[epochArg]; !ok {
			epoch := strconv.FormatInt(s.SourceDateEpoch.Unix(), 10)
			attrs["build-arg:"+epochArg] = epoch
			exp[string(exptypes.OptKeySourceDateEpoch)] = epoch
		}
		exp[string(exptypes.OptKeyRewriteTimestamp)] = "true"
	}
	opt := client.SolveOpt{
		Frontend:      "dockerfile.v0",
		FrontendAttrs: attrs,
		LocalMounts:   map[string]fsutil.FS{"dockerfile": dfFS},
		Session:       sess,
	}
	if git {
		attrs["context"] = s.Context // fetched by buildkitd itself
	} else {
		ctxFS, err := fsutil.NewFS(s.Context)
		if err != nil {
			return client.SolveOpt{}, fmt.Errorf("context %s: %w", s.Context, err)
		}
		opt.LocalMounts["context"] = ctxFS
	}
	switch {
	case s.Push != "":
		exp["name"] = s.Push
		exp["push"] = "true"
		exp["push-by-digest"] = "true"
		exp["name-canonical"] = "true"
		if s.Insecure {
			exp["registry.insecure"] = "true"
		}
		opt.Exports = []client.ExportEntry{{Type: client.ExporterImage, Attrs: exp}}
	case s.Layout != "":
		// Build sets the Output: a layoutWriter into s.Layout
		opt.Exports = []client.ExportEntry{{Type: client.ExporterOCI, Attrs: exp}}
	}
	if s.CacheRef != "" {
		imp := map[string]string{"ref": s.CacheRef}
		exp := map[string]string{"ref": s.CacheRef, "mode": "max"}
		if s.Insecure {
			imp["registry.insecure"], exp["registry.insecure"] = "true", "true"
		}
		opt.CacheImports = []client.CacheOptionsEntry{{Type: "registry", Attrs: imp}}
		opt.CacheExports = []client.CacheOptionsEntry{{Type: "registry", Attrs: exp}}
	}
	return opt, nil
}

// pushed reads the result of an image export. For a single-platform build without attestations
// BuildKit pushes one image manifest, and containerimage.digest and containerimage.descriptor
// are that manifest's (with attestations they would be an index's: we never ask for any).
func pushed(resp map[string]string) (Result, error) {
	dgst := resp[exptypes.ExporterImageDigestKey]
	if dgst == "" {
		return Result{}, errors.New("buildkit returned no image digest")
	}
	res := Result{Digest: dgst}
	if b64 := resp[exptypes.ExporterImageDescriptorKey]; b64 != "" {
		desc, err := decodeDescriptor(b64)
		if err != nil {
			return Result{}, err
		}
		if desc.Digest.String() != dgst {
			return Result{}, fmt.Errorf("buildkit returned digest %s but descriptor %s", dgst, desc.Digest)
		}
		res.MediaType, res.Size = desc.MediaType, desc.Size
	}
	if !isManifest(res.MediaType) {
		return Result{}, fmt.Errorf("buildkit pushed %s %s, want an image manifest", res.MediaType, dgst)
	}
	return res, nil
}

func decodeDescriptor(b64 string) (ocispecs.Descriptor, error) {
	var desc ocispecs.Descriptor
	dt, err := base64.StdEncoding.DecodeString(b64)
	if err == nil {
		err = json.Unmarshal(dt, &desc)
	}
	if err != nil {
		return desc, fmt.Errorf("buildkit returned a bad image descriptor: %w", err)
	}
	return desc, nil
}

func isManifest(mt string) bool {
	return mt == ocispecs.MediaTypeImageManifest || mt == "application/vnd.docker.distribution.manifest.v2+json"
}
