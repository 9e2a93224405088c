package target

// Referrers on a registry (OCI 1.1). A registry with the referrers API lists a manifest's
// referrers itself, from their subject fields: Attach PUTs the artifact manifest and is done.
// One without it (distribution 2.8, Debian's docker-registry: a plain 404) needs the
// distribution spec's referrers tag schema: an OCI image index tagged sha256-<hex of the
// subject> listing the referrers' descriptors, which the writer of each referrer updates.
//
// Which kind the registry is, the target asks once: the first Referrers or Attach GETs
// /v2/<repo>/referrers/<digest>. 200 with an OCI index is the API (and that answer is the
// listing asked for); 404, 400, 405 or 406 is not. The answer is kept for the target's life.
// A 404 naming NAME_UNKNOWN is a repo that does not exist, which decides nothing; a manifest
// PUT answered with OCI-Subject proves the API too.
//
// The fallback index has no compare-and-swap: two writers that each read it, add their entry
// and PUT it leave only the last one's entry. So:
//   - in this process, updates of one fallback tag take turns (registryLocks, shared by every
//     target of the process), and reads of it wait for them;
//   - an update merges: it reads the index, keeps every entry and field it has, adds its own,
//     sorts the entries by digest and PUTs it;
//   - against other processes it checks afterwards: after a delay longer than its own
//     read-to-PUT took (twice that, plus tens of milliseconds and some jitter, doubled after
//     each collision), it reads the index again and, if its entry is gone (a writer that read
//     before our PUT landed wrote after it), merges and PUTs again, fallbackAttempts times at
//     most.
//
// What is left: a writer whose read-to-PUT window is longer than our delay (a slow link, a
// stalled process) can still drop our entry after we looked. The referrer manifest itself
// stays in the repo, only the listing misses it, and the next attest run repairs that:
// Attach checks the listing first and adds an entry that is missing. The price is time: an
// update holds its tag for a few tens of milliseconds after its PUT, so N referrers of one
// subject attached by one process take N times that (different subjects do not wait for each
// other). A registry with the referrers API pays none of this.
//
// Writers racing on one name also trip over distribution's filesystem storage, which writes a
// tag's or a blob's link file in place: a read that meets another writer's half-written link
// is answered 500 (docker-registry 2.8, three processes attaching at once, in
// TestAttachAcrossProcesses). The target's retry policy absorbs it like any other 500: its
// transport repeats the reads, and a blob upload is started over (retry.Policy.Do).
//
// go-containerregistry's remote.Write and remote.Put do the fallback themselves for a
// manifest with a subject, but they probe the referrers API on every such PUT and rewrite the
// fallback index with nothing against concurrent writers (its own TODO in
// commitSubjectReferrers). So the artifact manifest and the fallback index are PUT here, by
// hand, through the target's one transport (rewind replays the body after a 401).

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/partial"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/archmirror/archmirror/internal/bounded"
	"github.com/archmirror/archmirror/internal/retry"
	"github.com/archmirror/archmirror/internal/untrusted"
)

// What the target knows of the registry's referrers API.
const (
	apiUnknown int32 = iota
	apiYes
	apiNo
)

const (
	// fallbackAttempts bounds the PUTs of one fallback index update that other writers undo.
	fallbackAttempts = 5
	// minSettle is the least wait before checking that a fallback index PUT stuck.
	minSettle = 30 * time.Millisecond
	// maxReferrersPages bounds a referrers API listing that keeps saying there is more.
	maxReferrersPages = 100
)

// Referrers asks the referrers API, or reads the fallback index, whichever the registry has.
func (r *registry) Referrers(ctx context.Context, repo string, d v1.Hash) ([]v1.Descriptor, error) {
	return byDigest(ctx, r, "referrers", repo, d, func(nrepo name.Repository, rt http.RoundTripper, opts []remote.Option) ([]v1.Descriptor, error) {
		return r.referrers(ctx, rt, nrepo, d, opts)
	})
}

// referrers lists d's referrers in repo, sorted by digest, with what a listing lacks filled
// in from the manifests (complete).
func (r *registry) referrers(ctx context.Context, rt http.RoundTripper, repo name.Repository, d v1.Hash, opts []remote.Option) ([]v1.Descriptor, error) {
	descs, err := r.list(ctx, rt, repo, d, opts)
	if err != nil {
		return nil, err
	}
	descs = sortReferrers(descs)
	r.complete(repo, descs, opts)
	return descs, nil
}

