package run

import (
	"context"
	"fmt"
	"maps"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/Masterminds/semver/v3"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/archmirror/archmirror/internal/config"
	"github.com/archmirror/archmirror/internal/discover"
	"github.com/archmirror/archmirror/internal/lease"
	"github.com/archmirror/archmirror/internal/publish"
	"github.com/archmirror/archmirror/internal/testenv"
	"github.com/archmirror/archmirror/internal/untrusted"
)

// The figures of issue 7: how archmirror fares when its registry and its upstream misbehave.
// TestFaultFigures is a measurement, not a CI test: it runs only with
// ARCHMIRROR_FAULT_FIGURES=1 (scripts/bench-faults.sh) and takes about half an hour.
const (
	figuresEnv = "ARCHMIRROR_FAULT_FIGURES"
	trialsEnv  = "ARCHMIRROR_FAULT_TRIALS"  // trials per fault class; default 3
	classesEnv = "ARCHMIRROR_FAULT_CLASSES" // comma-separated class keys; default all
	faultRate  = 0.10
	stallFor   = 2 * time.Second
	runTimeout = 10 * time.Minute // a sync that takes longer counts as hung (and failed)
)

// faultClass is one row of the table: which proxy misbehaves, how, and for whom.
type faultClass struct {
	key, label string
	upstream   bool // the fault proxy in front of the fake upstream, not the registry's
	faults     testenv.Faults
}

func fromBuildKit(r *http.Request) bool {
	ua := strings.ToLower(r.UserAgent())
	return strings.Contains(ua, "buildkit") || strings.Contains(ua, "containerd")
}

func fromArchmirror(r *http.Request) bool { return !fromBuildKit(r) }

// isUpload is a request TruncateUpload can cut: counting only those makes its rate a share of
// the uploads.
func isUpload(r *http.Request) bool {
	switch r.Method {
	case http.MethodPut, http.MethodPatch, http.MethodPost:
		return r.ContentLength > 0 || (r.ContentLength < 0 && r.Body != nil && r.Body != http.NoBody)
	}
	return false
}

func faultClasses() []faultClass {
	var cs []faultClass
	for _, who := range []struct {
		key, label string
		only       func(*http.Request) bool
	}{{"archmirror", "archmirror's requests", fromArchmirror}, {"buildkit", "BuildKit's requests", fromBuildKit}} {
		uploads := "manifest and tag PUTs"
		if who.key == "buildkit" {
			uploads = "blob uploads"
		}
		cs = append(cs,
			faultClass{key: "registry-5xx-" + who.key, label: "registry 5xx (500/502/503), " + who.label,
				faults: testenv.Faults{ServerError: faultRate, Only: who.only}},
			faultClass{key: "registry-429-" + who.key, label: "registry 429 + Retry-After: 1, " + who.label,
				faults: testenv.Faults{TooMany: faultRate, RetryAfter: time.Second, Only: who.only}},
			faultClass{key: "registry-reset-" + who.key, label: "registry reset mid-body, " + who.label,
				faults: testenv.Faults{Reset: faultRate, Only: who.only}},
			faultClass{key: "registry-stall-" + who.key, label: "registry stall 2 s, " + who.label,
				faults: testenv.Faults{Stall: faultRate, StallFor: stallFor, Only: who.only}},
			faultClass{key: "registry-truncate-" + who.key, label: "registry truncated uploads (" + uploads + "), " + who.label,
				faults: testenv.Faults{TruncateUpload: faultRate, Only: func(r *http.Request) bool { return who.only(r) && isUpload(r) }}},
		)
	}
	return append(cs,
		faultClass{key: "registry-mixed-all", label: "registry, every kind at 2 % each, every client",
			faults: testenv.Faults{ServerError: faultRate / 5, TooMany: faultRate / 5, Reset: faultRate / 5, Stall: faultRate / 5, TruncateUpload: faultRate / 5, StallFor: stallFor}},
		faultClass{key: "upstream-5xx", label: "upstream 5xx (API, gates, downloads in builds)", upstream: true,
			faults: testenv.Faults{ServerError: faultRate}},
		faultClass{key: "upstream-reset", label: "upstream reset mid-body (API, gates, downloads in builds)", upstream: true,
			faults: testenv.Faults{Reset: faultRate}},
	)
}

