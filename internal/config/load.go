// Package config loads, validates and defaults an archmirror config file. Every problem is
// reported with the file, the line and the field, and all of them at once.
package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"time"
	_ "time/tzdata" // timezone: works on machines without /usr/share/zoneinfo

	"github.com/Masterminds/semver/v3"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/robfig/cron/v3"
	"go.yaml.in/yaml/v3"

	"github.com/archmirror/archmirror/internal/platform"
	"github.com/archmirror/archmirror/internal/untrusted"
)

// MaxFileSize bounds a config file; anything larger is not a hand-written config.
const MaxFileSize = 4 << 20

var (
	appName   = regexp.MustCompile(`^[a-z0-9][a-z0-9_.-]{0,62}$`)
	component = regexp.MustCompile(`^[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*$`) // an OCI repository path component
	argName   = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)
	envName   = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)
	glProject = regexp.MustCompile(`^[A-Za-z0-9_.-]+(/[A-Za-z0-9_.-]+)+$`)
	hostname  = regexp.MustCompile(`^[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?(:[0-9]{1,5})?$`)
)

// DefaultPlatforms are built when the config names none.
var DefaultPlatforms = []string{"linux/amd64", "linux/arm64"}

// DefaultRunners label GitHub Actions runners per platform for `plan --format github-matrix`.
var DefaultRunners = map[string]string{"linux/amd64": "ubuntu-24.04", "linux/arm64": "ubuntu-24.04-arm"}

// Load reads and validates the config file at path; kinds checks its sources
// (discover.SourceKinds()).
func Load(path string, kinds SourceKinds) (*Config, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, MaxFileSize+1))
	if err != nil {
		return nil, fmt.Errorf("config %s: %w", path, err)
	}
	if len(data) > MaxFileSize {
		return nil, fmt.Errorf("config %s: larger than %d bytes", path, MaxFileSize)
	}
	return Parse(path, data, kinds)
}

// Error is every problem found in one config file.
type Error struct {
	File   string
	Errors []error // *FieldError, mostly
}

func (e *Error) Error() string {
	var b strings.Builder
	for i, err := range e.Errors {
		if i > 0 {
			b.WriteByte('\n')
		}
		var fe *FieldError
		if errors.As(err, &fe) {
			if fe.Field != "" {
				fmt.Fprintf(&b, "%s:%d: %s: %s", e.File, fe.Line, fe.Field, fe.Msg)
			} else {
				fmt.Fprintf(&b, "%s:%d: %s", e.File, fe.Line, fe.Msg)
			}
			continue
		}
		fmt.Fprintf(&b, "%s: %v", e.File, err)
	}
	return b.String()
}

func (e *Error) Unwrap() []error { return e.Errors }

type rawConfig struct {
	Target    Target            `yaml:"target"`
	Platforms []string          `yaml:"platforms"`
	Versions  Versions          `yaml:"versions"`
	Schedule  string            `yaml:"schedule"`
	Timezone  string            `yaml:"timezone"`
	Builders  map[string]Nodes  `yaml:"builders"`
	Emulation *bool             `yaml:"emulation"`
	Runners   map[string]string `yaml:"runners"`
	Sign      *Sign             `yaml:"sign"`
	Cache     Cache             `yaml:"cache"`
	Timeouts  Timeouts          `yaml:"timeouts"`
	Apps      yaml.Node         `yaml:"apps"`
}

type rawApp struct {
	Source     Source    `yaml:"source"`
	Require    []Require `yaml:"require"`
	Versions   *Versions `yaml:"versions"`
	Platforms  []string  `yaml:"platforms"`
	Components yaml.Node `yaml:"components"`
}

// checker collects every problem instead of stopping at the first.
type checker struct {
	kinds SourceKinds
	errs  []error
}

func (c *checker) add(errs ...error) { c.errs = append(c.errs, errs...) }

func (c *checker) at(n *yaml.Node, field, format string, a ...any) {
	line := 0
	if n != nil {
		line = n.Line
	}
	c.add(&FieldError{Line: line, Field: field, Msg: fmt.Sprintf(format, a...)})
}

