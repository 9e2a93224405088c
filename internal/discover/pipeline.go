package discover

import (
	"context"
	"fmt"
	"log/slog"
	"regexp"
	"slices"
	"strings"

	"github.com/Masterminds/semver/v3"
	"golang.org/x/sync/errgroup"

	"github.com/archmirror/archmirror/internal/config"
	"github.com/archmirror/archmirror/internal/untrusted"
)

// gateConcurrency bounds how many versions are gate-checked at once.
const gateConcurrency = 8

var ociTagRE = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9._-]{0,127}$`)

// ValidTag reports whether s is a valid OCI tag: [A-Za-z0-9_][A-Za-z0-9._-]{0,127}. Upstream
// strings must pass it before they reach a template, a tag, a path or a command line.
func ValidTag(s string) bool {
	return len(s) <= 128 && ociTagRE.MatchString(s)
}

// Discover runs src's releases through app's filters (drafts, pre-releases, invalid tags,
// include/exclude, version extraction, semver, constraint, duplicates), orders them by
// win.Order and keeps the first win.Max that pass gate. Every release ends up either in
// Result.Versions or in Result.Skipped, with the reason, which is also logged (warning for a
// tag that is not a valid OCI tag, info for a duplicate, debug for the routine rest). Of two
// tags of one version, the later published is kept, else the greater tag: the same one
// whatever order upstream lists them in.
//
// gate checks app.Require (see NewGate); it may be nil only when the app has no require:.
// Gates are checked lazily, in window order, so only as many candidates as the window needs
// cost requests. Logs carry no app attribute: pass WithLogger(l.With("app", name)).
func Discover(ctx context.Context, src Source, app *config.App, win config.Versions, gate Gate, opts ...Option) (Result, error) {
	o := newOptions(opts)
	name := "discover " + app.Name
	f, err := newFilters(app.Source, win)
	if err != nil {
		return Result{}, fmt.Errorf("%s: %w", name, err)
	}
	if gate == nil && len(app.Require) > 0 {
		return Result{}, fmt.Errorf("%s: require: %d gates configured but no gate checker given", name, len(app.Require))
	}
	rels, err := src.Releases(ctx)
	if err != nil {
		return Result{}, fmt.Errorf("%s: %w", name, err)
	}

	res := Result{Versions: []Version{}}
	// Every skip is logged with its reason: at debug level, as routine (drafts, filters, the
	// window), unless the caller says otherwise.
	skipAt := func(level slog.Level, tag, reason string, attrs ...any) {
		res.Skipped = append(res.Skipped, Skip{Tag: displayTag(tag), Reason: reason})
		o.logger.Log(ctx, level, "ignoring upstream tag", append([]any{"tag", displayTag(tag), "reason", reason}, attrs...)...)
	}
	skip := func(tag, reason string) { skipAt(slog.LevelDebug, tag, reason) }
	var cands []Version
	index := map[string]int{} // version → position in cands
	for _, r := range rels {
		switch {
		case r.Draft:
			skip(r.Tag, "draft")
			continue
		case r.Prerelease:
			skip(r.Tag, "pre-release")
			continue
		case !ValidTag(r.Tag):
			// Not routine: someone upstream tagged something no registry would take.
			skipAt(slog.LevelWarn, r.Tag, "not a valid OCI tag", "bytes", len(r.Tag))
			continue
		case f.include != nil && !f.include.MatchString(r.Tag):
			skip(r.Tag, "does not match include "+f.include.String())
			continue
		case f.exclude != nil && f.exclude.MatchString(r.Tag):
			skip(r.Tag, "matches exclude "+f.exclude.String())
			continue
		}
		version, sv, reason := versionFromTag(r.Tag, f.version)
		if reason != "" {
			skip(r.Tag, reason)
			continue
		}
		if f.constraints != nil && !f.constraints.Check(sv) {
			skip(r.Tag, "outside constraint "+f.constraint)
			continue
		}
		v := Version{Version: version, Semver: sv, Tag: r.Tag, Published: r.Published, Commit: r.Commit}
		if !validCommitish(v.Commit) {
			o.logger.DebugContext(ctx, "ignoring upstream commit: not a commit or ref name", "tag", r.Tag, "commit", untrusted.Quote(v.Commit, 64))
			v.Commit = ""
		}
		if i, dup := index[version]; dup {
			keep, drop := cands[i], v
			if preferDuplicate(v, cands[i]) {
				keep, drop = v, cands[i]
				cands[i] = v
			}
			why := fmt.Sprintf("duplicate of version %s (tag %s)", version, keep.Tag)
			if keep.Published.After(drop.Published) {
				why = fmt.Sprintf("duplicate of version %s (tag %s, published later)", version, keep.Tag)
			}
			// Not routine either: which of two tags becomes the image is worth a line.
			skipAt(slog.LevelInfo, drop.Tag, why, "version", version, "kept", keep.Tag)
			continue
		}
		index[version] = len(cands)
		cands = append(cands, v)
	}

	if f.order == config.OrderSemver {
		slices.SortStableFunc(cands, bySemverDesc)
	} else {
		slices.SortStableFunc(cands, byPublishedDesc)
	}

	i := 0
	for len(res.Versions) < f.max && i < len(cands) {
		batch := cands[i:min(i+f.max-len(res.Versions), len(cands))]
		i += len(batch)
		reasons, errs := checkBatch(ctx, gate, batch)
		for j, v := range batch {
			if errs[j] != nil {
				return Result{}, fmt.Errorf("%s: require: version %s: %w", name, v.Version, errs[j])
			}
			if reasons[j] != "" {
				skip(v.Tag, reasons[j])
				continue
			}
			res.Versions = append(res.Versions, v)
		}
	}
	for _, v := range cands[i:] {
		skip(v.Tag, fmt.Sprintf("outside the window of %d", f.max))
	}

	var latest *semver.Version
	for _, v := range res.Versions {
		if v.Semver.Prerelease() == "" && (latest == nil || v.Semver.GreaterThan(latest)) {
			latest, res.HighestStable = v.Semver, v.Version
		}
	}
	return res, nil
}

// preferDuplicate reports whether a wins over b, two tags of the same version ("v1.0.0" and
// "1.0.0"): the later published, else the greater tag (then commit) in byte order. The choice
// does not depend on the order upstream lists them in, so a run picks the same tag as the last.
func preferDuplicate(a, b Version) bool {
	if !a.Published.Equal(b.Published) {
		return a.Published.After(b.Published)
	}
	if a.Tag != b.Tag {
		return a.Tag > b.Tag
	}
	return a.Commit > b.Commit
}

// commitishRE is what a Version's Commit may hold: a commit hash or a ref name ("main",
// "release-10.3", "release/10.3"), nothing a label, a log or a report would choke on.
var commitishRE = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9._/+-]{0,254}$`)

