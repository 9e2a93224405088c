package run

import (
	"context"
	"fmt"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/archmirror/archmirror/internal/config"
	"github.com/archmirror/archmirror/internal/discover"
	"github.com/archmirror/archmirror/internal/fakeupstream"
	"github.com/archmirror/archmirror/internal/fixture"
	"github.com/archmirror/archmirror/internal/testenv"
)

// TestPlanStalledSource: the config's timeouts reach discovery; a registry source that
// accepts and never answers fails its own app, and the other app is planned.
func TestPlanStalledSource(t *testing.T) {
	stalled := testenv.Stalled(t)
	up := httptest.NewServer(fakeupstream.New(fixture.Fixture()))
	defer up.Close()
	cfg, err := config.Parse("c.yaml", []byte(fmt.Sprintf(`target: {registry: "oci:%s"}
cache: {dir: %q}
timeouts: {header: 300ms, request: 1s}
apps:
  stalled:
    source: {registry: "%s/acme/app"}
    components: {stalled: {context: ./ctx}}
  hello:
    source: {github: acme/hello, api: %q}
    components: {hello: {context: ./ctx}}
`, filepath.Join(t.TempDir(), "mirror"), t.TempDir(), stalled, up.URL)), discover.SourceKinds())

	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	p, err := Plan(ctx, cfg, Options{})
	if err != nil {
		t.Fatalf("plan: %v", err)
	}
	if e := p.Apps[0].Error; !strings.Contains(e, "discover stalled: registry "+stalled+"/acme/app") || !strings.Contains(e, stalled+": no answer within") {
		t.Errorf("stalled app: %q", e)
	}
	if e := p.Apps[1].Error; e != "" || len(p.Apps[1].Versions) == 0 {
		t.Errorf("hello: %d versions, error %q", len(p.Apps[1].Versions), e)
	}
}