// Parse validates data as the config file named file (used in messages); kinds checks its
// sources (discover.SourceKinds()).
func Parse(file string, data []byte, kinds SourceKinds) (*Config, error) {
	c := &checker{kinds: kinds}
	var doc yaml.Node
	dec := yaml.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, &Error{File: file, Errors: []error{errors.New("empty config: it needs at least target and apps")}}
		}
		return nil, &Error{File: file, Errors: []error{yamlSyntax(err)}}
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); err == nil {
		return nil, &Error{File: file, Errors: []error{&FieldError{Line: extra.Line, Msg: "more than one YAML document; archmirror reads one"}}}
	}
	root := &doc
	if root.Kind == yaml.DocumentNode && len(root.Content) == 1 {
		root = root.Content[0]
	}
	if err := checkBounds(root); err != nil {
		return nil, &Error{File: file, Errors: []error{err}}
	}
	var raw rawConfig
	if errs := decode(root, &raw, ""); len(errs) > 0 {
		// Still check the apps, so one run shows every problem in the file.
		c.add(errs...)
		if apps := keyNode(root, "apps"); apps != nil {
			c.apps(apps, &Config{Versions: Versions{Max: DefaultMaxVersions, Order: OrderPublished}})
		}
		return nil, &Error{File: file, Errors: c.errs}
	}
	cfg := &Config{
		Path: file, Target: raw.Target, Versions: raw.Versions, Schedule: raw.Schedule, Timezone: raw.Timezone,
		Builders: raw.Builders, Runners: raw.Runners, Cache: raw.Cache, Emulation: raw.Emulation == nil || *raw.Emulation,
		Timeouts: raw.Timeouts.withDefaults(),
	}
	if raw.Sign != nil {
		cfg.Sign = *raw.Sign
	} else {
		cfg.Sign = Sign{Off: true}
	}

	c.target(root, &cfg.Target)
	cfg.Platforms = c.platforms(root, "platforms", raw.Platforms, DefaultPlatforms)
	c.versions(keyNode(root, "versions"), "versions", &cfg.Versions)
	c.schedule(root, cfg)
	c.builders(root, cfg)
	c.runners(root, cfg)
	if cfg.Cache.Dir == "" {
		if dir, err := os.UserCacheDir(); err == nil {
			cfg.Cache.Dir = filepath.Join(dir, "archmirror")
		}
	}
	cfg.Apps = c.apps(&raw.Apps, cfg)
	if len(c.errs) > 0 {
		return nil, &Error{File: file, Errors: c.errs}
	}
	return cfg, nil
}

// withDefaults fills what the file left out.
func (t Timeouts) withDefaults() Timeouts {
	for _, d := range []struct {
		v   *Duration
		def time.Duration
	}{{&t.Header, DefaultHeaderTimeout}, {&t.Request, DefaultRequestTimeout}, {&t.Run, DefaultRunTimeout}} {
		if d.v.Duration == 0 {
			d.v.Duration = d.def
		}
	}
	return t
}

var yamlLine = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)

func yamlSyntax(err error) error {
	if m := yamlLine.FindStringSubmatch(err.Error()); m != nil {
		var line int
		fmt.Sscanf(m[1], "%d", &line)
		return &FieldError{Line: line, Msg: "YAML syntax: " + m[2]}
	}
	// The scanner's nesting bound always has a position, but yaml leaves "line 1" out.
	if msg, ok := strings.CutPrefix(err.Error(), "yaml: "); ok && strings.HasPrefix(msg, "exceeded max depth") {
		return &FieldError{Line: 1, Msg: "YAML syntax: " + msg}
	}
	return fmt.Errorf("YAML: %w", err)
}

// keyNode returns the value node of key in mapping m, or nil; keyLine the key's own node.
func keyNode(m *yaml.Node, key string) *yaml.Node {
	if k := keyLine(m, key); k != nil {
		for i := 0; i+1 < len(m.Content); i += 2 {
			if m.Content[i] == k {
				return m.Content[i+1]
			}
		}
	}
	return nil
}

func keyLine(m *yaml.Node, key string) *yaml.Node {
	if m == nil || m.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == key {
			return m.Content[i]
		}
	}
	return nil
}

