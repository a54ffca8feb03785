package control

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"syscall"

	"github.com/corebox/corebox/applets/init/supervisor"
	"github.com/corebox/corebox/applets/init/unit"
)

// DefaultSocket is where init listens.
const DefaultSocket = "/run/corebox/init.sock"

// PowerRequest asks init to end the machine. Action is "reboot",
// "poweroff", "halt" or "kexec"; for kexec, Kernel (and optionally Initrd
// and Cmdline) name what to boot next.
type PowerRequest struct {
	Action  string `json:"action"`
	Kernel  string `json:"kernel,omitempty"`
	Initrd  string `json:"initrd,omitempty"`
	Cmdline string `json:"cmdline,omitempty"`
}

// Power is asked to end the machine: it returns once the request is
// accepted (for kexec: once the next kernel is loaded); the shutdown itself
// happens after the reply.
type Power func(PowerRequest) error

// Server serves the control API for one supervisor.
type Server struct {
	sup   *supervisor.Supervisor
	power Power
	mux   *http.ServeMux
}

// NewServer returns the API over sup. power may be nil: then the system
// actions answer 400.
func NewServer(sup *supervisor.Supervisor, power Power) *Server {
	s := &Server{sup: sup, power: power, mux: http.NewServeMux()}
	s.mux.HandleFunc("GET /v1/units", s.list)
	s.mux.HandleFunc("GET /v1/units/{name}", s.status)
	s.mux.HandleFunc("GET /v1/units/{name}/file", s.getFile)
	s.mux.HandleFunc("PUT /v1/units/{name}/file", s.putFile)
	s.mux.HandleFunc("DELETE /v1/units/{name}/file", s.deleteFile)
	s.mux.HandleFunc("POST /v1/units/{name}/{action}", s.unitAction)
	s.mux.HandleFunc("POST /v1/reload", s.reload)
	s.mux.HandleFunc("GET /v1/logs", s.logs)
	s.mux.HandleFunc("POST /v1/system/{action}", s.system)
	return s
}

// Listen opens the unix socket at path with mode 0600, replacing a stale one.
func Listen(path string) (net.Listener, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, fmt.Errorf("control socket: %w", err)
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("control socket: removing stale %s: %w", path, err)
	}
	old := syscall.Umask(0o177)
	l, err := net.Listen("unix", path)
	syscall.Umask(old)
	if err != nil {
		return nil, fmt.Errorf("control socket: %w", err)
	}
	return l, nil
}

type credKey struct{}

// Serve answers on l until ctx ends. Connections from a user other than
// root or the server's own are refused.
func (s *Server) Serve(ctx context.Context, l net.Listener) error {
	hs := &http.Server{
		Handler: s.authorize(s.mux),
		ConnContext: func(ctx context.Context, c net.Conn) context.Context {
			if uc, ok := c.(*net.UnixConn); ok {
				if raw, err := uc.SyscallConn(); err == nil {
					var cred *syscall.Ucred
					raw.Control(func(fd uintptr) {
						cred, _ = syscall.GetsockoptUcred(int(fd), syscall.SOL_SOCKET, syscall.SO_PEERCRED)
					})
					if cred != nil {
						return context.WithValue(ctx, credKey{}, cred)
					}
				}
			}
			return ctx
		},
		BaseContext: func(net.Listener) context.Context { return ctx },
	}
	go func() {
		<-ctx.Done()
		hs.Close()
	}()
	err := hs.Serve(l)
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}

func (s *Server) authorize(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		cred, _ := r.Context().Value(credKey{}).(*syscall.Ucred)
		if cred == nil || (cred.Uid != 0 && int(cred.Uid) != os.Getuid()) {
			writeError(w, http.StatusForbidden, "forbidden", errors.New("the control socket is for root only"))
			return
		}
		h.ServeHTTP(w, r)
	})
}

// ServeHTTP lets tests use the API without a socket (no credential check).
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.mux.ServeHTTP(w, r) }

func (s *Server) list(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, s.sup.List())
}

func (s *Server) status(w http.ResponseWriter, r *http.Request) {
	st, err := s.sup.Status(r.PathValue("name"))
	if err != nil {
		writeErr(w, err)
		return
	}
	writeJSON(w, st)
}

func (s *Server) getFile(w http.ResponseWriter, r *http.Request) {
	b, path, err := s.sup.UnitFile(r.PathValue("name"))
	if err != nil {
		writeErr(w, err)
		return
	}
	writeJSON(w, UnitFile{Name: r.PathValue("name"), Path: path, Contents: string(b)})
}