func (r *registry) list(ctx context.Context, rt http.RoundTripper, repo name.Repository, d v1.Hash, opts []remote.Option) ([]v1.Descriptor, error) {
	for {
		switch r.api.Load() {
		case apiYes:
			descs, answer, err := r.listAPI(ctx, rt, repo, d)
			if err == nil && answer == apiNo {
				err = errors.New("referrers API: the registry had it and no longer answers it")
			}
			return descs, err
		case apiNo:
			return r.listFallback(ctx, repo, d, opts)
		}
		descs, answer, asked, err := r.probe(ctx, rt, repo, d)
		switch {
		case err != nil:
			return nil, err
		case !asked: // another caller had the answer first
			continue
		case answer == apiNo:
			return r.listFallback(ctx, repo, d, opts)
		}
		return descs, nil // the API's listing, or no repo (undecided): none
	}
}

// probe asks the registry for d's referrers while the target does not know whether it has
// the API, and keeps a decisive answer. One caller asks at a time; one that finds the answer
// known once its turn comes asks nothing (asked is false).
func (r *registry) probe(ctx context.Context, rt http.RoundTripper, repo name.Repository, d v1.Hash) (descs []v1.Descriptor, answer int32, asked bool, err error) {
	select {
	case r.probing <- struct{}{}:
	case <-ctx.Done():
		return nil, apiUnknown, false, ctx.Err()
	}
	defer func() { <-r.probing }()
	if r.api.Load() != apiUnknown {
		return nil, apiUnknown, false, nil
	}
	descs, answer, err = r.listAPI(ctx, rt, repo, d)
	if err != nil {
		return nil, apiUnknown, true, err
	}
	if answer != apiUnknown {
		r.api.Store(answer)
		r.log.Debug("referrers API probed", "supported", answer == apiYes)
	}
	return descs, answer, true, nil
}

// listAPI GETs d's referrers from the referrers API, following Link pagination. The answer
// is apiYes with the listing, apiNo when the registry has no such API, or apiUnknown when
// the repo does not exist (no referrers; the API is not decided).
func (r *registry) listAPI(ctx context.Context, rt http.RoundTripper, repo name.Repository, d v1.Hash) ([]v1.Descriptor, int32, error) {
	u := apiURL(repo, "referrers", d.String())
	var out []v1.Descriptor
	for page, next := 0, &u; next != nil; page++ {
		if page == maxReferrersPages {
			return nil, apiUnknown, fmt.Errorf("referrers API: more than %d pages", maxReferrersPages)
		}
		descs, link, answer, err := r.referrersPage(ctx, rt, repo, next, page == 0)
		if err != nil || answer != apiYes {
			return nil, answer, err
		}
		out = append(out, descs...)
		next = link
	}
	return out, apiYes, nil
}

func (r *registry) referrersPage(ctx context.Context, rt http.RoundTripper, repo name.Repository, u *url.URL, first bool) ([]v1.Descriptor, *url.URL, int32, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, nil, apiUnknown, err
	}
	req.Header.Set("Accept", string(types.OCIImageIndex))
	resp, err := client(rt).Do(req)
	if err != nil {
		return nil, nil, apiUnknown, err
	}
	defer resp.Body.Close()
	isIndex := resp.StatusCode == http.StatusOK && baseMediaType(resp.Header.Get("Content-Type")) == string(types.OCIImageIndex)
	if !isIndex && first {
		switch resp.StatusCode {
		case http.StatusOK, http.StatusBadRequest, http.StatusMethodNotAllowed, http.StatusNotAcceptable:
			return nil, nil, apiNo, nil
		case http.StatusNotFound:
			var terr *transport.Error
			if errors.As(transport.CheckError(resp), &terr) && slices.ContainsFunc(terr.Errors, func(d transport.Diagnostic) bool {
				return d.Code == transport.NameUnknownErrorCode
			}) {
				return nil, nil, apiUnknown, nil
			}
			return nil, nil, apiNo, nil
		}
	}
	if !isIndex {
		if err := transport.CheckError(resp, http.StatusOK); err != nil {
			return nil, nil, apiUnknown, r.explain(err, repo)
		}
		return nil, nil, apiUnknown, fmt.Errorf("referrers API: answered %s, not an OCI image index", untrusted.Quote(resp.Header.Get("Content-Type"), 100))
	}
	b, err := bounded.Read(resp.Body, maxManifestSize, "")
	if err != nil {
		return nil, nil, apiUnknown, fmt.Errorf("referrers API: %w", err)
	}
	var im v1.IndexManifest
	if err := json.Unmarshal(b, &im); err != nil {
		return nil, nil, apiUnknown, fmt.Errorf("referrers API: %w", err)
	}
	next, err := nextPage(resp)
	if err != nil {
		return nil, nil, apiUnknown, fmt.Errorf("referrers API: %w", err)
	}
	return im.Manifests, next, apiYes, nil
}