// nodeOr returns the node for key, falling back to parent (for defaults that have no line).
func nodeOr(parent *yaml.Node, key string) *yaml.Node {
	if n := keyNode(parent, key); n != nil {
		return n
	}
	return parent
}

func (c *checker) target(root *yaml.Node, t *Target) {
	n := nodeOr(root, "target")
	reg := nodeOr(n, "registry")
	if t.Registry == "" {
		c.at(n, "target.registry", "required: a registry namespace (ghcr.io/acme/mirror) or an OCI layout directory (oci:./mirror)")
		return
	}
	if strings.HasPrefix(t.Registry, "oci:") {
		if dir, _ := t.Layout(); dir == "" {
			c.at(reg, "target.registry", "oci: needs a directory, e.g. oci:./mirror")
		}
		if t.Insecure || t.Username != "" || t.Password.IsSet() {
			c.at(n, "target", "insecure, username and password apply to registries, not to an oci: directory")
		}
		return
	}
	if strings.Contains(t.Registry, "://") {
		c.at(reg, "target.registry", "%q: write the registry without a scheme (ghcr.io/acme/mirror); use insecure: true for plain HTTP", t.Registry)
		return
	}
	if _, err := name.NewRepository(t.Registry+"/component", name.StrictValidation); err != nil {
		c.at(reg, "target.registry", "%q is not a registry namespace: %v", t.Registry, err)
	}
	if t.Password.IsSet() && t.Username == "" {
		c.at(n, "target.username", "required when target.password is set")
	}
}

func (c *checker) platforms(parent *yaml.Node, field string, in, def []string) []platform.Platform {
	if in == nil {
		in = def
	}
	n := nodeOr(parent, "platforms")
	if len(in) == 0 {
		c.at(n, field, "needs at least one platform")
		return nil
	}
	seen := map[string]bool{}
	var out []platform.Platform
	for i, s := range in {
		itemNode := n
		if n.Kind == yaml.SequenceNode && i < len(n.Content) {
			itemNode = n.Content[i]
		}
		p, err := platform.Parse(s)
		if err != nil {
			c.at(itemNode, fmt.Sprintf("%s[%d]", field, i), "%v", err)
			continue
		}
		if seen[p.String()] {
			c.at(itemNode, fmt.Sprintf("%s[%d]", field, i), "%s is listed twice", p)
			continue
		}
		seen[p.String()] = true
		out = append(out, p)
	}
	return out
}

func (c *checker) versions(n *yaml.Node, field string, v *Versions) {
	if v.Max == 0 {
		v.Max = DefaultMaxVersions
	}
	if v.Max < 0 {
		c.at(nodeOr(n, "max"), field+".max", "must be at least 1")
	}
	switch v.Order {
	case "":
		v.Order = OrderPublished
	case OrderPublished, OrderSemver:
	default:
		c.at(nodeOr(n, "order"), field+".order", "%s: want published (the N most recently released) or semver (the N highest)", untrusted.Quote(v.Order, 40))
	}
	if v.Constraint != "" {
		cs, err := semver.NewConstraint(v.Constraint)
		if err != nil {
			c.at(nodeOr(n, "constraint"), field+".constraint", "bad semver constraint: %v", err)
		}
		v.Constraints = cs
	}
}

// cronParser accepts what gocron and `serve` accept: five fields or a @descriptor.
var cronParser = cron.NewParser(cron.Minute | cron.Hour | cron.Dom | cron.Month | cron.Dow | cron.Descriptor)

func (c *checker) schedule(root *yaml.Node, cfg *Config) {
	if cfg.Schedule == "" {
		cfg.Schedule = DefaultSchedule
	}
	if _, err := cronParser.Parse(cfg.Schedule); err != nil {
		c.at(nodeOr(root, "schedule"), "schedule", "bad cron spec %s: %v (want 5 fields, e.g. \"0 */6 * * *\", or @every 6h)", untrusted.Quote(cfg.Schedule, 60), err)
	}
	if strings.HasPrefix(cfg.Schedule, "TZ=") || strings.HasPrefix(cfg.Schedule, "CRON_TZ=") {
		c.at(nodeOr(root, "schedule"), "schedule", "put the time zone in timezone:, not in the cron spec")
	}
	if cfg.Timezone != "" {
		if _, err := time.LoadLocation(cfg.Timezone); err != nil {
			c.at(nodeOr(root, "timezone"), "timezone", "unknown time zone %s", untrusted.Quote(cfg.Timezone, 60))
		}
	}
}

