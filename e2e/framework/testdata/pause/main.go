// Command pause sleeps until SIGTERM or SIGINT, then exits 0: the e2e
// node's sandbox image, and a do-nothing container for test pods. It is
// built statically (CGO_ENABLED=0) and packed by framework.BuildPauseImage.
package main

import (
	"os"
	"os/signal"
	"syscall"
)

func main() {
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGTERM, syscall.SIGINT)
	<-stop
}
