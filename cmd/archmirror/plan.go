package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/archmirror/archmirror/internal/plan"
	"github.com/archmirror/archmirror/internal/report"
	"github.com/archmirror/archmirror/internal/run"
)

func planCmd(g *globals) *cobra.Command {
	var format string
	var stage int
	cmd := &cobra.Command{
		Use:   "plan",
		Short: "Show which versions are mirrored and which jobs a sync would run",
		Long: `plan discovers each app's upstream versions, inspects the target, and prints the jobs
(version × component × platform) still to build. It changes nothing.

Formats: table (default on a terminal), json (--json), github-matrix ({"include": [...]}, for
a GitHub Actions strategy matrix; --stage N keeps one stage of the component DAG).
Exit status: 0 when the plan was computed (even with jobs to do), 1 when an app could not be
discovered or inspected (the others are still planned), 2 for bad usage or config.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if g.json {
				if cmd.Flags().Changed("format") && format != "json" {
					return usage(fmt.Errorf("--json and --format %s contradict each other", format))
				}
				format = "json"
			}
			switch format {
			case "table", "json", "github-matrix":
			default:
				return usage(fmt.Errorf("--format %q: want table, json or github-matrix", format))
			}
			if cmd.Flags().Changed("stage") && format != "github-matrix" {
				return usage(fmt.Errorf("--stage goes with --format github-matrix"))
			}
			cfg, err := g.loadConfig()
			if err != nil {
				return err
			}
			p, err := run.Plan(cmd.Context(), cfg, run.Options{Log: g.log})
			if err != nil {
				return failed(err)
			}
			switch format {
			case "json":
				err = report.JSON(g.stdout, p)
			case "github-matrix":
				m := p.Matrix(stage)
				if len(m.Include) > plan.GitHubMatrixLimit {
					g.log.Warn("the matrix has more jobs than GitHub Actions runs in one matrix; split it with --stage or --app",
						"jobs", len(m.Include), "limit", plan.GitHubMatrixLimit)
				}
				err = report.JSONCompact(g.stdout, m)
			default:
				err = report.PlanTable(g.stdout, p)
			}
			if err != nil {
				return err
			}
			if p.Failed() {
				return failed(fmt.Errorf("some apps could not be planned (see above)"))
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&format, "format", "table", "table, json or github-matrix")
	cmd.Flags().IntVar(&stage, "stage", -1, "with github-matrix: only the jobs of this stage (0 = no dependencies)")
	return cmd
}