func (c *checker) builders(root *yaml.Node, cfg *Config) {
	n := keyNode(root, "builders")
	tlsOf := map[string]*NodeTLS{} // a node is one builder for every key it is listed under
	for _, k := range sortedKeys(cfg.Builders) {
		field := "builders." + k
		at := nodeOr(n, k)
		if k != "default" {
			p, err := platform.Parse(k)
			if err != nil {
				c.at(at, field, "keys are default or a platform: %v", err)
				continue
			}
			if p.String() != k {
				c.at(at, field, "write the platform as %s", p)
			}
		}
		if len(cfg.Builders[k]) == 0 {
			c.at(at, field, "no BuildKit address")
		}
		seen := map[string]bool{}
		for i, nd := range cfg.Builders[k] {
			f := field
			if len(cfg.Builders[k]) > 1 {
				f = fmt.Sprintf("%s[%d]", field, i)
			}
			el := elemOr(at, i)
			addrErr, tlsErr := CheckBuilderAddress(nd.Addr), checkNodeTLS(nd)
			switch {
			case addrErr != nil:
				c.at(el, f, "%s is not a BuildKit address: %v", untrusted.Quote(nd.Addr, 80), addrErr)
			case tlsErr != nil:
				c.at(nodeOr(el, "tls"), f, "%s: %v", untrusted.Quote(nd.Addr, 80), tlsErr)
			case seen[nd.Addr]:
				c.at(el, f, "%s is listed twice", nd.Addr)
			case !sameTLS(tlsOf, nd):
				c.at(el, f, "%s is listed elsewhere in builders with another tls", nd.Addr)
			case nd.Max < 0:
				c.at(el, f, "max %d: want 0 (sync's --per-builder) or more", nd.Max)
			}
			seen[nd.Addr] = true
		}
	}
}

// elemOr is element i of sequence n, or n when it is not a sequence (one node, not a list).
func elemOr(n *yaml.Node, i int) *yaml.Node {
	if n != nil && n.Kind == yaml.SequenceNode && i < len(n.Content) {
		return n.Content[i]
	}
	return n
}

// sameTLS reports whether nd has the tls its address had where it was listed before, if it was.
func sameTLS(tlsOf map[string]*NodeTLS, nd Node) bool {
	t, ok := tlsOf[nd.Addr]
	if !ok {
		tlsOf[nd.Addr] = nd.TLS
		return true
	}
	return (t == nil && nd.TLS == nil) || (t != nil && nd.TLS != nil && *t == *nd.TLS)
}

func (c *checker) runners(root *yaml.Node, cfg *Config) {
	n := keyNode(root, "runners")
	merged := map[string]string{}
	for k, v := range DefaultRunners {
		merged[k] = v
	}
	for _, k := range sortedKeys(cfg.Runners) {
		if k != "default" {
			if p, err := platform.Parse(k); err != nil || p.String() != k {
				c.at(nodeOr(n, k), "runners."+k, "keys are default or a platform (linux/arm64)")
				continue
			}
		}
		if strings.TrimSpace(cfg.Runners[k]) == "" {
			c.at(nodeOr(n, k), "runners."+k, "needs a runner label")
		}
		merged[k] = cfg.Runners[k]
	}
	cfg.Runners = merged
}

// Runner is the CI runner label for a platform.
func (c *Config) Runner(p string) string {
	if r, ok := c.Runners[p]; ok {
		return r
	}
	if r, ok := c.Runners["default"]; ok {
		return r
	}
	return DefaultRunners["linux/amd64"]
}

