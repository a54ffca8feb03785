// Package machine owns what init learns about the machine before it starts
// anything: the kernel command line, the machine config and the machine id.
//
// ParseCmdline splits a kernel command line the way the kernel does (double
// quotes group words, `key="a b"` has the value `a b`) and keeps every
// parameter; its methods give the corebox keys typed and checked
// (corebox.config=, corebox.debug=, corebox.emergency=, corebox.hostname=)
// and the kernel's ip= parameter as a Network.
//
// A Config is the machine config: a strict JSON document (unknown fields,
// duplicate fields, wrong types and trailing data are errors) that Decode
// reads, ApplyDefaults completes and Validate checks, reporting every problem
// at once, each named by its field path ("network.address",
// "units[2].name"). Load fetches it from where corebox.config= points: the
// default embedded in the image, a file, or an HTTP(S) URL with retries.
// Config.Merge lets the command line's ip= and corebox.hostname= override
// the file.
//
// MachineID reads or creates the persistent machine id in systemd's format.
//
// The package only reads, checks and stores. It does not act on what it
// reads: setting the hostname, configuring interfaces, writing unit files and
// authorized keys belong to init and its other packages. Unit names are
// checked with package unit, so that the config accepts only units init can
// run; unit file contents are parsed by init when it loads them, not here.
package machine
