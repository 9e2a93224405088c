package main

import (
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/archmirror/archmirror/internal/report"
	"github.com/archmirror/archmirror/internal/run"
)

func buildCmd(g *globals) *cobra.Command {
	var job, logDir string
	cmd := &cobra.Command{
		Use:   "build --job ID",
		Short: "Build one job of the plan and record it in the registry (for a CI matrix)",
		Long: `build builds the job ID (app/component/version/os-arch, as plan --format github-matrix prints
it) on this machine's BuildKit, pushes the image by digest and records it in the target with the
tag archmirror-build-<version>-<os>-<arch>, where publish finds it: runners pass nothing to each
other. A job that is recorded already, or whose version is published, is not built again.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if job == "" {
				return usage(errors.New("--job ID is required (plan --format github-matrix lists them)"))
			}
			cfg, err := g.loadConfig()
			if err != nil {
				return err
			}
			rep, err := run.BuildJob(cmd.Context(), cfg, run.SyncOptions{Options: run.Options{Log: g.log, Version: versionString()}, LogDir: logDir}, job)
			switch {
			case errors.Is(err, run.ErrNoSuchJob):
				return usage(err)
			case err != nil:
				return failed(err)
			}
			if g.json {
				err = report.JSON(g.stdout, rep)
			} else if len(rep.Jobs) == 0 {
				_, err = fmt.Fprintf(g.stdout, "nothing to do: %s is published already\n", job)
			} else {
				err = report.SyncSummary(g.stdout, rep)
			}
			if err != nil {
				return err
			}
			if rep.Failed() {
				return failed(fmt.Errorf("%s failed (see above)", job))
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&job, "job", "", "the job to build")
	cmd.Flags().StringVar(&logDir, "log-dir", "", "where the build log goes (default <cache.dir>/logs)")
	return cmd
}

func publishCmd(g *globals) *cobra.Command {
	var versions []string
	cmd := &cobra.Command{
		Use:   "publish [--app A] [--version V]",
		Short: "Publish every version whose platforms are all built (recorded by build --job), move latest",
		Long: `publish assembles, for every version of the window that is not complete in the target, an OCI
index of the platforms it has and those build --job recorded, and tags it once every platform is
there; then it moves latest to the highest complete stable version. It builds nothing, and
running it again changes nothing. A version still missing a platform is listed and exits 1.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := g.loadConfig()
			if err != nil {
				return err
			}
			rep, err := run.Publish(cmd.Context(), cfg, run.SyncOptions{Options: run.Options{Log: g.log, Version: versionString()}}, versions...)
			if err != nil {
				return failed(err)
			}
			if g.json {
				err = report.JSON(g.stdout, rep)
			} else {
				err = report.SyncSummary(g.stdout, rep)
			}
			if err != nil {
				return err
			}
			if rep.Failed() {
				return failed(errors.New("some versions are not complete (see above)"))
			}
			return nil
		},
	}
	cmd.Flags().StringSliceVar(&versions, "version", nil, "only these versions (repeatable)")
	return cmd
}