func (c *checker) apps(n *yaml.Node, cfg *Config) []*App {
	if n.Kind == 0 {
		c.add(&FieldError{Line: 1, Field: "apps", Msg: "required: at least one app to mirror"})
		return nil
	}
	if n.Kind != yaml.MappingNode || len(n.Content) == 0 {
		c.at(n, "apps", "want a mapping of app names to apps")
		return nil
	}
	components := map[string]string{} // component → app: each is its own repository
	var apps []*App
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		path := "apps." + k.Value
		if !appName.MatchString(k.Value) {
			c.at(k, path, "app names are lower-case letters, digits, '.', '_' and '-'")
			continue
		}
		var raw rawApp
		if errs := decode(v, &raw, path); len(errs) > 0 {
			c.add(errs...)
			if comps := keyNode(v, "components"); comps != nil {
				c.components(comps, v, path, components, k.Value)
			}
			continue
		}
		app := &App{Name: k.Value, Source: raw.Source, Require: raw.Require, Versions: raw.Versions, Line: k.Line}
		c.source(nodeOr(v, "source"), path+".source", &app.Source)
		c.require(nodeOr(v, "require"), path+".require", app.Require)
		if app.Versions != nil {
			c.versions(keyNode(v, "versions"), path+".versions", app.Versions)
		} else {
			w := cfg.Versions
			app.Versions = &w
		}
		if raw.Platforms != nil {
			app.Platforms = c.platforms(v, path+".platforms", raw.Platforms, nil)
		} else {
			app.Platforms = cfg.Platforms
		}
		app.Components = c.components(&raw.Components, v, path, components, app.Name)
		apps = append(apps, app)
	}
	return apps
}

func (c *checker) source(n *yaml.Node, path string, s *Source) {
	for _, fe := range c.kinds.CheckSource(s) {
		if fe.Field == "" {
			c.at(n, path, "%s", fe.Msg)
			continue
		}
		c.at(nodeOr(n, fe.Field), path+"."+fe.Field, "%s", fe.Msg)
	}
	if s.API != "" {
		u, err := url.Parse(s.API)
		switch {
		case err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.User != nil:
			c.at(nodeOr(n, "api"), path+".api", "want an http(s) URL without credentials, e.g. https://ghe.example/api/v3")
		case s.Token.IsSet() && u.Scheme == "http" && !IsLoopback(u.Host):
			c.at(nodeOr(n, "api"), path+".api", "plain http:// to %s would send the token in clear: use https:// (a token goes over plain HTTP to a loopback address only)", untrusted.Quote(u.Host, 80))
		}
	}
	if s.MaxPages == 0 {
		s.MaxPages = 10
	}
	if s.MaxPages < 0 {
		c.at(nodeOr(n, "max_pages"), path+".max_pages", "must be at least 1")
	}
	s.IncludeRE = c.regex(n, path, "include", s.Include)
	s.ExcludeRE = c.regex(n, path, "exclude", s.Exclude)
	s.VersionRE = c.regex(n, path, "version", s.Version)
	if s.VersionRE != nil && s.VersionRE.NumSubexp() == 0 {
		c.at(nodeOr(n, "version"), path+".version", "needs a capture group for the version, e.g. ^v(\\d+\\.\\d+\\.\\d+)-limitless$")
	}
}

func (c *checker) regex(n *yaml.Node, path, key, expr string) *regexp.Regexp {
	if expr == "" {
		return nil
	}
	re, err := regexp.Compile(expr)
	if err != nil {
		c.at(nodeOr(n, key), path+"."+key, "bad regular expression: %v", err)
		return nil
	}
	return re
}

func (c *checker) require(n *yaml.Node, path string, reqs []Require) {
	for i := range reqs {
		r := &reqs[i]
		item := n
		if n.Kind == yaml.SequenceNode && i < len(n.Content) {
			item = n.Content[i]
		}
		field := fmt.Sprintf("%s[%d]", path, i)
		switch {
		case r.GitLabTag != nil && r.URL != nil, r.GitLabTag == nil && r.URL == nil:
			c.at(item, field, "each require: entry is one of gitlab-tag: {host, project, tag} or url: TEMPLATE")
		case r.GitLabTag != nil:
			g := r.GitLabTag
			if g.Host == "" {
				g.Host = "gitlab.com"
			}
			if !hostname.MatchString(g.Host) {
				c.at(item, field+".gitlab-tag.host", "%s is not a host name", untrusted.Quote(g.Host, 80))
			}
			if !glProject.MatchString(g.Project) || strings.Contains(g.Project, "..") {
				c.at(item, field+".gitlab-tag.project", "%s: want group/project", untrusted.Quote(g.Project, 80))
			}
			if g.Tag == nil || g.Tag.Text == "" {
				c.at(item, field+".gitlab-tag.tag", "required, e.g. \"v{{.Version}}-limitless\"")
			}
		case r.URL != nil:
			if err := checkURLTemplate(r.URL); err != nil {
				c.at(item, field+".url", "%v", err)
			}
		}
	}
}

