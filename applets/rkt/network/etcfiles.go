package network

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"strings"

	"golang.org/x/sys/unix"
)

// hostResolvConf is the host's resolver configuration, copied by
// WriteResolvConf when asked to.
const hostResolvConf = "/etc/resolv.conf"

// checkHostname accepts an RFC 1123 host name of at most 64 bytes (the
// kernel's limit for a UTS host name): dot-separated labels of letters,
// digits and inner hyphens, 1 to 63 bytes each.
func checkHostname(name string) error {
	if name == "" {
		return errors.New("hostname is empty")
	}
	if len(name) > 64 {
		return fmt.Errorf("hostname %.20q… is longer than 64 bytes", name)
	}
	for label := range strings.SplitSeq(name, ".") {
		if label == "" || len(label) > 63 {
			return fmt.Errorf("hostname %q has an empty label or one longer than 63 bytes", name)
		}
		if label[0] == '-' || label[len(label)-1] == '-' {
			return fmt.Errorf("hostname %q has a label that starts or ends with '-'", name)
		}
		for _, c := range []byte(label) {
			if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-') {
				return fmt.Errorf("hostname %q contains %q: only letters, digits, '-' and '.' are allowed", name, c)
			}
		}
	}
	return nil
}

// hostsContent is a pod's /etc/hosts: localhost on both loopback
// addresses, and the host name on the pod's address (a nil a: a pod without
// a pod network, whose host name is on 127.0.1.1 as Debian does it).
func hostsContent(hostname string, a *Attachment) []byte {
	var b bytes.Buffer
	b.WriteString("# Written by corebox rkt for this pod.\n")
	b.WriteString("127.0.0.1\tlocalhost localhost.localdomain\n")
	b.WriteString("::1\tlocalhost ip6-localhost ip6-loopback\n")
	ip := netip.MustParseAddr("127.0.1.1")
	if a != nil {
		ip = a.IP
	}
	short, _, _ := strings.Cut(hostname, ".")
	if short != hostname {
		fmt.Fprintf(&b, "%s\t%s %s\n", ip, hostname, short)
	} else {
		fmt.Fprintf(&b, "%s\t%s\n", ip, hostname)
	}
	return b.Bytes()
}

// WriteHosts writes rootfsEtc/hosts for a pod named hostname attached as a
// (nil when the pod has no pod network). rootfsEtc is the pod's own etc
// directory, already resolved inside its rootfs by the caller; it must
// exist and must not be a symlink. A hosts file already there (or a
// symlink in its place) is replaced, never followed.
func WriteHosts(rootfsEtc string, hostname string, a *Attachment) error {
	if err := checkHostname(hostname); err != nil {
		return fmt.Errorf("writing the pod's hosts file: %w", err)
	}
	if a != nil && !a.IP.IsValid() {
		return errors.New("writing the pod's hosts file: the attachment has no address")
	}
	return replaceEtcFile(rootfsEtc, "hosts", hostsContent(hostname, a))
}

// resolvConfContent is a resolv.conf naming the servers dns, each an IP
// address.
func resolvConfContent(dns []string) ([]byte, error) {
	var b bytes.Buffer
	b.WriteString("# Written by corebox rkt for this pod.\n")
	for _, s := range dns {
		ip, err := netip.ParseAddr(s)
		if err != nil {
			return nil, fmt.Errorf("DNS server %q is not an IP address", s)
		}
		if ip.Zone() != "" {
			return nil, fmt.Errorf("DNS server %q has a zone: not usable inside a pod", s)
		}
		fmt.Fprintf(&b, "nameserver %s\n", ip)
	}
	return b.Bytes(), nil
}

// WriteResolvConf writes rootfsEtc/resolv.conf for a pod: with dns given,
// one nameserver line for each (each must be an IP address); otherwise,
// with fromHost, a copy of the host's /etc/resolv.conf (right for
// --net=host; on the pod network a loopback resolver of the host is not
// reachable, so pass dns there); with neither, the image's own file is left
// alone. rootfsEtc is as for WriteHosts.
func WriteResolvConf(rootfsEtc string, dns []string, fromHost bool) error {
	var content []byte
	switch {
	case len(dns) > 0:
		c, err := resolvConfContent(dns)
		if err != nil {
			return fmt.Errorf("writing the pod's resolv.conf: %w", err)
		}
		content = c
	case fromHost:
		c, err := os.ReadFile(hostResolvConf)
		if err != nil {
			return fmt.Errorf("writing the pod's resolv.conf: reading the host's: %w", err)
		}
		content = c
	default:
		return nil
	}
	return replaceEtcFile(rootfsEtc, "resolv.conf", content)
}

// replaceEtcFile atomically replaces etcDir/name with content (mode 0644),
// without following a symlink at etcDir or at etcDir/name: it opens etcDir
// itself with O_NOFOLLOW, writes a new file inside it and renames it over
// name.
func replaceEtcFile(etcDir, name string, content []byte) error {
	dirFD, err := unix.Open(etcDir, unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		if errors.Is(err, unix.ELOOP) || errors.Is(err, unix.ENOTDIR) {
			return fmt.Errorf("writing %s: %s is a symlink or not a directory", name, etcDir)
		}
		return fmt.Errorf("writing %s: opening %s: %w", name, etcDir, err)
	}
	defer unix.Close(dirFD)
	var rnd [6]byte
	if _, err := rand.Read(rnd[:]); err != nil {
		return fmt.Errorf("writing %s/%s: %w", etcDir, name, err)
	}
	tmp := "." + name + ".corebox-" + hex.EncodeToString(rnd[:])
	fd, err := unix.Openat(dirFD, tmp, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o644)
	if err != nil {
		return fmt.Errorf("writing %s/%s: %w", etcDir, name, err)
	}
	f := os.NewFile(uintptr(fd), etcDir+"/"+tmp)
	_, err = f.Write(content)
	if err == nil {
		err = f.Chmod(0o644) // the umask may have narrowed it
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = unix.Renameat(dirFD, tmp, dirFD, name)
	}
	if err != nil {
		unix.Unlinkat(dirFD, tmp, 0)
		return fmt.Errorf("writing %s/%s: %w", etcDir, name, err)
	}
	return nil
}