func validCommitish(s string) bool { return s == "" || commitishRE.MatchString(s) }

// checkBatch gate-checks versions concurrently (bounded), keeping their order.
func checkBatch(ctx context.Context, gate Gate, batch []Version) ([]string, []error) {
	reasons := make([]string, len(batch))
	errs := make([]error, len(batch))
	if gate == nil {
		return reasons, errs
	}
	var g errgroup.Group // each version's error is its own: none stops the others
	g.SetLimit(gateConcurrency)
	for j, v := range batch {
		g.Go(func() error {
			if err := ctx.Err(); err != nil {
				errs[j] = err
				return nil
			}
			reasons[j], errs[j] = gate.Check(ctx, v)
			return nil
		})
	}
	_ = g.Wait()
	return reasons, errs
}

func bySemverDesc(a, b Version) int {
	if c := b.Semver.Compare(a.Semver); c != 0 {
		return c
	}
	return strings.Compare(a.Version, b.Version)
}

// byPublishedDesc orders dated releases newest first, then undated ones by semver.
func byPublishedDesc(a, b Version) int {
	az, bz := a.Published.IsZero(), b.Published.IsZero()
	switch {
	case az && !bz:
		return 1
	case !az && bz:
		return -1
	case !az && !bz:
		if c := b.Published.Compare(a.Published); c != 0 {
			return c
		}
	}
	return bySemverDesc(a, b)
}