func checkURLTemplate(t *Template) error {
	s, err := t.Render(sampleData, nil)
	if err != nil {
		return err
	}
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return fmt.Errorf("%s does not render to an http(s) URL", untrusted.Quote(t.Text, 80))
	}
	return nil
}

func (c *checker) components(n *yaml.Node, appNode *yaml.Node, appPath string, taken map[string]string, app string) []*Component {
	path := appPath + ".components"
	if n.Kind != yaml.MappingNode || len(n.Content) == 0 {
		c.at(nodeOr(appNode, "components"), path, "required: at least one component (the image to build)")
		return nil
	}
	var out []*Component
	names := map[string]bool{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		names[n.Content[i].Value] = true
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		cpath := path + "." + k.Value
		if !component.MatchString(k.Value) {
			c.at(k, cpath, "component names become repository names: lower-case letters and digits, separated by '.', '_' or '-'")
			continue
		}
		if other, ok := taken[k.Value]; ok {
			c.at(k, cpath, "component %q is also defined by app %s: both would publish to the same repository", k.Value, other)
			continue
		}
		taken[k.Value] = app
		comp := &Component{}
		if errs := decode(v, comp, cpath); len(errs) > 0 {
			c.add(errs...)
			continue
		}
		comp.Name, comp.Line = k.Value, k.Line
		if comp.Context == nil || comp.Context.Text == "" {
			c.at(v, cpath+".context", "required: a git URL (https://host/repo.git#ref:subdir) or a local directory")
		}
		if comp.Dockerfile == "" {
			comp.Dockerfile = "Dockerfile"
		}
		if filepath.IsAbs(comp.Dockerfile) || strings.Contains(filepath.ToSlash(comp.Dockerfile), "..") {
			c.at(nodeOr(v, "dockerfile"), cpath+".dockerfile", "a path inside the context, without ..")
		}
		switch comp.Cache {
		case "", "registry":
		default:
			c.at(nodeOr(v, "cache"), cpath+".cache", "%s: want registry or nothing", untrusted.Quote(comp.Cache, 40))
		}
		argsNode := keyNode(v, "args")
		for _, a := range sortedKeys(comp.Args) {
			if !argName.MatchString(a) {
				c.at(nodeOr(argsNode, a), cpath+".args."+a, "not a build argument name")
			}
		}
		comp.deps, comp.depsErr = comp.dependencies()
		deps, err := comp.Dependencies()
		if err != nil {
			c.at(v, cpath, "%v", err)
		}
		for _, d := range deps {
			switch {
			case d == comp.Name:
				c.at(v, cpath, "a component cannot depend on itself")
			case !names[d]:
				c.at(v, cpath, "depends on %q, which is not a component of app %s", d, app)
			}
		}
		out = append(out, comp)
	}
	if len(c.errs) == 0 {
		if cycle := findCycle(out); cycle != "" {
			c.at(n, path, "components depend on each other in a cycle: %s", cycle)
		}
	}
	return out
}

// Dependencies are the components this one needs first: depends: plus every {{ref "x"}}, as
// the loader worked them out (the templates are trial-run once, at load).
func (c *Component) Dependencies() ([]string, error) { return c.deps, c.depsErr }

