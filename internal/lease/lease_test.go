package lease_test

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/archmirror/archmirror/internal/config"
	"github.com/archmirror/archmirror/internal/lease"
	"github.com/archmirror/archmirror/internal/target"
	"github.com/archmirror/archmirror/internal/testenv"
)

// backends are the targets a lease lives in: docker-registry and an OCI layout.
var backends = []struct {
	name string
	root func(t *testing.T) string
}{
	{"docker-registry", func(t *testing.T) string { return testenv.Registry(t) + "/mirror" }},
	{"layout", func(t *testing.T) string { return "oci:" + t.TempDir() }},
}

func open(t *testing.T, root string) target.Target {
	t.Helper()
	tgt, err := target.New(config.Target{Registry: root})
	if err != nil {
		t.Fatal(err)
	}
	return tgt
}

func holderOf(t *testing.T, tgt target.Target) (string, time.Time) {
	t.Helper()
	st, err := tgt.Inspect(t.Context(), "app", lease.Tag)
	if err != nil || !st.Exists {
		t.Fatalf("lease tag: exists %v, %v", st.Exists, err)
	}
	until, err := time.Parse(time.RFC3339Nano, st.Annotations[lease.AnnotationExpires])
	if err != nil {
		t.Fatal(err)
	}
	return st.Annotations[lease.AnnotationHolder], until
}

// TestAcquireRelease: a free lease is taken; while held, another taker gets a HeldError naming
// the holder; once released it is free again.
func TestAcquireRelease(t *testing.T) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			tgt := open(t, b.root(t))
			l, err := lease.Acquire(t.Context(), tgt, "app", lease.Options{RunID: "first"})
			if err != nil {
				t.Fatal(err)
			}
			holder, until := holderOf(t, tgt)
			if want := "pid " + strconv.Itoa(os.Getpid()) + " first"; !strings.Contains(holder, want) || time.Until(until) < time.Minute {
				t.Errorf("lease holder %q until %v, want %q for about %v", holder, until, want, lease.DefaultTTL)
			}
			_, err = lease.Acquire(t.Context(), tgt, "app", lease.Options{RunID: "second"})
			var held *lease.HeldError
			if !errors.As(err, &held) || !strings.Contains(held.Holder, "first") {
				t.Fatalf("second Acquire: %v, want held by the first", err)
			}
			l.Release(t.Context())
			if _, until := holderOf(t, tgt); time.Until(until) > 0 {
				t.Errorf("released lease expires at %v, in the future", until)
			}
			l2, err := lease.Acquire(t.Context(), tgt, "app", lease.Options{RunID: "third"})
			if err != nil {
				t.Fatalf("Acquire after Release: %v", err)
			}
			l2.Release(t.Context())
		})
	}
}

// TestRenewAndLose: a holder renews its lease before it expires; when another takes it over
// (the holder's renewals stopped for longer than the TTL), the holder learns it lost it.
func TestRenewAndLose(t *testing.T) {
	tgt := open(t, testenv.Registry(t)+"/mirror")
	ttl := 900 * time.Millisecond // renewed every 300ms
	l, err := lease.Acquire(t.Context(), tgt, "app", lease.Options{RunID: "first", TTL: ttl})
	if err != nil {
		t.Fatal(err)
	}
	_, first := holderOf(t, tgt)
	// Polled, not timed: a loaded machine may renew late, never not at all.
	deadline := time.Now().Add(20 * time.Second)
	for {
		holder, renewed := holderOf(t, tgt)
		if !strings.Contains(holder, "first") {
			t.Fatalf("lease held by %q before anyone else took it", holder)
		}
		if renewed.After(first) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the lease was not renewed in 20s (still expires %v)", first)
		}
		time.Sleep(50 * time.Millisecond)
	}
	select {
	case <-l.Lost():
		t.Fatal("a renewed lease reported lost")
	default:
	}

	// Another process's clock says the lease has expired: it takes it over.
	late := func() time.Time { return time.Now().Add(time.Hour) }
	l2, err := lease.Acquire(t.Context(), tgt, "app", lease.Options{RunID: "second", TTL: 2 * time.Hour, Now: late})
	if err != nil {
		t.Fatalf("taking over an expired lease: %v", err)
	}
	defer l2.Release(t.Context())
	select {
	case <-l.Lost():
	case <-time.After(20 * time.Second):
		t.Fatal("the first holder did not notice in 20s that it lost the lease")
	}
	if holder, _ := holderOf(t, tgt); !strings.Contains(holder, "second") {
		t.Errorf("lease held by %q after the takeover, want second", holder)
	}
	l.Release(t.Context()) // must not take it back
	if holder, _ := holderOf(t, tgt); !strings.Contains(holder, "second") {
		t.Errorf("the loser's Release changed the lease to %q", holder)
	}
}

// TestDeadHolderOnThisMachine: a lease whose holder ran on this machine and has exited (kill -9
// leaves its lease behind) is free at once, without waiting for it to expire.
func TestDeadHolderOnThisMachine(t *testing.T) {
	tgt := open(t, "oci:"+t.TempDir())
	cmd := exec.Command("true")
	if err := cmd.Run(); err != nil {
		t.Fatal(err)
	}
	host, _ := os.Hostname()
	write := func(pid int) {
		idx := &v1.IndexManifest{SchemaVersion: 2, MediaType: types.OCIImageIndex, Manifests: []v1.Descriptor{}, Annotations: map[string]string{
			lease.AnnotationHolder:  "a dead run",
			lease.AnnotationHost:    host,
			lease.AnnotationPID:     strconv.Itoa(pid),
			lease.AnnotationExpires: time.Now().Add(time.Hour).Format(time.RFC3339Nano),
		}}
		st, err := tgt.Inspect(t.Context(), "app", lease.Tag)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := tgt.WriteIndex(t.Context(), "app", lease.Tag, idx, st.Digest); err != nil {
			t.Fatal(err)
		}
	}
	write(cmd.Process.Pid)
	l, err := lease.Acquire(t.Context(), tgt, "app", lease.Options{RunID: "next"})
	if err != nil {
		t.Fatalf("a dead holder's lease: %v", err)
	}
	l.Release(t.Context())

	// A live process's lease (this test's parent, say) is held.
	write(os.Getppid())
	var held *lease.HeldError
	if _, err := lease.Acquire(t.Context(), tgt, "app", lease.Options{RunID: "next"}); !errors.As(err, &held) {
		t.Fatalf("a live holder's lease: %v, want HeldError", err)
	}
}

// TestOneWinner: takers that all find the lease free at once end with exactly one holder,
// round after round.
func TestOneWinner(t *testing.T) {
	tgt := open(t, testenv.Registry(t)+"/mirror")
	for round := range 8 {
		var mu sync.Mutex
		var won []*lease.Lease
		var errs []error
		var wg sync.WaitGroup
		start := make(chan struct{})
		for i := range 4 {
			wg.Go(func() {
				<-start
				l, err := lease.Acquire(context.Background(), tgt, "app", lease.Options{RunID: "taker-" + strconv.Itoa(i)})
				mu.Lock()
				defer mu.Unlock()
				if err != nil {
					errs = append(errs, err)
					return
				}
				won = append(won, l)
			})
		}
		close(start)
		wg.Wait()
		if len(won) != 1 {
			t.Fatalf("round %d: %d takers hold the lease (errors: %v)", round, len(won), errs)
		}
		for _, err := range errs {
			var held *lease.HeldError
			if !errors.As(err, &held) {
				t.Fatalf("round %d: a loser's error is %v, want HeldError", round, err)
			}
		}
		won[0].Release(t.Context())
	}
}