// nextPage is the Link header's rel="next" target, resolved against the request; nil when
// there is none. A next page on another host is refused: the credentials are for this one.
func nextPage(resp *http.Response) (*url.URL, error) {
	for _, v := range resp.Header.Values("Link") {
		for _, link := range strings.Split(v, ",") {
			target, params, _ := strings.Cut(link, ";")
			target = strings.TrimSpace(target)
			if !strings.HasPrefix(target, "<") || !strings.HasSuffix(target, ">") || !relNext(params) {
				continue
			}
			u, err := resp.Request.URL.Parse(target[1 : len(target)-1])
			if err != nil {
				return nil, fmt.Errorf("Link header: %w", err)
			}
			if u.Host != resp.Request.URL.Host {
				return nil, fmt.Errorf("Link header: next page on another host (%s)", untrusted.Quote(u.Host, 100))
			}
			return u, nil
		}
	}
	return nil, nil
}

func relNext(params string) bool {
	for _, p := range strings.Split(params, ";") {
		k, v, _ := strings.Cut(p, "=")
		if strings.TrimSpace(k) == "rel" && strings.Trim(strings.TrimSpace(v), `"`) == "next" {
			return true
		}
	}
	return false
}

// listFallback reads the entries of d's fallback index (none when it does not exist), not
// while this process writes it (distribution writes a tag's link file in place: a GET that
// reads it half-written is a 500).
func (r *registry) listFallback(ctx context.Context, repo name.Repository, d v1.Hash, opts []remote.Option) ([]v1.Descriptor, error) {
	tag := fallbackTag(d)
	unlock, err := registryLocks.lock(ctx, repo.Name()+":"+tag)
	if err != nil {
		return nil, err
	}
	raw, err := r.fallbackIndex(ctx, repo, tag, opts)
	unlock()
	if err != nil {
		return nil, fmt.Errorf("fallback tag %s: %w", tag, err)
	}
	descs, err := fallbackEntries(raw)
	if err != nil {
		return nil, fmt.Errorf("fallback tag %s: %w", tag, err)
	}
	return descs, nil
}

// fallbackIndex GETs the index tagged tag; nil when there is none. It is not cached: the tag
// moves with every referrer.
func (r *registry) fallbackIndex(ctx context.Context, repo name.Repository, tag string, opts []remote.Option) ([]byte, error) {
	got, err := r.get(repo, repo.Tag(tag), opts)
	switch {
	case errors.Is(err, errManifestUnknown):
		return nil, nil
	case err != nil:
		return nil, err
	case got.MediaType != types.OCIImageIndex:
		return nil, fmt.Errorf("it is a %s, not an OCI image index", untrusted.Quote(string(got.MediaType), 100))
	}
	return got.Manifest, nil
}

// complete fills in the artifactType of listed manifests from the manifests themselves
// (cached by digest) where the listing has none, or the empty config's media type. The spec
// makes a listing's artifactType the manifest's artifactType, else its config's media type,
// and a manifest whose config is the empty descriptor must have an artifactType: so the
// empty config's type is a registry that looked at the config only (go-containerregistry's
// pkg/registry does), and the manifest knows better. A manifest that cannot be read is left
// as listed.
func (r *registry) complete(repo name.Repository, descs []v1.Descriptor, opts []remote.Option) {
	for i, desc := range descs {
		if desc.ArtifactType != "" && desc.ArtifactType != emptyConfig {
			continue
		}
		if desc.MediaType != types.OCIManifestSchema1 && desc.MediaType != types.OCIImageIndex {
			continue
		}
		raw, err := r.manifest(repo, desc.Digest, opts)
		if err != nil {
			r.log.Debug("referrer listed without an artifactType, and its manifest cannot be read", "digest", desc.Digest.String(), "err", err)
			continue
		}
		full, _, err := referrerDescriptor(raw)
		if err != nil {
			continue
		}
		descs[i].ArtifactType = full.ArtifactType
		if descs[i].Annotations == nil {
			descs[i].Annotations = full.Annotations
		}
	}
}

