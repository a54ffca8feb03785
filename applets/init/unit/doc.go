// Package unit parses systemd-style unit files for corebox's init and for the
// fleet scheduler.
//
// It owns the syntax and the meaning of the keys it knows, following systemd:
// sections, comments ('#', ';'), backslash continuation lines, quoting and C
// escapes (systemd.syntax(7)); the specifiers %n, %N, %p, %i and %%, plus
// host ones such as %H and %m given in ParseOptions; time spans, booleans,
// signals and unit names; the rules a service must follow (ExecStart= count
// by Type=); the format of environment files (ParseEnvironmentFile); and the
// "$VAR" / "${VAR}" substitution in command lines at start time
// (Command.Expand).
//
// The keys understood are
//
//	[Unit]     Description After Before Requires Wants ConditionPathExists
//	[Service]  Type ExecStartPre ExecStart ExecStartPost ExecStop Restart
//	           RestartSec TimeoutStartSec TimeoutStopSec Environment
//	           EnvironmentFile WorkingDirectory KillSignal RemainAfterExit
//	[Install]  WantedBy RequiredBy
//
// and sections named X-* are kept verbatim in Unit.Extra. Anything else — an
// unknown section or key, a value these keys cannot take (Type=forking,
// Restart=on-abnormal, a "+" command prefix) — is a *SyntaxError rather than
// a warning: a unit that init cannot run as written is refused when it is
// loaded, not half-run. Keys named X-* inside the known sections are ignored,
// as systemd ignores them.
//
// The package only reads the reader or file it is given. It does not own
// where unit files live (search paths, drop-in directories, enablement
// symlinks), reading the files an EnvironmentFile= names, evaluating
// conditions, ordering units or resolving their dependencies, or running
// anything: those belong to init's supervisor. The meaning of [X-Fleet]
// belongs to fleet, which can use ExpandSpecifiers on its values.
package unit