// figuresWorld is testenv's world with a fault proxy in front of the registry and another in
// front of the fake upstream. Every run goes through both (faults off but for the class under
// test), so build arguments, image digests and request paths are the same in every run.
type figuresWorld struct {
	w        *testenv.World
	reg, up  *testenv.FaultProxy
	text     string   // the config, the upstream's URL rewritten to its proxy
	repos    []string // every component's repository
	platform []string // every version's platforms ("linux/amd64", …)
}

func newFiguresWorld(t *testing.T) *figuresWorld {
	t.Helper()
	w := testenv.NewWorld(t)
	raw, err := os.ReadFile(w.ConfigPath)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Parse(w.ConfigPath, raw, discover.SourceKinds())
	if err != nil {
		t.Fatal(err)
	}
	upstream := cfg.App("hello").Source.API
	if upstream == "" {
		t.Fatal("the fixture config has no upstream API URL for hello")
	}
	fw := &figuresWorld{w: w,
		reg: testenv.NewFaultProxy(t, w.Registry, testenv.Faults{}),
		up:  testenv.NewFaultProxy(t, upstream, testenv.Faults{}),
	}
	fw.text = strings.ReplaceAll(string(raw), upstream, "http://"+fw.up.Addr)
	for _, a := range cfg.Apps {
		for _, c := range a.Components {
			fw.repos = append(fw.repos, c.Name)
		}
	}
	for _, p := range cfg.Platforms {
		fw.platform = append(fw.platform, p.String())
	}
	return fw
}