// maxUnitFile bounds a unit file sent to PUT.
const maxUnitFile = 1 << 20

func (s *Server) putFile(w http.ResponseWriter, r *http.Request) {
	b, err := io.ReadAll(io.LimitReader(r.Body, maxUnitFile+1))
	if err != nil {
		writeError(w, http.StatusBadRequest, "bad-request", err)
		return
	}
	if len(b) > maxUnitFile {
		writeError(w, http.StatusBadRequest, "bad-request", fmt.Errorf("unit file larger than %d bytes", maxUnitFile))
		return
	}
	if err := s.sup.AddUnit(r.PathValue("name"), b); err != nil {
		writeErr(w, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) deleteFile(w http.ResponseWriter, r *http.Request) {
	if err := s.sup.RemoveUnit(r.Context(), r.PathValue("name")); err != nil {
		writeErr(w, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) unitAction(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	var err error
	switch a := r.PathValue("action"); a {
	case "start":
		err = s.sup.Start(r.Context(), name)
	case "stop":
		err = s.sup.Stop(r.Context(), name)
	case "restart":
		err = s.sup.Restart(r.Context(), name)
	default:
		writeError(w, http.StatusBadRequest, "bad-request", fmt.Errorf("unknown unit action %q", a))
		return
	}
	if err != nil {
		writeErr(w, err)
		return
	}
	st, err := s.sup.Status(name)
	if err != nil {
		writeErr(w, err)
		return
	}
	writeJSON(w, st)
}

func (s *Server) reload(w http.ResponseWriter, r *http.Request) {
	if err := s.sup.Reload(); err != nil {
		writeError(w, http.StatusBadRequest, "bad-request", err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) logs(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	unitName := q.Get("unit")
	n := 0
	if v := q.Get("n"); v != "" {
		var err error
		if n, err = strconv.Atoi(v); err != nil || n < 0 {
			writeError(w, http.StatusBadRequest, "bad-request", fmt.Errorf("n: %q is not a count", v))
			return
		}
	}
	w.Header().Set("Content-Type", "application/x-ndjson")
	enc := json.NewEncoder(w)
	var last uint64
	for _, e := range s.sup.Logs(unitName, n) {
		enc.Encode(e)
		last = e.Seq
	}
	if q.Get("follow") != "1" {
		return
	}
	flusher, _ := w.(http.Flusher)
	if flusher != nil {
		flusher.Flush()
	}
	s.sup.FollowLogs(r.Context(), unitName, last, func(e supervisor.Entry) error {
		if err := enc.Encode(e); err != nil {
			return err
		}
		if flusher != nil {
			flusher.Flush()
		}
		return nil
	})
}

func (s *Server) system(w http.ResponseWriter, r *http.Request) {
	a := r.PathValue("action")
	if s.power == nil {
		writeError(w, http.StatusBadRequest, "bad-request", fmt.Errorf("%s: not available when init is not PID 1", a))
		return
	}
	req := PowerRequest{Action: a}
	switch a {
	case "reboot", "poweroff", "halt":
	case "kexec":
		if err := json.NewDecoder(io.LimitReader(r.Body, 64<<10)).Decode(&req); err != nil {
			writeError(w, http.StatusBadRequest, "bad-request", fmt.Errorf("kexec: decoding request: %w", err))
			return
		}
		req.Action = a
		if req.Kernel == "" {
			writeError(w, http.StatusBadRequest, "bad-request", errors.New("kexec: no kernel given"))
			return
		}
	default:
		writeError(w, http.StatusBadRequest, "bad-request", fmt.Errorf("unknown system action %q", a))
		return
	}
	if err := s.power(req); err != nil {
		writeErr(w, err)
		return
	}
	w.WriteHeader(http.StatusAccepted)
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(v)
}

func writeErr(w http.ResponseWriter, err error) {
	var syn *unit.SyntaxError
	switch {
	case errors.Is(err, supervisor.ErrNotFound):
		writeError(w, http.StatusNotFound, "not-found", err)
	case errors.As(err, &syn):
		writeError(w, http.StatusBadRequest, "bad-request", err)
	default:
		writeError(w, http.StatusInternalServerError, "failed", err)
	}
}

func writeError(w http.ResponseWriter, code int, kind string, err error) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(apiError{Error: err.Error(), Kind: kind})
}

type apiError struct {
	Error string `json:"error"`
	Kind  string `json:"kind"`
}
