// Package lease keeps two archmirror runs from working on one app at once: cron runs that
// overlap, two replicas of `serve`, a manual sync during a scheduled one. The lease is a tag in
// the app's first repository, `archmirror-lease`, pointing at an empty OCI index whose
// annotations name the holder and when the lease expires. Any writer of the registry can take
// it; nothing beyond the registry is needed.
//
// Registries have no compare-and-swap on tags, so taking the lease is an optimistic write
// checked after the fact: read the tag; if it is free (absent, released, expired, or held by a
// process of this machine that no longer runs) write ours, guarded by the digest read (the
// target's guarded write); then wait longer than another writer takes from its read to its PUT
// (twice our own, plus a margin) and read again. Whoever's lease the tag holds then has it;
// the other sees it taken and leaves the app alone. A writer slower than that wait can still
// overwrite a lease the first already saw as its own: both then work on the app, and what
// keeps the registry right is what always does — every tag write is guarded by the digest its
// writer read, a version is tagged only once complete, and latest only moves up. The lease is
// there to save the duplicated work, not to keep the registry consistent.
//
// A holder renews its lease every TTL/3; a renewal that finds another holder's lease (ours
// expired while the process was stopped, and someone took it) reports the loss through Lost.
// Release marks the lease released, so the next run need not wait for it to expire.
package lease

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"sync"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/archmirror/archmirror/internal/retry"
	"github.com/archmirror/archmirror/internal/target"
)

// Tag is the tag that holds an app's lease.
const Tag = "archmirror-lease"

// The lease index's annotations.
const (
	AnnotationHolder   = "dev.archmirror.lease.holder"   // "host pid run-id"
	AnnotationHost     = "dev.archmirror.lease.host"     // the holder's hostname
	AnnotationPID      = "dev.archmirror.lease.pid"      // the holder's process id
	AnnotationExpires  = "dev.archmirror.lease.expires"  // RFC 3339; in the past once released
	AnnotationAcquired = "dev.archmirror.lease.acquired" // RFC 3339, when this holder took it
)

// DefaultTTL is how long a lease lasts without renewal: how long a crashed holder on another
// machine keeps others away from its apps.
const DefaultTTL = 2 * time.Minute

// minSettle is the least wait between writing the lease and reading it back.
const minSettle = 50 * time.Millisecond

// Options describe the holder.
type Options struct {
	RunID string        // names the holder with its host and pid
	TTL   time.Duration // default DefaultTTL
	Log   *slog.Logger  // default: discard
	// Now and Sleep are the clock; tests replace them.
	Now   func() time.Time
	Sleep func(ctx context.Context, d time.Duration) error
}

func (o Options) withDefaults() Options {
	if o.TTL <= 0 {
		o.TTL = DefaultTTL
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Sleep == nil {
		o.Sleep = retry.Sleep
	}
	return o
}

// HeldError says another holder has the lease.
type HeldError struct {
	Repo   string
	Holder string
	Until  time.Time
}

func (e *HeldError) Error() string {
	return fmt.Sprintf("%s:%s is held by %s until %s", e.Repo, Tag, e.Holder, e.Until.UTC().Format(time.RFC3339))
}

// Lease is a lease this process holds on one repository's tag.
type Lease struct {
	t    target.Target
	repo string
	o    Options
	host string
	lost chan struct{}

	mu      sync.Mutex
	digest  string // what the tag points at: our latest write
	expires time.Time
	stop    context.CancelFunc
	done    chan struct{}
	gone    bool // lost: closed lost
}

// Acquire takes the lease of repo for this process, as the package comment describes, and
// keeps renewing it until Release. A lease someone else holds is a *HeldError.
func Acquire(ctx context.Context, t target.Target, repo string, o Options) (*Lease, error) {
	o = o.withDefaults()
	host, _ := os.Hostname()
	l := &Lease{t: t, repo: repo, o: o, host: host, lost: make(chan struct{})}
	start := o.Now()
	cur, err := t.Inspect(ctx, repo, Tag)
	if err != nil {
		return nil, fmt.Errorf("lease %s: %w", repo, err)
	}
	if held := l.heldBy(cur); held != nil {
		return nil, held
	}
	if cur.Exists {
		o.Log.Info("taking over a lease", "repo", repo, "was", cur.Annotations[AnnotationHolder], "expired", cur.Annotations[AnnotationExpires])
	}
	if err := l.write(ctx, cur.Digest, start); err != nil {
		if errors.Is(err, target.ErrConflict) {
			return nil, l.heldNow(ctx, err)
		}
		return nil, fmt.Errorf("lease %s: %w", repo, err)
	}
	window := o.Now().Sub(start)
	if err := o.Sleep(ctx, retry.Settle(window, minSettle, maxSettle)); err != nil {
		return nil, err
	}
	back, err := t.Inspect(ctx, repo, Tag)
	if err != nil {
		return nil, fmt.Errorf("lease %s: reading it back: %w", repo, err)
	}
	if back.Digest != l.digest {
		if held := l.heldBy(back); held != nil {
			o.Log.Info("lost the race for a lease", "repo", repo, "holder", held.Holder)
			return nil, held
		}
		return nil, fmt.Errorf("lease %s: the tag changed to %s after it was written", repo, back.Digest)
	}
	ctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	l.stop, l.done = cancel, make(chan struct{})
	go l.renew(ctx)
	o.Log.Debug("lease acquired", "repo", repo, "expires", l.expires)
	return l, nil
}

// Lost is closed when the lease is found taken by another holder or expired unrenewed.
func (l *Lease) Lost() <-chan struct{} { return l.lost }

// Release stops the renewals and marks the lease released (expired now), unless another holder
// has it by then. Errors are logged: an unreleased lease expires on its own.
func (l *Lease) Release(ctx context.Context) {
	// A run stopped by its context still releases what it holds.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	l.stop()
	<-l.done
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.gone {
		return
	}
	if err := l.writeLocked(ctx, l.digest, time.Time{}); err != nil {
		l.o.Log.Warn("could not release a lease; it expires on its own", "repo", l.repo, "expires", l.expires, "err", err)
	}
}

// renew writes the lease again every TTL/3 until Release, guarded by our last write.
func (l *Lease) renew(ctx context.Context) {
	defer close(l.done)
	for {
		if err := l.o.Sleep(ctx, l.o.TTL/3); err != nil {
			return
		}
		l.mu.Lock()
		err := l.writeLocked(ctx, l.digest, l.o.Now())
		expired := err != nil && !l.o.Now().Before(l.expires)
		if errors.Is(err, target.ErrConflict) || expired {
			l.gone = true
			close(l.lost)
			l.o.Log.Error("lease lost", "repo", l.repo, "err", err)
			l.mu.Unlock()
			return
		}
		if err != nil {
			l.o.Log.Warn("lease renewal failed; trying again", "repo", l.repo, "expires", l.expires, "err", err)
		}
		l.mu.Unlock()
	}
}

func (l *Lease) write(ctx context.Context, expect string, now time.Time) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.writeLocked(ctx, expect, now)
}