// trialConfig is the config of one trial: its own namespace behind the registry's proxy, its
// own buildkitd (cold build cache: every download and push happens again; stopped when t
// ends) and its own cache directory.
func (fw *figuresWorld) trialConfig(t *testing.T, ns string) *config.Config {
	t.Helper()
	bk := testenv.BuildKit(t, fw.reg.Addr, fw.w.Registry)
	s := fw.text
	for from, to := range map[string]string{
		"registry: " + strconv.Quote(fw.w.Namespace):    "registry: " + strconv.Quote(fw.reg.Addr+"/"+ns),
		strconv.Quote(fw.w.BuildKit):                    strconv.Quote(bk),
		strconv.Quote(filepath.Join(fw.w.Dir, "cache")): strconv.Quote(t.TempDir()),
	} {
		if !strings.Contains(s, from) {
			t.Fatalf("the fixture config has no %s:\n%s", from, s)
		}
		s = strings.Replace(s, from, to, 1)
	}
	cfg, err := config.Parse(fw.w.ConfigPath, []byte(s), discover.SourceKinds())
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// runOutcome is one sync.
type runOutcome struct {
	complete bool
	why      string // the first failure, when not complete
	builds   int    // jobs handed to a builder (built, or failed there): the work done
	reused   int    // jobs found recorded by an earlier run
	took     time.Duration
}

func syncFigures(cfg *config.Config) runOutcome {
	ctx, cancel := context.WithTimeout(context.Background(), runTimeout)
	defer cancel()
	start := time.Now()
	rep, err := Sync(ctx, cfg, SyncOptions{Parallel: 4})
	o := runOutcome{took: time.Since(start)}
	for _, j := range rep.Jobs {
		switch j.Builder {
		case "":
		case "recorded":
			o.reused++
		default:
			o.builds++
		}
	}
	switch {
	case err != nil:
		o.why = err.Error()
	case rep.Failed():
		o.why = firstFailure(rep)
	default:
		o.complete = true
	}
	if ctx.Err() != nil {
		o.complete, o.why = false, "hung: still running after "+runTimeout.String()+": "+o.why
	}
	return o
}

// firstFailure is the first thing that failed in rep, on one line, and how many failed.
func firstFailure(rep Report) string {
	var fs []string
	for _, a := range rep.Plan.Apps {
		if a.Error != "" {
			fs = append(fs, "app "+a.Name+": "+a.Error)
		}
	}
	for _, j := range rep.Jobs {
		if j.Status != JobBuilt {
			fs = append(fs, "job "+j.ID+" "+string(j.Status)+": "+j.Error)
		}
	}
	for _, u := range rep.Units {
		if u.Error != "" || u.Status == publish.Incomplete {
			fs = append(fs, "publish "+u.Component+" "+u.Version+" "+string(u.Status)+": "+u.Error)
		}
	}
	if len(fs) == 0 {
		return "failed attestations"
	}
	why := untrusted.FirstLine(fs[0])
	if len(why) > 300 {
		why = why[:300] + "…"
	}
	if len(fs) > 1 {
		why += fmt.Sprintf(" (and %d more failures)", len(fs)-1)
	}
	return why
}

// mirrorState is what a namespace holds, read straight from the registry (not through the
// fault proxy).
type mirrorState struct {
	versions map[string]map[string]string // repo → version tag → index digest, complete ones only
	partial  []string                     // "repo:tag: why" for every version tag that is not a complete index
	latest   []string                     // "repo: why" for every latest not on the highest complete version
}

// inspectMirror checks every tag of every repository in namespace ns: each version tag must be
// an index of exactly the platforms with every manifest, config and layer present, and latest
// must be on the highest complete stable version (absent only when there is none).
func (fw *figuresWorld) inspectMirror(t *testing.T, ns string) mirrorState {
	t.Helper()
	st := mirrorState{versions: map[string]map[string]string{}}
	for _, repo := range fw.repos {
		r, err := name.NewRepository(fw.w.Registry + "/" + ns + "/" + repo)
		if err != nil {
			t.Fatal(err)
		}
		tags, err := remote.List(r)
		if err != nil && strings.Contains(err.Error(), "NAME_UNKNOWN") {
			tags, err = nil, nil // nothing pushed there yet
		}
		if err != nil {
			t.Fatalf("%s: list tags: %v", r, err)
		}
		complete := map[string]string{}
		latest := ""
		for _, tag := range tags {
			switch {
			case strings.HasPrefix(tag, StagingPrefix) || strings.HasPrefix(tag, "sha256-") || tag == lease.Tag:
				continue
			case tag == "latest":
				d, err := remote.Head(r.Tag(tag))
				if err != nil {
					t.Fatalf("%s:latest: %v", r, err)
				}
				latest = d.Digest.String()
				continue
			}
			d, why := fw.checkIndex(r, tag)
			if why != "" {
				st.partial = append(st.partial, repo+":"+tag+": "+why)
				continue
			}
			complete[tag] = d
		}
		st.versions[repo] = complete
		if why := latestWrong(complete, latest); why != "" {
			st.latest = append(st.latest, repo+": "+why)
		}
	}
	return st
}

// checkIndex returns the digest of repo:tag, or why it is not a complete version.
func (fw *figuresWorld) checkIndex(r name.Repository, tag string) (string, string) {
	if _, err := semver.StrictNewVersion(tag); err != nil {
		return "", "a tag that is no version"
	}
	idx, err := remote.Index(r.Tag(tag))
	if err != nil {
		return "", "not an index: " + err.Error()
	}
	d, _ := idx.Digest()
	m, err := idx.IndexManifest()
	if err != nil {
		return "", err.Error()
	}
	var got []string
	for _, e := range m.Manifests {
		if e.Platform == nil {
			return "", "an entry without a platform"
		}
		p := e.Platform.OS + "/" + e.Platform.Architecture + variant(e.Platform.Variant)
		got = append(got, p)
		img, err := idx.Image(e.Digest)
		if err != nil {
			return "", p + ": " + err.Error()
		}
		im, err := img.Manifest()
		if err != nil {
			return "", p + " manifest: " + err.Error()
		}
		for _, b := range append(slices.Clone(im.Layers), im.Config) {
			if why := fw.blobMissing(r, b.Digest.String()); why != "" {
				return "", p + ": blob " + b.Digest.String() + ": " + why
			}
		}
	}
	slices.Sort(got)
	want := slices.Sorted(slices.Values(fw.platform))
	if !slices.Equal(got, want) {
		return "", fmt.Sprintf("platforms %v, want %v", got, want)
	}
	return d.String(), ""
}

func (fw *figuresWorld) blobMissing(r name.Repository, digest string) string {
	resp, err := http.Head("http://" + fw.w.Registry + "/v2/" + r.RepositoryStr() + "/blobs/" + digest)
	if err != nil {
		return err.Error()
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return resp.Status
	}
	return ""
}

// latestWrong says why latest (a digest, "" when absent) is not the highest complete stable
// version of complete.
func latestWrong(complete map[string]string, latest string) string {
	var best *semver.Version
	bestTag := ""
	for tag := range complete {
		v, err := semver.NewVersion(tag)
		if err != nil || v.Prerelease() != "" {
			continue
		}
		if best == nil || v.GreaterThan(best) {
			best, bestTag = v, tag
		}
	}
	switch {
	case best == nil && latest == "":
		return ""
	case best == nil:
		return "latest " + latest + " but no complete version"
	case latest == "":
		return "no latest; the highest complete version is " + bestTag
	case complete[bestTag] == latest:
		return ""
	}
	for tag, d := range complete {
		if d == latest {
			return "latest is " + tag + ", the highest complete version is " + bestTag
		}
	}
	return "latest " + latest + " is no complete version (the highest is " + bestTag + ")"
}

// classFigures adds up one class's trials.
type classFigures struct {
	label             string
	trials, completed int
	recoveries        int
	partial, latest   int
	injected          int64
	eligible          int64
	runs              []trialRun
	failures          []string // "seed N: why" for every run that did not complete
}

// trialRun is one trial: its first run and all its runs until converged, the builds they
// handed to BuildKit, and the fault-free trial it followed (an index into the baseline's runs).
type trialRun struct {
	first, toEnd time.Duration
	builds       int
	complete     bool
	after        int
}

// mirrorRef is what a fault-free sync leaves: the tags of every repository and their digests.
type mirrorRef struct {
	versions     map[string]map[string]string
	reproducible bool // two fault-free syncs gave the same digests: compare them too
}

func TestFaultFigures(t *testing.T) {
	if os.Getenv(figuresEnv) != "1" {
		t.Skip("a figures run for BENCHMARKS.md: " + figuresEnv + "=1 (scripts/bench-faults.sh)")
	}
	trials := 3
	if s := os.Getenv(trialsEnv); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 {
			t.Fatalf("%s=%q: want a positive number", trialsEnv, s)
		}
		trials = n
	}
	classes := faultClasses()
	if s := os.Getenv(classesEnv); s != "" {
		keys := strings.Split(s, ",")
		classes = slices.DeleteFunc(classes, func(c faultClass) bool { return !slices.Contains(keys, c.key) })
		if len(classes) == 0 {
			t.Fatalf("%s=%q names no class", classesEnv, s)
		}
	}
	fw := newFiguresWorld(t)

	// A warm-up sync gives the tags every complete run must end with.
	ref := &mirrorRef{reproducible: true}
	t.Run("figures-warmup", func(t *testing.T) {
		cfg := fw.trialConfig(t, "figures-warmup")
		o := syncFigures(cfg)
		if !o.complete {
			t.Fatalf("the fault-free warm-up sync failed: %s", o.why)
		}
		st := fw.inspectMirror(t, "figures-warmup")
		if len(st.partial)+len(st.latest) > 0 {
			t.Fatalf("the fault-free warm-up sync left partial tags %v, latest wrong %v", st.partial, st.latest)
		}
		ref.versions = st.versions
	})
	if ref.versions == nil {
		t.Fatal("no warm-up sync: no reference")
	}

	// Each trial follows a fault-free trial of its own (fresh namespace and buildkitd too), and
	// is timed against the two fault-free ones around it: the machine is shared, and its speed
	// drifts more over the run than faults change a sync.
	none := faultClass{key: "baseline", label: "none (fault-free baseline)"}
	base := &classFigures{label: none.label}
	baseline := func() {
		ns := fmt.Sprintf("figures-baseline-%d", base.trials)
		t.Run(ns, func(t *testing.T) { fw.trial(t, none, 0, ns, ref, base, base.trials) })
	}
	results := make([]*classFigures, len(classes))
	for ci, c := range classes {
		cf := &classFigures{label: c.label}
		results[ci] = cf
		for trial := range trials {
			baseline()
			seed := uint64(7000 + 100*ci + trial)
			ns := fmt.Sprintf("figures-%s-%d", c.key, trial)
			t.Run(ns, func(t *testing.T) { fw.trial(t, c, seed, ns, ref, cf, base.trials-1) })
		}
	}
	baseline()

	table := figuresTable(trials, base, results)
	t.Log("\n" + table)
	if dir := os.Getenv("ARCHMIRROR_ARTIFACTS"); dir != "" {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "fault-figures.md"), []byte(table), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for _, cf := range append([]*classFigures{base}, results...) {
		for _, f := range cf.failures {
			t.Logf("%s: %s", cf.label, f)
		}
	}
}

