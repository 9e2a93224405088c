package discover

import (
	"context"
	"io"
	"log"
	"net/http/httptest"
	"sort"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

func TestRegistry(t *testing.T) {
	srv := httptest.NewServer(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
	defer srv.Close()
	host := strings.TrimPrefix(srv.URL, "http://")
	img, err := random.Image(256, 1)
	if err != nil {
		t.Fatal(err)
	}
	for _, tag := range []string{"1.25.3", "1.26.0", "latest", "1.27.0-alpine", "1", "1.26"} {
		ref, err := name.NewTag(host+"/library/nginx:"+tag, name.Insecure)
		if err != nil {
			t.Fatal(err)
		}
		if err := remote.Write(ref, img); err != nil {
			t.Fatal(err)
		}
	}
	src := NewRegistry(host+"/library/nginx", WithInsecure(true), WithKeychain(authn.NewMultiKeychain()))
	got, err := src.Releases(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var tags []string
	for _, r := range got {
		tags = append(tags, r.Tag)
	}
	sort.Strings(tags)
	if want := "1 1.25.3 1.26 1.26.0 1.27.0-alpine latest"; strings.Join(tags, " ") != want {
		t.Errorf("tags %v, want %s", tags, want)
	}

	res, err := Discover(context.Background(), src, app("nginx"), win(10, ""), nil, hermetic()...)
	if err != nil {
		t.Fatal(err)
	}
	if v := versions(res); v != "1.26.0 1.25.3" || res.Latest != "1.26.0" {
		t.Errorf("versions %q latest %q", v, res.Latest)
	}

	_, err = NewRegistry(host+"/library/missing", WithInsecure(true), WithKeychain(authn.NewMultiKeychain())).Releases(context.Background())
	if err == nil || !strings.Contains(err.Error(), "registry "+host+"/library/missing: listing tags") {
		t.Errorf("missing repo: %v", err)
	}
	if _, err := NewRegistry("UPPER/Case!!").Releases(context.Background()); err == nil {
		t.Errorf("bad repository name accepted")
	}
}