// writeLocked points the tag at a lease expiring TTL after now (a zero now: released),
// guarded by expect.
func (l *Lease) writeLocked(ctx context.Context, expect string, now time.Time) error {
	expires := now.Add(l.o.TTL)
	if now.IsZero() {
		expires = l.o.Now().Add(-time.Second)
	}
	idx := &v1.IndexManifest{
		SchemaVersion: 2,
		MediaType:     types.OCIImageIndex,
		Manifests:     []v1.Descriptor{},
		Annotations: map[string]string{
			AnnotationHolder:   l.holder(),
			AnnotationHost:     l.host,
			AnnotationPID:      strconv.Itoa(os.Getpid()),
			AnnotationExpires:  expires.UTC().Format(time.RFC3339Nano),
			AnnotationAcquired: l.o.Now().UTC().Format(time.RFC3339Nano),
		},
	}
	desc, err := l.t.WriteIndex(ctx, l.repo, Tag, idx, expect)
	if err != nil {
		return err
	}
	l.digest, l.expires = desc.Digest.String(), expires
	return nil
}

func (l *Lease) holder() string {
	return l.host + " pid " + strconv.Itoa(os.Getpid()) + " " + l.o.RunID
}

// heldBy is the HeldError of a lease tag someone else holds now, nil when it is free.
func (l *Lease) heldBy(st target.State) *HeldError {
	if !st.Exists || st.Digest == l.digest {
		return nil
	}
	a := st.Annotations
	until, err := time.Parse(time.RFC3339Nano, a[AnnotationExpires])
	if err != nil || !l.o.Now().Before(until) {
		return nil // expired, released, or not a lease we can read: free
	}
	if a[AnnotationHost] == l.host && l.host != "" {
		if pid, err := strconv.Atoi(a[AnnotationPID]); err == nil && pid > 0 && !alive(pid) {
			l.o.Log.Info("the lease's holder on this machine has exited", "repo", l.repo, "holder", a[AnnotationHolder])
			return nil
		}
	}
	return &HeldError{Repo: l.repo, Holder: a[AnnotationHolder], Until: until}
}

// heldNow explains a guarded write that found the tag changed: by now, someone else's lease.
func (l *Lease) heldNow(ctx context.Context, conflict error) error {
	st, err := l.t.Inspect(ctx, l.repo, Tag)
	if err == nil {
		if held := l.heldBy(st); held != nil {
			return held
		}
	}
	return fmt.Errorf("lease %s: %w", l.repo, conflict)
}

// maxSettle caps the wait: our read-to-PUT window is long mostly when a request of it was
// retried or stalled, and waiting a multiple of that delays every build of the run (the fault
// figures: +166 % under 2 s stalls before the cap). A writer slower than this may share the app;
// the guarded writes keep the registry right then.
const maxSettle = time.Second