// trial syncs a fresh namespace with c's faults on, then without until it is complete, checking
// the mirror after every run. after is the fault-free trial it follows.
func (fw *figuresWorld) trial(t *testing.T, c faultClass, seed uint64, ns string, ref *mirrorRef, cf *classFigures, after int) {
	cf.trials++
	cf.runs = append(cf.runs, trialRun{after: after})
	run := &cf.runs[len(cf.runs)-1]
	cfg := fw.trialConfig(t, ns)
	p := fw.reg
	if c.upstream {
		p = fw.up
	}
	f := c.faults
	f.Seed = seed
	eligible := &countingFilter{only: f.Only}
	f.Only = eligible.match
	injected := p.Injected.Load()
	p.SetFaults(f)
	o := syncFigures(cfg)
	p.SetFaults(testenv.Faults{})
	cf.injected += p.Injected.Load() - injected
	cf.eligible += eligible.n
	run.first, run.toEnd, run.builds, run.complete = o.took, o.took, o.builds, o.complete
	if o.complete {
		cf.completed++
	} else {
		cf.failures = append(cf.failures, fmt.Sprintf("seed %d: %s", seed, o.why))
	}
	t.Logf("%s, seed %d: %d of %d eligible requests faulted; complete %v in %s, %d builds %s",
		c.key, seed, p.Injected.Load()-injected, eligible.n, o.complete, o.took.Round(time.Millisecond), o.builds, o.why)
	fw.checkRun(t, ns, seed, "the first run", o, ref, c.key == "baseline", cf)

	for recovery := 1; !o.complete; recovery++ {
		if recovery > 3 {
			t.Errorf("seed %d: %s: 3 fault-free syncs after the first run did not converge", seed, c.label)
			break
		}
		o = syncFigures(cfg)
		cf.recoveries++
		run.builds += o.builds
		run.toEnd += o.took
		t.Logf("%s, seed %d: fault-free sync %d: complete %v in %s, %d builds, %d reused %s",
			c.key, seed, recovery, o.complete, o.took.Round(time.Millisecond), o.builds, o.reused, o.why)
		if !o.complete {
			t.Errorf("seed %d: %s: fault-free sync %d after the first run failed: %s", seed, c.label, recovery, o.why)
		}
		fw.checkRun(t, ns, seed, fmt.Sprintf("fault-free sync %d", recovery), o, ref, false, cf)
	}
}

