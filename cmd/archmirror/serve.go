package main

import (
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/archmirror/archmirror/internal/serve"
)

// TokenEnv holds the bearer token of the API's POST endpoints.
const TokenEnv = "ARCHMIRROR_API_TOKEN"

// AllowedHostsEnv is --allowed-hosts when the flag is not given: names separated by commas.
const AllowedHostsEnv = "ARCHMIRROR_ALLOWED_HOSTS"

func serveCmd(g *globals) *cobra.Command {
	var o serve.Options
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run sync on the config's schedule, with an HTTP API, a status page and metrics",
		Long: `serve runs sync on the config's schedule (cron, default "0 */6 * * *", in timezone:), one run
at a time: a trigger during a run is queued once, not stacked. It serves a status page at /, the
API under /api/v1 (POST /api/v1/runs needs Authorization: Bearer $ARCHMIRROR_API_TOKEN),
/metrics for Prometheus, /healthz and /readyz. Runs are kept in <cache.dir>/serve/history.db.
SIGHUP reloads the config (an invalid one is refused and the old one kept); SIGTERM stops:
the running sync is cancelled (nothing partial is tagged) and serve exits.

The API answers only requests whose Host is one of its names: the --listen host's (and
localhost, 127.0.0.1, [::1] when it is loopback), or any when --listen is a wildcard address
(0.0.0.0, [::]); --allowed-hosts (or $ARCHMIRROR_ALLOWED_HOSTS) adds names, and on a wildcard
address is then the only ones. Others get 421; /healthz and /readyz answer any Host.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			o.ConfigPath, o.Log, o.Version = g.config, g.log, versionString()
			o.Token = os.Getenv(TokenEnv)
			if v := os.Getenv(AllowedHostsEnv); v != "" && !cmd.Flags().Changed("allowed-hosts") {
				o.AllowedHosts = strings.Split(v, ",")
			}
			if err := positive("parallel", o.Parallel); err != nil {
				return err
			}
			s, err := serve.New(o)
			if err != nil {
				return usage(err)
			}
			hup := make(chan os.Signal, 1)
			signal.Notify(hup, syscall.SIGHUP)
			defer signal.Stop(hup)
			go func() {
				for range hup {
					_ = s.Reload() // a refused config is logged and shown on the status page
				}
			}()
			g.log.Info("serving", "addr", "http://"+s.Addr(), "config", o.ConfigPath, "post", o.Token != "")
			if err := s.Serve(cmd.Context()); err != nil {
				return failed(err)
			}
			return nil
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&o.Listen, "listen", serve.DefaultListen, "address of the API, status page and metrics")
	fl.StringSliceVar(&o.AllowedHosts, "allowed-hosts", nil, "Host names the API answers besides the listen host's, e.g. the reverse proxy's (default $"+AllowedHostsEnv+")")
	fl.StringVar(&o.HistoryPath, "history", "", "run history file (default <cache.dir>/serve/history.db)")
	fl.IntVar(&o.HistoryKeep, "history-keep", 500, "runs kept in the history")
	fl.IntVar(&o.Parallel, "parallel", 2, "jobs built at once in a run")
	fl.DurationVar(&o.StopTimeout, "stop-timeout", 60*time.Second, "how long SIGTERM waits for the running sync to stop")
	return cmd
}