// Attach checks, per subject, that the subject is there and which manifests are not listed
// already, then uploads the blobs the repo lacks, PUTs each manifest by digest, and, without the
// referrers API, adds them all to the subject's fallback index in one update.
func (r *registry) Attach(ctx context.Context, repo string, arts ...Artifact) ([]v1.Descriptor, error) {
	where := r.prefix + "/" + repo
	if err := checkRepo(repo); err != nil {
		return nil, fmt.Errorf("attach %s: %w", where, err)
	}
	as, err := parseArtifacts(arts)
	if err != nil {
		return nil, fmt.Errorf("attach %s%w", where, err)
	}
	if err := r.attach(ctx, r.reg.Repo(r.path, repo), as); err != nil {
		return nil, fmt.Errorf("attach %s%w", where, err)
	}
	return descriptors(as), nil
}

func (r *registry) attach(ctx context.Context, repo name.Repository, as []*artifact) error {
	rt, opts, err := r.options(ctx)
	if err != nil {
		return fmt.Errorf(": %w", err)
	}
	for _, group := range bySubject(as) {
		if err := r.attachTo(ctx, rt, repo, group[0].subject, group, opts); err != nil {
			return err
		}
	}
	return nil
}

// attachTo attaches the artifacts of one subject.
func (r *registry) attachTo(ctx context.Context, rt http.RoundTripper, repo name.Repository, subject v1.Hash, as []*artifact, opts []remote.Option) error {
	first := as[0].desc.Digest // errors about the subject name the first of its referrers
	if _, err := remote.Head(repo.Digest(subject.String()), opts...); err != nil {
		switch {
		case r.notFound(err, repo):
			return fmt.Errorf("@%s: subject %s: not in the repo (a referrer is attached to an image already pushed)", first, subject)
		case !incompleteHead(ctx, err): // an incomplete answer is still a 200: the subject is there
			return fmt.Errorf("@%s: subject %s: %w", first, subject, r.explain(err, repo))
		}
	}
	listed, err := r.referrers(ctx, rt, repo, subject, opts)
	if err != nil {
		return fmt.Errorf("@%s: referrers of %s: %w", first, subject, err)
	}
	var added []v1.Descriptor
	for _, a := range as {
		if slices.ContainsFunc(listed, func(l v1.Descriptor) bool { return l.Digest == a.desc.Digest }) ||
			slices.ContainsFunc(added, func(l v1.Descriptor) bool { return l.Digest == a.desc.Digest }) {
			r.log.Debug("already a referrer", "repo", repo.RepositoryStr(), "subject", subject.String(), "digest", a.desc.Digest.String())
			continue
		}
		for _, ref := range a.refs {
			content, given := a.given[ref.Digest]
			if err := r.ensureBlob(ctx, repo, ref, content, given, opts); err != nil {
				return fmt.Errorf("@%s: blob %s: %w", a.desc.Digest, ref.Digest, err)
			}
		}
		// By hand, not remote.Put: see the comment at the top.
		hdr, err := r.putManifest(ctx, rt, repo, a.desc.Digest.String(), a.raw, types.OCIManifestSchema1)
		if err != nil {
			return fmt.Errorf("@%s: manifest: %w", a.desc.Digest, err)
		}
		r.remember(a.desc.Digest, a.raw)
		if hdr.Get("OCI-Subject") != "" && r.api.CompareAndSwap(apiUnknown, apiYes) {
			r.log.Debug("referrers API: a manifest PUT answered OCI-Subject")
		}
		added = append(added, a.desc)
	}
	if len(added) == 0 || r.api.Load() == apiYes {
		r.log.Debug("attached", "repo", repo.RepositoryStr(), "subject", subject.String(), "referrers", len(added))
		return nil
	}
	tag := fallbackTag(subject)
	if err := r.addToFallback(ctx, rt, repo, tag, added, opts); err != nil {
		return fmt.Errorf("@%s: fallback tag %s: %w", added[0].Digest, tag, err)
	}
	r.log.Debug("attached", "repo", repo.RepositoryStr(), "subject", subject.String(), "referrers", len(added), "fallback", tag)
	return nil
}