func (c *Component) dependencies() ([]string, error) {
	set := map[string]bool{}
	for _, d := range c.Depends {
		set[d] = true
	}
	tmpls := []*Template{c.Context}
	for _, a := range sortedKeys(c.Args) {
		tmpls = append(tmpls, c.Args[a])
	}
	for _, t := range tmpls {
		refs, err := t.Refs()
		if err != nil {
			return nil, err
		}
		for _, r := range refs {
			set[r] = true
		}
	}
	return sortedKeys(set), nil
}

func findCycle(comps []*Component) string {
	deps := map[string][]string{}
	for _, c := range comps {
		deps[c.Name], _ = c.Dependencies()
	}
	const (
		white = iota
		grey
		black
	)
	color := map[string]int{}
	var stack []string
	var visit func(string) string
	visit = func(n string) string {
		color[n] = grey
		stack = append(stack, n)
		for _, d := range deps[n] {
			switch color[d] {
			case grey:
				return strings.Join(append(stack, d), " → ")
			case white:
				if s := visit(d); s != "" {
					return s
				}
			}
		}
		stack = stack[:len(stack)-1]
		color[n] = black
		return ""
	}
	for _, c := range comps {
		if color[c.Name] == white {
			if s := visit(c.Name); s != "" {
				return s
			}
		}
	}
	return ""
}

// App returns the app named name, or nil.
func (c *Config) App(name string) *App {
	for _, a := range c.Apps {
		if a.Name == name {
			return a
		}
	}
	return nil
}

// Select keeps only the named apps, in the order given. An unknown name is an error naming it.
func (c *Config) Select(names ...string) error {
	if len(names) == 0 {
		return nil
	}
	keep := make([]*App, 0, len(names))
	for _, n := range names {
		a := c.App(n)
		if a == nil {
			return fmt.Errorf("no app %q in %s", n, c.Path)
		}
		keep = append(keep, a)
	}
	c.Apps = keep
	return nil
}

// Cron is the config's schedule, parsed, and its time zone (time.Local when timezone is not
// set): what `serve` runs on.
func (c *Config) Cron() (cron.Schedule, *time.Location, error) {
	s, err := cronParser.Parse(c.Schedule)
	if err != nil {
		return nil, nil, fmt.Errorf("schedule %q: %w", c.Schedule, err)
	}
	loc := time.Local
	if c.Timezone != "" {
		if loc, err = time.LoadLocation(c.Timezone); err != nil {
			return nil, nil, fmt.Errorf("timezone %q: %w", c.Timezone, err)
		}
	}
	return s, loc, nil
}

// Overrides are a run's changes to a config: the seeds' manual inputs. Zero values change
// nothing.
type Overrides struct {
	Apps        []string // only these apps
	MaxVersions int      // every app's versions.max
	Platforms   []string // every app's platforms
	Target      string   // target.registry
}

// With returns a copy of c with o applied, checked as the loader checks a file; c itself is not
// changed (a service shares it between runs).
func (c *Config) With(o Overrides) (*Config, error) {
	out := *c
	out.Apps = slices.Clone(c.Apps)
	if err := out.Select(o.Apps...); err != nil {
		return nil, fmt.Errorf("apps: %w", err)
	}
	var platforms []platform.Platform
	for _, p := range o.Platforms {
		pl, err := platform.Parse(p)
		if err != nil {
			return nil, fmt.Errorf("platforms: %w", err)
		}
		if slices.Contains(platforms, pl) {
			return nil, fmt.Errorf("platforms: %s is listed twice", pl)
		}
		platforms = append(platforms, pl)
	}
	if o.MaxVersions < 0 || o.MaxVersions > 1000 {
		return nil, fmt.Errorf("max_versions: %d: want 1 to 1000", o.MaxVersions)
	}
	if o.Target != "" {
		out.Target.Registry = o.Target
		chk := &checker{}
		chk.target(nil, &out.Target)
		if len(chk.errs) > 0 {
			return nil, errors.Join(chk.errs...)
		}
	}
	for i, a := range out.Apps {
		app := *a
		if o.MaxVersions > 0 {
			v := c.Versions
			if a.Versions != nil {
				v = *a.Versions
			}
			v.Max = o.MaxVersions
			app.Versions = &v
		}
		if len(platforms) > 0 {
			app.Platforms = platforms
		}
		out.Apps[i] = &app
	}
	return &out, nil
}
