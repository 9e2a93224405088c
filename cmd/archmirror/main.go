// Command archmirror keeps a registry full of multi-arch mirrors of upstream applications.
// This file and its siblings only wire flags to the internal packages.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/archmirror/archmirror/internal/config"
	"github.com/archmirror/archmirror/internal/discover"
)

// version is set at build time: -ldflags "-X main.version=v0.1.0".
var version = ""

// Exit codes (DESIGN.md): 0 all done, 1 some job or app failed, 2 bad usage or config.
const (
	exitOK     = 0
	exitFailed = 1
	exitUsage  = 2
)

// exitError carries an exit code through cobra.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

func failed(err error) error { return &exitError{code: exitFailed, err: err} }

// refusedFlags names, per command, the global flags it has no use for: given, they are refused
// (exit 2) with why, never silently ignored.
func refusedFlags() map[string]map[string]string {
	serve := "serve runs every app of the config with its target, window and platforms (POST /api/v1/runs takes apps, max_versions and platforms per run)"
	return map[string]map[string]string{
		"build":   {"dry-run": "build has no dry run: `plan --format github-matrix` shows the jobs it would build"},
		"publish": {"dry-run": "publish has no dry run: `plan` shows the versions it would publish (complete, or recorded)"},
		"attest":  {"dry-run": "attest has no dry run: `verify` shows what a version carries"},
		"serve":   {"app": serve, "dry-run": serve, "target": serve, "max-versions": serve, "platform": serve},
	}
}

// checkFlags refuses a global flag cmd has no use for (refusedFlags).
func checkFlags(cmd *cobra.Command) error {
	for name, why := range refusedFlags()[cmd.Name()] {
		if f := cmd.Flags().Lookup(name); f != nil && f.Changed {
			return usage(fmt.Errorf("--%s does not apply: %s", name, why))
		}
	}
	return nil
}

// positive refuses a count flag below 1.
func positive(name string, n int) error {
	if n < 1 {
		return usage(fmt.Errorf("--%s %d: want 1 or more", name, n))
	}
	return nil
}

func usage(err error) error { return &exitError{code: exitUsage, err: err} }

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := execute(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// globals are the flags every command shares.
type globals struct {
	config   string
	apps     []string
	over     config.Overrides // --target, --max-versions, --platform
	dryRun   bool
	json     bool
	logLevel string
	stdout   io.Writer
	stderr   io.Writer
	log      *slog.Logger
}

func execute(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	g := &globals{stdout: stdout, stderr: stderr}
	root := &cobra.Command{
		Use:           "archmirror",
		Short:         "Keep a registry full of multi-arch mirrors of upstream applications",
		SilenceUsage:  true,
		SilenceErrors: true,
		PersistentPreRunE: func(cmd *cobra.Command, _ []string) error {
			var level slog.Level
			if err := level.UnmarshalText([]byte(g.logLevel)); err != nil {
				return usage(fmt.Errorf("--log-level %q: want debug, info, warn or error", g.logLevel))
			}
			g.log = g.logger(level)
			return checkFlags(cmd)
		},
	}
	root.SetArgs(args)
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.SetContext(ctx)
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usage(err) })
	pf := root.PersistentFlags()
	pf.StringVarP(&g.config, "config", "c", "archmirror.yaml", "config file")
	pf.StringSliceVar(&g.apps, "app", nil, "only these apps (repeatable, or comma-separated)")
	pf.BoolVar(&g.dryRun, "dry-run", false, "show what would be done, change nothing")
	pf.BoolVar(&g.json, "json", false, "print a JSON result on stdout")
	pf.StringVar(&g.logLevel, "log-level", "info", "debug, info, warn or error (logs go to stderr)")
	pf.StringVar(&g.over.Target, "target", "", "override the config's target.registry (REGISTRY/NAMESPACE or oci:DIR)")
	pf.IntVar(&g.over.MaxVersions, "max-versions", 0, "override every app's versions.max")
	pf.StringSliceVar(&g.over.Platforms, "platform", nil, "override every app's platforms (repeatable)")

	root.AddCommand(versionCmd(g), planCmd(g), syncCmd(g), buildCmd(g), publishCmd(g), attestCmd(g), verifyCmd(g), serveCmd(g))

	err := root.Execute()
	if err == nil {
		return exitOK
	}
	var ee *exitError
	if errors.As(err, &ee) {
		if ee.err != nil && ee.err.Error() != "" {
			fmt.Fprintln(stderr, "archmirror:", ee.err)
		}
		return ee.code
	}
	// Anything cobra itself rejects (unknown command, bad args) is usage.
	fmt.Fprintln(stderr, "archmirror:", err)
	return exitUsage
}

// logger logs to stderr at level.
func (g *globals) logger(level slog.Level) *slog.Logger {
	return slog.New(slog.NewTextHandler(g.stderr, &slog.HandlerOptions{Level: level}))
}

// loadConfig reads the config and narrows it to --app; problems are usage errors (exit 2).
func (g *globals) loadConfig() (*config.Config, error) {
	cfg, err := config.Load(g.config, discover.SourceKinds())
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, usage(fmt.Errorf("%w (pass -c FILE; examples/mirror.yaml is a starting point)", err))
		}
		return nil, usage(err)
	}
	if err := cfg.Select(g.apps...); err != nil {
		return nil, usage(fmt.Errorf("--app: %w", err))
	}
	if cfg, err = cfg.With(g.over); err != nil {
		return nil, usage(fmt.Errorf("--target/--max-versions/--platform: %w", err))
	}
	return cfg, nil
}

func versionString() string {
	if version != "" {
		return version
	}
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		return bi.Main.Version
	}
	return "devel"
}

func versionCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print archmirror's version",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			_, err := fmt.Fprintln(g.stdout, "archmirror", versionString())
			return err
		},
	}
}
