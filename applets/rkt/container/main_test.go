package container_test

import (
	"os"
	"testing"

	"github.com/corebox/corebox/applets/rkt/container/containertest"
)

func TestMain(m *testing.M) {
	containertest.RunStubIfAsked()
	os.Exit(m.Run())
}
