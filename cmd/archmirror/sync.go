package main

import (
	"fmt"
	"io"
	"log/slog"
	"os"

	"golang.org/x/term"

	"github.com/spf13/cobra"

	"github.com/archmirror/archmirror/internal/report"
	"github.com/archmirror/archmirror/internal/run"
)

func syncCmd(g *globals) *cobra.Command {
	var parallel, perBuilder int
	var logDir string
	cmd := &cobra.Command{
		Use:   "sync",
		Short: "Build the missing platforms, publish complete multi-arch indexes, move latest",
		Long: `sync plans (as plan does), builds every missing version × component × platform with
BuildKit, pushes each image by digest, publishes one OCI index per version once every platform
is built, and moves latest to the highest stable version. A failed job stops only its own
version; the run goes on and exits 1. --dry-run prints the plan and builds nothing.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := positive("parallel", parallel); err != nil {
				return err
			}
			if perBuilder < 0 {
				return usage(fmt.Errorf("--per-builder %d: want 1 or more (0: --parallel)", perBuilder))
			}
			cfg, err := g.loadConfig()
			if err != nil {
				return err
			}
			opts := run.SyncOptions{Options: run.Options{Log: g.log, Version: versionString()}, Parallel: parallel, PerBuilder: perBuilder, DryRun: g.dryRun, LogDir: logDir}
			// A signing key that does not open is a config problem: say so before building. A dry
			// run builds and signs nothing, so it only warns.
			if opts.Signer, err = run.Signer(cfg.Sign); err != nil {
				if !g.dryRun {
					return usage(err)
				}
				g.log.Warn("a real sync could not sign", "err", err)
				opts.Signer = nil
			}
			if width, ok := terminal(g.stderr); ok && !g.dryRun {
				// The live display says what the info logs would; keep only warnings and errors
				// unless --log-level asks otherwise.
				if !cmd.Flags().Changed("log-level") {
					opts.Log = g.logger(slog.LevelWarn)
				}
				p := report.NewProgress(g.stderr, width)
				defer p.Close()
				opts.Progress = p
			}
			rep, err := run.Sync(cmd.Context(), cfg, opts)
			if err != nil {
				return failed(err)
			}
			switch {
			case g.json:
				err = report.JSON(g.stdout, rep)
			case g.dryRun:
				err = report.PlanTable(g.stdout, rep.Plan)
			default:
				err = report.SyncSummary(g.stdout, rep)
			}
			if err != nil {
				return err
			}
			if g.dryRun {
				if rep.Plan.Failed() {
					return failed(fmt.Errorf("some apps could not be planned"))
				}
				return nil
			}
			if rep.Failed() {
				return failed(fmt.Errorf("some jobs failed (see above)"))
			}
			return nil
		},
	}
	cmd.Flags().IntVar(&parallel, "parallel", 2, "jobs built at once")
	cmd.Flags().IntVar(&perBuilder, "per-builder", 0, "jobs at once on one BuildKit endpoint (default: --parallel)")
	cmd.Flags().StringVar(&logDir, "log-dir", "", "where build logs go (default <cache.dir>/logs)")
	return cmd
}

// terminal reports whether w is a terminal, and its width.
func terminal(w io.Writer) (int, bool) {
	f, ok := w.(*os.File)
	if !ok || !term.IsTerminal(int(f.Fd())) {
		return 0, false
	}
	width, _, err := term.GetSize(int(f.Fd()))
	if err != nil {
		width = 100
	}
	return width, true
}
