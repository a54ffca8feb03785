package control

import (
	"fmt"
	"time"
)

// FormatShort renders a journal entry as journalctl's short format does.
func FormatShort(e Entry, host string) string {
	stamp := e.Time.Local().Format(time.StampMilli)
	if e.Source == "init" {
		return fmt.Sprintf("%s %s init: %s: %s", stamp, host, e.Unit, e.Message)
	}
	return fmt.Sprintf("%s %s %s: %s", stamp, host, e.Unit, e.Message)
}
