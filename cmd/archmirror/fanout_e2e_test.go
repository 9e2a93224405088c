package main

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	mrand "math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/archmirror/archmirror/internal/lease"
	"github.com/archmirror/archmirror/internal/run"
	"github.com/archmirror/archmirror/internal/testenv"
)

// archmirrorProc runs the test binary as archmirror in its own process.
func archmirrorProc(args ...string) *exec.Cmd {
	cmd := exec.Command(os.Args[0], args...)
	cmd.Env = append(os.Environ(), asMainEnv+"=1")
	return cmd
}

func runProc(t *testing.T, args ...string) (string, int) {
	t.Helper()
	cmd := archmirrorProc(args...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	if code != 0 {
		t.Logf("archmirror %s: exit %d\n%s\n%s", strings.Join(args, " "), code, out.String(), errb.String())
	}
	return out.String(), code
}

// pemKey writes a plain PKCS#8 signing key.
func pemKey(t *testing.T) string {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, _ := x509.MarshalPKCS8PrivateKey(k)
	path := filepath.Join(t.TempDir(), "signing.key")
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// tagsOf lists repo's tags with their digests, leaving out archmirror's staging tags and the
// referrers tag schema's sha256-… indexes.
func tagsOf(t *testing.T, repo string) map[string]string {
	t.Helper()
	r, err := name.NewRepository(repo)
	if err != nil {
		t.Fatal(err)
	}
	tags, err := remote.List(r)
	if err != nil && strings.Contains(err.Error(), "NAME_UNKNOWN") {
		return map[string]string{} // nothing pushed there yet
	}
	if err != nil {
		t.Fatalf("%s: %v", repo, err)
	}
	out := map[string]string{}
	for _, tag := range tags {
		if strings.HasPrefix(tag, run.StagingPrefix) || strings.HasPrefix(tag, "sha256-") || tag == lease.Tag {
			continue
		}
		d, err := remote.Head(r.Tag(tag))
		if err != nil {
			t.Fatal(err)
		}
		out[tag] = d.Digest.String()
	}
	return out
}

// TestFanOut mirrors the fixture twice into one registry: once with a single `sync`, once the
// CI way — plan, then `build --job` for each job in shuffled order from separate processes (one
// of them killed in the middle of its build and run again), publish, the next stage, publish,
// attest. Every tag of the two must point at the same digest: builds are reproducible, and the
// registry-carried state converges to what sync does.
func TestFanOut(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the fixture twice")
	}
	key := pemKey(t)
	w := testenv.NewWorld(t, testenv.WithSign("{key: 'file://"+key+"'}"))
	single, fanout := w.Registry+"/single", w.Registry+"/fanout"

	if out, code := runProc(t, "sync", "-c", w.ConfigPath, "--target", single, "--parallel", "4"); code != 0 {
		t.Fatalf("sync: exit %d\n%s", code, out)
	}

	// The runners build on another buildkitd, which has none of the first one's cache: equal
	// digests mean the builds are reproducible, not that a cache answered twice.
	other := testenv.BuildKit(t, w.Registry)
	text, err := os.ReadFile(w.ConfigPath)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(text, []byte(strconv.Quote(w.BuildKit))) {
		t.Fatalf("the world's config does not name its buildkitd:\n%s", text)
	}
	fanCfg := filepath.Join(filepath.Dir(w.ConfigPath), "fanout.yaml")
	if err := os.WriteFile(fanCfg, bytes.ReplaceAll(text, []byte(strconv.Quote(w.BuildKit)), []byte(strconv.Quote(other))), 0o644); err != nil {
		t.Fatal(err)
	}

	// Rounds of plan --stage 0 → build → publish, as the CI workflow runs them: twostep's app
	// component is stage 1 until its base is published, and stage 0 of the next round.
	killed := false
	rounds := 0
	for round := 0; ; round++ {
		const stage = 0
		out, code := runProc(t, "plan", "-c", fanCfg, "--target", fanout, "--format", "github-matrix", "--stage", "0")
		if code != 0 {
			t.Fatalf("plan --stage 0: exit %d", code)
		}
		var matrix struct {
			Include []struct {
				Job      string `json:"job"`
				Platform string `json:"platform"`
				Stage    int    `json:"stage"`
			} `json:"include"`
		}
		if err := json.Unmarshal([]byte(out), &matrix); err != nil {
			t.Fatalf("plan output: %v\n%s", err, out)
		}
		if len(matrix.Include) == 0 {
			break
		}
		if round == 3 {
			t.Fatalf("still %d jobs after 3 rounds", len(matrix.Include))
		}
		rounds++
		jobs := make([]string, 0, len(matrix.Include))
		for _, j := range matrix.Include {
			if j.Stage != stage {
				t.Fatalf("plan --stage %d listed %s of stage %d", stage, j.Job, j.Stage)
			}
			jobs = append(jobs, j.Job)
		}
		mrand.Shuffle(len(jobs), func(i, j int) { jobs[i], jobs[j] = jobs[j], jobs[i] })

		if !killed {
			// Kill one runner in the middle of its build (its tarball download held), then run
			// its job again.
			victim := ""
			for _, j := range jobs {
				if strings.HasPrefix(j, "hello/hello/") {
					victim = j
					break
				}
			}
			parts := strings.Split(victim, "/")
			file := "hello/hello-" + parts[2] + "-" + parts[3]
			release := w.Upstream.Hold(file)
			cmd := archmirrorProc("build", "-c", fanCfg, "--target", fanout, "--job", victim)
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			deadline := time.Now().Add(60 * time.Second)
			for w.Upstream.Hits("/files/"+file) == 0 {
				if time.Now().After(deadline) {
					t.Fatalf("the build of %s never started", victim)
				}
				time.Sleep(50 * time.Millisecond)
			}
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
			release()
			killed = true
			t.Logf("killed the runner of %s mid-build; it runs again with the others", victim)
		}

		// The runners: separate processes, four at a time, in shuffled order.
		var wg sync.WaitGroup
		sem := make(chan struct{}, 4)
		var mu sync.Mutex
		var failed []string
		for _, j := range jobs {
			wg.Add(1)
			go func() {
				defer wg.Done()
				sem <- struct{}{}
				defer func() { <-sem }()
				if _, code := runProc(t, "build", "-c", fanCfg, "--target", fanout, "--job", j); code != 0 {
					mu.Lock()
					failed = append(failed, j)
					mu.Unlock()
				}
			}()
		}
		wg.Wait()
		if len(failed) > 0 {
			t.Fatalf("build --job failed: %v", failed)
		}
		// A re-run of a recorded job builds nothing.
		out, code = runProc(t, "build", "-c", fanCfg, "--target", fanout, "--job", jobs[0], "--json")
		var rep run.Report
		if code != 0 || json.Unmarshal([]byte(out), &rep) != nil || len(rep.Jobs) != 1 || rep.Jobs[0].Builder != "recorded" {
			t.Fatalf("re-run of %s: exit %d %s", jobs[0], code, out)
		}
		// Exit 1 while a later stage is still to come.
		runProc(t, "publish", "-c", fanCfg, "--target", fanout)
	}
	if rounds != 2 {
		t.Errorf("%d rounds, want 2 (the base, then the app built FROM it)", rounds)
	}
	if out, code := runProc(t, "publish", "-c", fanCfg, "--target", fanout); code != 0 {
		t.Fatalf("publish again: exit %d\n%s", code, out)
	}
	if out, code := runProc(t, "attest", "-c", fanCfg, "--target", fanout); code != 0 {
		t.Fatalf("attest: exit %d\n%s", code, out)
	}

	// The same registry state, tag for tag and digest for digest.
	for _, repo := range []string{"hello", "hello-fork", "twostep-base", "twostep"} {
		a, b := tagsOf(t, single+"/"+repo), tagsOf(t, fanout+"/"+repo)
		var names []string
		for tag := range a {
			names = append(names, tag)
		}
		sort.Strings(names)
		if len(a) == 0 || len(a) != len(b) {
			t.Errorf("%s: sync has tags %v, the fan-out %v", repo, a, b)
			continue
		}
		for _, tag := range names {
			if a[tag] != b[tag] {
				t.Errorf("%s:%s is %s after sync but %s after the fan-out", repo, tag, a[tag], b[tag])
			}
		}
	}
	// And the fan-out's versions verify like sync's.
	pub, err := pubKeyOf(key)
	if err != nil {
		t.Fatal(err)
	}
	if out, code := runProc(t, "verify", fanout+"/twostep:latest", "--key", pub); code != 0 {
		t.Fatalf("verify: exit %d\n%s", code, out)
	}
}

// pubKeyOf writes the public half of a PEM private key next to it.
func pubKeyOf(keyPath string) (string, error) {
	b, err := os.ReadFile(keyPath)
	if err != nil {
		return "", err
	}
	blk, _ := pem.Decode(b)
	k, err := x509.ParsePKCS8PrivateKey(blk.Bytes)
	if err != nil {
		return "", err
	}
	der, err := x509.MarshalPKIXPublicKey(k.(*ecdsa.PrivateKey).Public())
	if err != nil {
		return "", err
	}
	path := keyPath + ".pub"
	return path, os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}), 0o644)
}
