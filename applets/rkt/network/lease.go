package network

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"time"

	"golang.org/x/sys/unix"
)

// Lease is one pod's address on a network, as recorded in the lease file.
type Lease struct {
	PodID    string     `json:"pod"`
	IP       netip.Addr `json:"ip"`
	HostVeth string     `json:"hostVeth"`
	Forwards []Forward  `json:"forwards,omitempty"` // host ports forwarded to the pod
}

// leaseFile is the content of StateDir/<bridge>/leases.json.
type leaseFile struct {
	Subnet netip.Prefix `json:"subnet"`
	Leases []Lease      `json:"leases"`
}

const (
	leaseFileName = "leases.json"
	lockFileName  = "lock"
	// maxLeaseFileSize bounds what parseLeaseFile reads: a /8 full of leases
	// is far below it, anything larger is not ours.
	maxLeaseFileSize = 64 << 20
)

// parseLeaseFile parses and checks a lease file: a known subnet, every lease
// a valid pod ID with a host address of the subnet (not the network,
// gateway or broadcast address) and valid forwards, no address, pod or
// forwarded host port twice.
func parseLeaseFile(data []byte) (leaseFile, error) {
	var lf leaseFile
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&lf); err != nil {
		return leaseFile{}, fmt.Errorf("decoding lease file: %w", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return leaseFile{}, errors.New("decoding lease file: trailing data after the JSON object")
	}
	if err := checkSubnet(lf.Subnet); err != nil {
		return leaseFile{}, fmt.Errorf("lease file: %w", err)
	}
	ips := make(map[netip.Addr]string, len(lf.Leases))
	pods := make(map[string]bool, len(lf.Leases))
	hostPorts := map[string]string{}
	for _, l := range lf.Leases {
		if err := checkPodID(l.PodID); err != nil {
			return leaseFile{}, fmt.Errorf("lease file: %w", err)
		}
		if err := checkHostAddr(lf.Subnet, l.IP); err != nil {
			return leaseFile{}, fmt.Errorf("lease file: pod %s: %w", l.PodID, err)
		}
		if err := checkInterfaceName(l.HostVeth); err != nil {
			return leaseFile{}, fmt.Errorf("lease file: pod %s: host veth: %w", l.PodID, err)
		}
		if other, dup := ips[l.IP]; dup {
			return leaseFile{}, fmt.Errorf("lease file: address %s is leased to both %s and %s", l.IP, other, l.PodID)
		}
		if pods[l.PodID] {
			return leaseFile{}, fmt.Errorf("lease file: pod %s has two leases", l.PodID)
		}
		if err := checkForwards(l.Forwards); err != nil {
			return leaseFile{}, fmt.Errorf("lease file: pod %s: %w", l.PodID, err)
		}
		for _, f := range l.Forwards {
			if other, dup := hostPorts[f.hostKey()]; dup {
				return leaseFile{}, fmt.Errorf("lease file: host port %s is forwarded to both %s and %s", f.hostKey(), other, l.PodID)
			}
			hostPorts[f.hostKey()] = l.PodID
		}
		ips[l.IP] = l.PodID
		pods[l.PodID] = true
	}
	return lf, nil
}

// checkHostAddr says whether ip may be leased to a pod on subnet.
func checkHostAddr(subnet netip.Prefix, ip netip.Addr) error {
	switch {
	case !ip.Is4():
		return fmt.Errorf("address %s is not IPv4", ip)
	case !subnet.Contains(ip):
		return fmt.Errorf("address %s is outside subnet %s", ip, subnet)
	case ip == subnet.Addr():
		return fmt.Errorf("address %s is the network address of %s", ip, subnet)
	case ip == gateway(subnet):
		return fmt.Errorf("address %s is the gateway of %s", ip, subnet)
	case ip == broadcast(subnet):
		return fmt.Errorf("address %s is the broadcast address of %s", ip, subnet)
	}
	return nil
}

func (lf *leaseFile) find(podID string) (Lease, bool) {
	i := slices.IndexFunc(lf.Leases, func(l Lease) bool { return l.PodID == podID })
	if i < 0 {
		return Lease{}, false
	}
	return lf.Leases[i], true
}

func (lf *leaseFile) remove(podID string) {
	lf.Leases = slices.DeleteFunc(lf.Leases, func(l Lease) bool { return l.PodID == podID })
}

// allocate leases the lowest free host address of the subnet to podID,
// with the host ports of fwds (checked with checkForwards) that no other
// lease forwards.
func (lf *leaseFile) allocate(podID, hostVeth string, fwds []Forward) (Lease, error) {
	if l, ok := lf.find(podID); ok {
		return Lease{}, fmt.Errorf("pod %s already has address %s on subnet %s", podID, l.IP, lf.Subnet)
	}
	used := make(map[netip.Addr]bool, len(lf.Leases))
	for _, l := range lf.Leases {
		used[l.IP] = true
		for _, f := range l.Forwards {
			if slices.ContainsFunc(fwds, func(g Forward) bool { return g.hostKey() == f.hostKey() }) {
				return Lease{}, fmt.Errorf("host port %s is already forwarded to pod %s", f.hostKey(), l.PodID)
			}
		}
	}
	last := broadcast(lf.Subnet)
	for ip := gateway(lf.Subnet).Next(); ip.Less(last); ip = ip.Next() {
		if !used[ip] {
			l := Lease{PodID: podID, IP: ip, HostVeth: hostVeth, Forwards: slices.Clone(fwds)}
			lf.Leases = append(lf.Leases, l)
			slices.SortFunc(lf.Leases, func(a, b Lease) int { return a.IP.Compare(b.IP) })
			return l, nil
		}
	}
	return Lease{}, fmt.Errorf("subnet %s is exhausted: all %d pod addresses are leased", lf.Subnet, len(lf.Leases))
}

