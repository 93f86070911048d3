// Package stripemock starts Stripe's stripe-mock server for tests.
package stripemock

import (
	"bufio"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

var listening = regexp.MustCompile(`Listening for HTTP at address: (\S+)`)

// Start starts stripe-mock (Stripe's own mock of its API) on a free
// port of 127.0.0.1 and returns its base URL; it stops with the test.
// Without the binary the test is skipped with a message, except under CI
// (CI set), where that is a failure: .ci/run installs it.
func Start(t testing.TB) string {
	t.Helper()
	bin, err := exec.LookPath("stripe-mock")
	if err != nil {
		gopath, _ := exec.Command("go", "env", "GOPATH").Output()
		candidate := filepath.Join(string(trimNewline(gopath)), "bin", "stripe-mock")
		if _, serr := os.Stat(candidate); serr == nil {
			bin, err = candidate, nil
		}
	}
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("stripe-mock not installed (go install github.com/stripe/stripe-mock@latest)")
		}
		t.Skip("stripe-mock not installed: go install github.com/stripe/stripe-mock@latest")
	}
	// Both addresses explicit: stripe-mock otherwise also binds a fixed
	// HTTPS port, and parallel test binaries would collide.
	cmd := exec.Command(bin, "-http-addr", "127.0.0.1:0", "-https-addr", "127.0.0.1:0")
	out, err := cmd.StdoutPipe()
	require.NoError(t, err)
	cmd.Stderr = cmd.Stdout
	require.NoError(t, cmd.Start())
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
	found := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if m := listening.FindStringSubmatch(sc.Text()); m != nil {
				select {
				case found <- m[1]:
				default:
				}
			}
		}
	}()
	select {
	case addr := <-found:
		return "http://" + addr
	case <-time.After(30 * time.Second):
		t.Fatal("stripe-mock did not start within 30s")
		return ""
	}
}

func trimNewline(b []byte) []byte {
	for len(b) > 0 && (b[len(b)-1] == '\n' || b[len(b)-1] == '\r') {
		b = b[:len(b)-1]
	}
	return b
}