// checkRun inspects the namespace after a run: no partial tag and latest right after any run;
// after a complete one, exactly the versions (and digests, when builds are reproducible) of a
// fault-free sync. A fault-free first run whose digests differ finds builds not reproducible.
func (fw *figuresWorld) checkRun(t *testing.T, ns string, seed uint64, what string, o runOutcome, ref *mirrorRef, faultFree bool, cf *classFigures) {
	t.Helper()
	st := fw.inspectMirror(t, ns)
	cf.partial += len(st.partial)
	cf.latest += len(st.latest)
	for _, p := range st.partial {
		t.Errorf("seed %d: after %s: partial tag %s", seed, what, p)
	}
	for _, l := range st.latest {
		t.Errorf("seed %d: after %s: %s", seed, what, l)
	}
	if !o.complete {
		return
	}
	d := diffVersions(ref.versions, st.versions)
	switch {
	case !sameTags(ref.versions, st.versions):
		t.Errorf("seed %d: %s reported success, but the mirror differs from a fault-free sync's: %s", seed, what, d)
	case d != "" && faultFree && ref.reproducible:
		ref.reproducible = false
		t.Logf("two fault-free syncs gave different digests (%s): digests are not compared", d)
	case d != "" && ref.reproducible:
		t.Errorf("seed %d: after %s the digests differ from a fault-free sync's: %s", seed, what, d)
	}
}

// countingFilter counts the requests a fault proxy may fault.
type countingFilter struct {
	only func(*http.Request) bool
	n    int64 // read after the run: the proxy calls match under its lock
}

func (c *countingFilter) match(r *http.Request) bool {
	if c.only != nil && !c.only(r) {
		return false
	}
	c.n++
	return true
}