// hostVethName is the host end's name of podID's veth pair on bridge: a
// function of both, so that Teardown finds it even without a lease.
func hostVethName(bridge, podID string) string {
	sum := sha256.Sum256([]byte(bridge + "\x00" + podID))
	return "veth" + hex.EncodeToString(sum[:4])
}

// leaseStore is one network's lease directory, locked while open.
type leaseStore struct {
	dir    string
	subnet netip.Prefix
	lock   *os.File
}

// lockLeases opens the network's lease directory and takes its exclusive
// lock, waiting for other holders until ctx is done.
func lockLeases(ctx context.Context, cfg Config) (*leaseStore, error) {
	dir := filepath.Join(cfg.StateDir, cfg.Bridge)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("creating lease directory: %w", err)
	}
	f, err := os.OpenFile(filepath.Join(dir, lockFileName), os.O_RDWR|os.O_CREATE|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return nil, fmt.Errorf("opening lease lock: %w", err)
	}
	wait := time.Millisecond
	for {
		err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB)
		if err == nil {
			break
		}
		if !errors.Is(err, unix.EWOULDBLOCK) && !errors.Is(err, unix.EINTR) {
			f.Close()
			return nil, fmt.Errorf("locking %s: %w", f.Name(), err)
		}
		select {
		case <-ctx.Done():
			f.Close()
			return nil, fmt.Errorf("waiting for the lease lock %s: %w", f.Name(), ctx.Err())
		case <-time.After(wait):
		}
		wait = min(2*wait, 10*time.Millisecond)
	}
	return &leaseStore{dir: dir, subnet: cfg.Subnet, lock: f}, nil
}

// unlock releases the lock (closing the file releases the flock).
func (s *leaseStore) unlock() error { return s.lock.Close() }

// load reads the lease file; a missing file is an empty network. A file for
// another subnet with leases in it is an error (its pods must be torn down
// before the network is renumbered); an empty one is taken over.
func (s *leaseStore) load() (leaseFile, error) {
	path := filepath.Join(s.dir, leaseFileName)
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return leaseFile{Subnet: s.subnet}, nil
	}
	if err != nil {
		return leaseFile{}, fmt.Errorf("reading leases: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxLeaseFileSize+1))
	if err != nil {
		return leaseFile{}, fmt.Errorf("reading leases %s: %w", path, err)
	}
	if len(data) > maxLeaseFileSize {
		return leaseFile{}, fmt.Errorf("reading leases %s: larger than %d bytes", path, maxLeaseFileSize)
	}
	lf, err := parseLeaseFile(data)
	if err != nil {
		return leaseFile{}, fmt.Errorf("%s: %w", path, err)
	}
	if lf.Subnet != s.subnet {
		if len(lf.Leases) > 0 {
			return leaseFile{}, fmt.Errorf("%s: network %s has %d leases in subnet %s but is configured with %s: tear its pods down first",
				path, filepath.Base(s.dir), len(lf.Leases), lf.Subnet, s.subnet)
		}
		lf.Subnet = s.subnet
	}
	return lf, nil
}

// save replaces the lease file atomically (write, fsync, rename, fsync dir).
func (s *leaseStore) save(lf leaseFile) error {
	if lf.Leases == nil {
		lf.Leases = []Lease{}
	}
	data, err := json.MarshalIndent(lf, "", "  ")
	if err != nil {
		return fmt.Errorf("encoding leases: %w", err)
	}
	data = append(data, '\n')
	path := filepath.Join(s.dir, leaseFileName)
	tmp, err := os.CreateTemp(s.dir, leaseFileName+".tmp*")
	if err != nil {
		return fmt.Errorf("writing leases: %w", err)
	}
	_, err = tmp.Write(data)
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), path)
	}
	if err != nil {
		os.Remove(tmp.Name())
		return fmt.Errorf("writing leases %s: %w", path, err)
	}
	if d, err := os.Open(s.dir); err == nil {
		err = d.Sync()
		d.Close()
		if err != nil {
			return fmt.Errorf("syncing lease directory %s: %w", s.dir, err)
		}
	}
	return nil
}

// lease records a new lease for podID, with its forwards, and returns it
// with the lease file as saved.
func (s *leaseStore) lease(podID, hostVeth string, fwds []Forward) (leaseFile, Lease, error) {
	lf, err := s.load()
	if err != nil {
		return leaseFile{}, Lease{}, err
	}
	l, err := lf.allocate(podID, hostVeth, fwds)
	if err != nil {
		return leaseFile{}, Lease{}, err
	}
	if err := s.save(lf); err != nil {
		return leaseFile{}, Lease{}, err
	}
	return lf, l, nil
}

// Leases lists the network's leases, for the garbage collector: a lease
// whose pod no longer exists is released with Teardown.
func Leases(ctx context.Context, cfg Config) ([]Lease, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	s, err := lockLeases(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("network %s: %w", cfg.Bridge, err)
	}
	defer s.unlock()
	lf, err := s.load()
	if err != nil {
		return nil, fmt.Errorf("network %s: %w", cfg.Bridge, err)
	}
	return lf.Leases, nil
}
