package run

import (
	"fmt"
	"path/filepath"
	"strings"

	"github.com/archmirror/archmirror/internal/build"
	"github.com/archmirror/archmirror/internal/config"
	"github.com/archmirror/archmirror/internal/plan"
	"github.com/archmirror/archmirror/internal/platform"
)

// spec renders a job's templates for its platform.
func (s *syncer) spec(u *unit, j plan.Job, refs config.RefFunc) (build.Spec, error) {
	p, err := platform.Parse(j.Platform)
	if err != nil {
		return build.Spec{}, err
	}
	data := config.Data{Version: u.version.Version, Tag: u.version.Tag, OS: p.OS, Arch: p.Arch, Variant: p.Variant, Platform: p.String()}
	c := u.comp
	ctxText, err := c.Context.Render(data, refs)
	if err != nil {
		return build.Spec{}, fmt.Errorf("context: %w", err)
	}
	args := map[string]string{}
	for name, t := range c.Args {
		if args[name], err = t.Render(data, refs); err != nil {
			return build.Spec{}, fmt.Errorf("args.%s: %w", name, err)
		}
	}
	spec := build.Spec{
		JobID: j.ID, Platform: p, Context: s.resolveContext(ctxText), Dockerfile: c.Dockerfile,
		Patches: c.Patches, Args: args, Labels: s.annotations(u.app.App, c, u.version),
		SourceDateEpoch: u.version.Published,
	}
	if _, ok := s.cfg.Target.Layout(); ok {
		spec.Layout = s.tgt.Ref(c.Name)
	} else {
		spec.Push, spec.Insecure = s.tgt.Ref(c.Name), s.tgt.Insecure()
		if c.Cache == "registry" {
			spec.CacheRef = s.tgt.Ref(c.Name) + ":cache-" + p.Slug()
		}
	}
	return spec, nil
}

// resolveContext makes a local context relative to the config file's directory.
func (s *syncer) resolveContext(c string) string {
	if strings.Contains(c, "://") || strings.HasPrefix(c, "git@") || filepath.IsAbs(c) {
		return c
	}
	return filepath.Join(filepath.Dir(s.cfg.Path), c)
}

// ref resolves {{ref "component"}} for unit u: that component's index of the same version,
// by digest — published earlier in this run, or already complete in the target.
func (s *syncer) ref(u *unit, name string) (string, error) {
	if _, ok := s.cfg.Target.Layout(); ok {
		return "", fmt.Errorf("{{ref %q}}: component references need a registry target (BuildKit pulls the base from it)", name)
	}
	if d, ok := s.index(unitKey{u.app.App.Name, name, u.version.Version}); ok {
		return s.tgt.Ref(name) + "@" + d, nil
	}
	return "", fmt.Errorf("{{ref %q}}: %s %s is not published", name, name, u.version.Version)
}