func sameTags(a, b map[string]map[string]string) bool {
	for _, m := range []map[string]map[string]string{a, b} {
		for repo := range m {
			if !slices.Equal(slices.Sorted(maps.Keys(a[repo])), slices.Sorted(maps.Keys(b[repo]))) {
				return false
			}
		}
	}
	return true
}

// diffVersions lists the repo:tag whose digests differ or that only one side has.
func diffVersions(want, got map[string]map[string]string) string {
	var d []string
	for _, m := range []map[string]map[string]string{want, got} {
		for repo := range m {
			for tag := range m[repo] {
				if w, g := want[repo][tag], got[repo][tag]; w != g && !slices.Contains(d, repo+":"+tag) {
					d = append(d, repo+":"+tag)
				}
			}
		}
	}
	slices.Sort(d)
	return strings.Join(d, ", ")
}

func median(xs []int) int {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Sorted(slices.Values(xs))
	return s[len(s)/2]
}

func medianDuration(ds []time.Duration) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Sorted(slices.Values(ds))
	return s[len(s)/2]
}

// slowdown is "+12 % (+5 … +20 %)": the median of the ratios and their range.
func slowdown(ratios []float64) string {
	if len(ratios) == 0 {
		return "–"
	}
	pct := func(r float64) string { return fmt.Sprintf("%+.0f %%", 100*(r-1)) }
	s := slices.Sorted(slices.Values(ratios))
	if len(s) == 1 {
		return pct(s[0])
	}
	return pct(s[len(s)/2]) + " (" + strings.TrimSuffix(pct(s[0]), " %") + " … " + pct(s[len(s)-1]) + ")"
}

// figuresTable is the markdown table: a row for the fault-free trials, one per class.
func figuresTable(trials int, base *classFigures, results []*classFigures) string {
	var baseTimes []time.Duration
	var baseBuilds []int
	for _, r := range base.runs {
		if r.complete {
			baseTimes = append(baseTimes, r.first)
			baseBuilds = append(baseBuilds, r.builds)
		}
	}
	builds, baseTime := median(baseBuilds), medianDuration(baseTimes)
	// ref is the mean of the completed fault-free first runs just before and after run i.
	ref := func(i int) time.Duration {
		var sum time.Duration
		n := 0
		for _, j := range []int{i, i + 1} {
			if j >= 0 && j < len(base.runs) && base.runs[j].complete {
				sum += base.runs[j].first
				n++
			}
		}
		if n == 0 {
			return baseTime
		}
		return sum / time.Duration(n)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "A fault-free sync of the fixture into a fresh namespace with a fresh buildkitd: %d builds, median %s (%d runs). %d trials per class; each trial is timed against the fault-free trials just before and after it.\n\n",
		builds, baseTime.Round(10*time.Millisecond), len(baseTimes), trials)
	b.WriteString("| fault class (10 %) | trials | first runs completed | fault-free syncs to converge | partial tags | latest wrong | faults / eligible requests | jobs rebuilt beyond fault-free | first run vs fault-free | until converged vs fault-free |\n")
	b.WriteString("|---|---|---|---|---|---|---|---|---|---|\n")
	for i, cf := range append([]*classFigures{base}, results...) {
		extra := 0
		var per []string
		var first, toEnd []float64
		for _, r := range cf.runs {
			if r.first == 0 {
				continue // the trial stopped before its first run ended
			}
			e := r.builds - builds
			extra += e
			per = append(per, strconv.Itoa(e))
			if i == 0 { // the fault-free row: each run against the median, the machine's noise
				if r.complete {
					first = append(first, float64(r.first)/float64(baseTime))
				}
				continue
			}
			first = append(first, float64(r.first)/float64(ref(r.after)))
			toEnd = append(toEnd, float64(r.toEnd)/float64(ref(r.after)))
		}
		faults := fmt.Sprintf("%d / %d", cf.injected, cf.eligible)
		rebuilt := fmt.Sprintf("%d (%s)", extra, strings.Join(per, ", "))
		if i == 0 {
			faults, rebuilt = "0", strconv.Itoa(extra)
		}
		fmt.Fprintf(&b, "| %s | %d | %d | %d | %d | %d | %s | %s | %s | %s |\n",
			cf.label, cf.trials, cf.completed, cf.recoveries, cf.partial, cf.latest, faults,
			rebuilt, slowdown(first), slowdown(toEnd))
	}
	return b.String()
}
