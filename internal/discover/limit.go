package discover

import "github.com/archmirror/archmirror/internal/hostlimit"

// DefaultHostConcurrency is how many requests one process sends to one upstream host at once,
// unless WithHostLimit says otherwise. GitHub asks API clients not to make concurrent
// requests; a few in flight keeps the discovery of many apps quick without looking like a
// flood.
const DefaultHostConcurrency = 4

// defaultHostLimit is shared by every source and gate that is not given WithHostLimit: an
// upstream counts a process's requests, not a source's. Like http.DefaultTransport's
// connection pool, it is shared on purpose.
var defaultHostLimit = hostlimit.New(DefaultHostConcurrency)
