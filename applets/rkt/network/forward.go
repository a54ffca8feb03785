package network

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/google/nftables/userdata"
)

// Forward is a port forward from the host to a pod: what arrives for
// HostPort (Protocol "tcp" or "udp") at any of the host's own addresses,
// 127.0.0.1 included, goes to the pod's address at PodPort.
type Forward struct {
	Protocol string `json:"protocol"`
	HostPort uint16 `json:"hostPort"`
	PodPort  uint16 `json:"podPort"`
}

func (f Forward) String() string {
	return fmt.Sprintf("%s/%d->%d", f.Protocol, f.HostPort, f.PodPort)
}

// hostKey names the host port f takes: "tcp/8080".
func (f Forward) hostKey() string { return f.Protocol + "/" + strconv.Itoa(int(f.HostPort)) }

// check accepts a known protocol and non-zero ports.
func (f Forward) check() error {
	if f.Protocol != "tcp" && f.Protocol != "udp" {
		return fmt.Errorf("forward %s: protocol %q: want tcp or udp", f, f.Protocol)
	}
	if f.HostPort == 0 || f.PodPort == 0 {
		return fmt.Errorf("forward %s: port 0", f)
	}
	return nil
}

// checkForwards checks each forward and that no host port is taken twice.
func checkForwards(fwds []Forward) error {
	seen := make(map[string]bool, len(fwds))
	for _, f := range fwds {
		if err := f.check(); err != nil {
			return err
		}
		if seen[f.hostKey()] {
			return fmt.Errorf("host port %s is forwarded twice", f.hostKey())
		}
		seen[f.hostKey()] = true
	}
	return nil
}

// forwardTagPrefix starts the comment of every forwarding rule.
const forwardTagPrefix = "corebox-rkt"

// maxForwardTag is what a rule's comment may hold: the kernel takes 256
// bytes of user data, three of which are the comment's type, its length
// and its terminating NUL.
const maxForwardTag = 253

// forwardTag is the comment of podID's rule for f: "corebox-rkt pod=ID
// tcp/8080". It names the pod, so that Teardown finds the pod's rules, and
// the host port, so that Setup sees every network's taken ports.
func forwardTag(podID string, f Forward) string {
	return forwardTagPrefix + " pod=" + podID + " " + f.hostKey()
}

// forwardUserData is a rule's user data holding tag as its comment, as
// the nft command writes one.
func forwardUserData(tag string) []byte {
	return userdata.AppendString(nil, userdata.TypeComment, tag)
}

// parseForwardTag reads the user data of a rule made with forwardUserData
// back into the pod and the host port ("tcp/8080"); ok is false for
// anything else (rules corebox did not make).
func parseForwardTag(udata []byte) (podID, hostKey string, ok bool) {
	// Exactly one comment, NUL-terminated: what forwardUserData makes.
	if len(udata) < 3 || udata[0] != byte(userdata.TypeComment) || int(udata[1]) != len(udata)-2 || udata[len(udata)-1] != 0 {
		return "", "", false
	}
	tag := string(udata[2 : len(udata)-1])
	fields := strings.Split(tag, " ")
	if len(fields) != 3 || fields[0] != forwardTagPrefix {
		return "", "", false
	}
	podID, ok = strings.CutPrefix(fields[1], "pod=")
	if !ok || checkPodID(podID) != nil {
		return "", "", false
	}
	proto, port, ok := strings.Cut(fields[2], "/")
	if !ok {
		return "", "", false
	}
	p, err := strconv.ParseUint(port, 10, 16)
	if err != nil {
		return "", "", false
	}
	f := Forward{Protocol: proto, HostPort: uint16(p), PodPort: 1}
	if f.check() != nil || f.hostKey() != fields[2] {
		return "", "", false
	}
	return podID, fields[2], true
}
