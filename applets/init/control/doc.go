// Package control is init's control socket: HTTP with JSON bodies over a
// unix socket (/run/corebox/init.sock, mode 0600, and only root or init's
// own user may talk to it). The server translates requests into calls on a
// supervisor; the Client is what systemctl, journalctl and the fleet agent
// use. The wire format lives here and nowhere else.
//
//	GET    /v1/units                    []Status
//	GET    /v1/units/NAME               Status
//	GET    /v1/units/NAME/file          UnitFile
//	PUT    /v1/units/NAME/file          body: unit file; adds a runtime unit
//	DELETE /v1/units/NAME/file          stops and removes a runtime unit
//	POST   /v1/units/NAME/start|stop|restart
//	POST   /v1/reload                   daemon-reload
//	GET    /v1/logs?unit=&n=&follow=1   newline-delimited JSON Entry stream
//	POST   /v1/system/reboot|poweroff|halt
//	POST   /v1/system/kexec             body: PowerRequest (kernel, initrd, cmdline)
//
// Errors are {"error": "...", "kind": "not-found"|"bad-request"|"failed"}
// with HTTP status 404, 400 or 500.
package control
