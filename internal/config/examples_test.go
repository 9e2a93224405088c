package config_test

import (
	"path/filepath"
	"testing"

	"github.com/archmirror/archmirror/internal/config"
	"github.com/archmirror/archmirror/internal/discover"
)

// Every config we ship must load.
func TestExamplesLoad(t *testing.T) {
	files, err := filepath.Glob("../../examples/*.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no examples found: %v", err)
	}
	for _, f := range files {
		if _, err := config.Load(f, discover.SourceKinds()); err != nil {
			t.Errorf("%v", err)
		}
	}
}