// ensureBlob makes sure repo has the blob desc describes: uploads content when given (after
// go-containerregistry's HEAD finds it missing), else checks it is there. This process's
// uploads of one blob take turns: every artifact of a run has the same empty config.
func (r *registry) ensureBlob(ctx context.Context, repo name.Repository, desc v1.Descriptor, content []byte, given bool, opts []remote.Option) error {
	if given {
		unlock, err := registryLocks.lock(ctx, repo.Name()+"@"+desc.Digest.String())
		if err != nil {
			return err
		}
		defer unlock()
		// An upload broken half-way starts over, in a new upload session.
		err = r.retry.Do(ctx, r.restartable, func() error {
			return remote.WriteLayer(repo, static.NewLayer(content, desc.MediaType), opts...)
		})
		if err != nil {
			return r.explain(err, repo)
		}
		return nil
	}
	l, err := remote.Layer(repo.Digest(desc.Digest.String()), opts...)
	if err != nil {
		return err
	}
	ok, err := partial.Exists(l)
	switch {
	case err != nil:
		return r.explain(err, repo)
	case !ok:
		return errors.New("not in the repo, and not given")
	}
	return nil
}

// addToFallback adds desc to the fallback index tag, as the comment at the top describes. It
// holds this process's lock of the tag until its entry is seen to stay, waits included: a
// process that writes one tag at a time gives the others' read-to-PUT windows fewer of its
// PUTs to fall across (letting this process's writers go on while one waits made the other
// processes lose entries far more often in TestAttachAcrossProcesses).
func (r *registry) addToFallback(ctx context.Context, rt http.RoundTripper, repo name.Repository, tag string, descs []v1.Descriptor, opts []remote.Option) error {
	unlock, err := registryLocks.lock(ctx, repo.Name()+":"+tag)
	if err != nil {
		return err
	}
	defer unlock()
	for puts := 0; ; puts++ {
		start := time.Now()
		raw, err := r.fallbackIndex(ctx, repo, tag, opts)
		if err != nil {
			return err
		}
		merged, add, err := addEntries(raw, descs)
		switch {
		case err != nil:
			return err
		case !add:
			return nil // listed: by our last PUT, or by another writer
		case puts == fallbackAttempts:
			return fmt.Errorf("other writers replaced the index without these referrers %d times; gave up (attaching them again adds them)", puts)
		case puts > 0:
			r.log.Info("another writer replaced the fallback index without these referrers; adding them again",
				"repo", repo.RepositoryStr(), "tag", tag, "referrers", len(descs), "attempt", puts+1)
		}
		if _, err := r.putManifest(ctx, rt, repo, tag, merged, types.OCIImageIndex); err != nil {
			return err
		}
		// After a collision, wait longer: the other writers are busy.
		if err := retry.Sleep(ctx, retry.Settle(time.Since(start), minSettle, 0)<<puts); err != nil {
			return err
		}
	}
}

// putManifest PUTs raw, of media type mt, as repo's manifest ref (a digest or a tag), and
// returns the answer's header.
func (r *registry) putManifest(ctx context.Context, rt http.RoundTripper, repo name.Repository, ref string, raw []byte, mt types.MediaType) (http.Header, error) {
	u := apiURL(repo, "manifests", ref)
	req, err := http.NewRequestWithContext(ctx, http.MethodPut, u.String(), bytes.NewReader(raw)) // GetBody set: rewind can replay it
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", string(mt))
	resp, err := client(rt).Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if err := transport.CheckError(resp, http.StatusCreated, http.StatusOK, http.StatusAccepted); err != nil {
		return nil, r.explain(err, repo)
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	return resp.Header, nil
}

// apiURL is /v2/<repo>/<kind>/<ref> on repo's registry, with the scheme go-containerregistry
// uses for it.
func apiURL(repo name.Repository, kind, ref string) url.URL {
	return url.URL{Scheme: repo.Scheme(), Host: repo.RegistryStr(), Path: "/v2/" + repo.RepositoryStr() + "/" + kind + "/" + ref}
}

// client sends requests through rt, the target's transport.
func client(rt http.RoundTripper) *http.Client { return &http.Client{Transport: rt} }