// versionFromTag extracts the version from a tag: the version regex's group "version" (or
// first group, or whole match), else the tag without one leading v. reason is "" when tag
// and version are valid OCI tags and the version is a stable semver, written the one way
// semver allows (major.minor.patch, no leading zeros).
func versionFromTag(tag string, re *regexp.Regexp) (version string, sv *semver.Version, reason string) {
	if !ValidTag(tag) {
		return "", nil, "not a valid OCI tag"
	}
	if re != nil {
		m := re.FindStringSubmatch(tag)
		if m == nil {
			return "", nil, "does not match version " + re.String()
		}
		switch i := re.SubexpIndex("version"); {
		case i >= 0:
			version = m[i]
		case len(m) > 1:
			version = m[1]
		default:
			version = m[0]
		}
	} else {
		version = tag
		if len(version) > 0 && (version[0] == 'v' || version[0] == 'V') {
			version = version[1:]
		}
	}
	if version == "" {
		return "", nil, "empty version"
	}
	if !ValidTag(version) {
		return "", nil, fmt.Sprintf("version %s is not a valid OCI tag", untrusted.Quote(version, 64))
	}
	if version[0] < '0' || version[0] > '9' {
		return "", nil, "not a version (does not start with a digit)"
	}
	sv, err := semver.NewVersion(version)
	if err != nil {
		return "", nil, "not a semantic version"
	}
	if sv.Prerelease() != "" {
		return "", nil, "semver pre-release"
	}
	// "1" and "1.27" parse as semver, but upstreams use them as floating tags (nginx:1.27 is
	// 1.27.3 today, 1.27.4 tomorrow); mirrored once, they would be frozen forever.
	if strings.Count(strings.SplitN(version, "+", 2)[0], ".") != 2 {
		return "", nil, "not a full major.minor.patch version"
	}
	// The lenient parse above reads "01.0.0" as 1.0.0: a second image tag for the same
	// version, which the duplicate check (by version string) would not catch.
	if sv, err = semver.StrictNewVersion(version); err != nil || sv.String() != version {
		return "", nil, "not a canonical semantic version (leading zeros)"
	}
	return version, sv, ""
}

// displayTag is a tag as Skipped shows it: valid tags as they are, anything else cut short,
// quoted and escaped, so a hostile tag cannot forge lines in a report or a terminal.
func displayTag(s string) string {
	if ValidTag(s) {
		return s
	}
	return untrusted.Quote(s, 64)
}

// filters is a window and a source's tag filters, compiled.
type filters struct {
	include, exclude, version *regexp.Regexp
	constraints               *semver.Constraints
	constraint                string // as the user wrote it, for reasons
	order                     string
	max                       int
}

// newFilters uses what the config loader compiled, and compiles what it did not (a config
// built in code).
func newFilters(s config.Source, win config.Versions) (filters, error) {
	f := filters{include: s.IncludeRE, exclude: s.ExcludeRE, version: s.VersionRE, constraints: win.Constraints, constraint: win.Constraint, order: win.Order, max: win.Max}
	var err error
	compile := func(re **regexp.Regexp, what, expr string) {
		if *re != nil || expr == "" || err != nil {
			return
		}
		if *re, err = regexp.Compile(expr); err != nil {
			err = fmt.Errorf("%s: %w", what, err)
		}
	}
	compile(&f.include, "include", s.Include)
	compile(&f.exclude, "exclude", s.Exclude)
	compile(&f.version, "version", s.Version)
	if err != nil {
		return f, err
	}
	if f.constraints == nil && win.Constraint != "" {
		if f.constraints, err = semver.NewConstraint(win.Constraint); err != nil {
			return f, fmt.Errorf("constraint %q: %w", win.Constraint, err)
		}
	}
	if f.constraints != nil && f.constraint == "" {
		f.constraint = f.constraints.String()
	}
	switch f.order {
	case "":
		f.order = config.OrderPublished
	case config.OrderPublished, config.OrderSemver:
	default:
		return f, fmt.Errorf("order %q: want %q or %q", f.order, config.OrderPublished, config.OrderSemver)
	}
	if f.max <= 0 {
		f.max = config.DefaultMaxVersions
	}
	return f, nil
}
