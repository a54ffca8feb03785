// Package version holds the corebox version stamped into the binary at
// build time with -ldflags "-X github.com/corebox/corebox/internal/version.Version=…".
// It owns nothing else.
package version

// Version is set by the linker; "dev" means an unstamped build.
var Version = "dev"
