package apptest

import (
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// Mailpit is a real SMTP server for the mail tests (Mailpit, installed by
// .ci/run with go install), on 127.0.0.1 ports of its own; its HTTP API
// says what arrived.
type Mailpit struct {
	SMTPURL string // for SMTP_URL: plain SMTP, no TLS
	api     string
	args    []string
	cmd     *exec.Cmd
}

// MailpitMessage is one message as Mailpit received it.
type MailpitMessage struct {
	ID        string
	MessageID string
	From      struct{ Address string }
	To        []struct{ Address string }
	Subject   string
	Text      string
	HTML      string
}

// NewMailpit starts Mailpit; the test fails (under CI) or skips when it
// is not installed. It is stopped when the test ends.
func NewMailpit(t testing.TB) *Mailpit {
	t.Helper()
	bin, err := exec.LookPath("mailpit")
	if err != nil {
		if gobin := filepath.Join(os.Getenv("HOME"), "go", "bin", "mailpit"); fileExists(gobin) {
			bin = gobin
		} else if os.Getenv("CI") != "" {
			t.Fatal("mailpit not installed (go install github.com/axllent/mailpit@v1.33.1)")
		} else {
			t.Skip("mailpit not installed: go install github.com/axllent/mailpit@v1.33.1")
		}
	}
	smtpPort, httpPort := freePort(t), freePort(t)
	m := &Mailpit{
		SMTPURL: fmt.Sprintf("smtp://127.0.0.1:%d?tls=none", smtpPort),
		api:     fmt.Sprintf("http://127.0.0.1:%d/api/v1", httpPort),
		args: []string{bin, "--smtp", "127.0.0.1:" + strconv.Itoa(smtpPort), "--listen", "127.0.0.1:" + strconv.Itoa(httpPort),
			"--database", filepath.Join(t.TempDir(), "mailpit.db"), "--smtp-auth-accept-any", "--smtp-auth-allow-insecure",
			"--disable-version-check", "--quiet"},
	}
	m.Start(t)
	t.Cleanup(m.Stop)
	return m
}

func fileExists(p string) bool { _, err := os.Stat(p); return err == nil }

func freePort(t testing.TB) int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// Start runs the server (again, after Stop: an SMTP outage ends), on the
// same ports and messages, and waits until it answers.
func (m *Mailpit) Start(t testing.TB) {
	t.Helper()
	m.cmd = exec.Command(m.args[0], m.args[1:]...)
	require.NoError(t, m.cmd.Start())
	deadline := time.Now().Add(10 * time.Second)
	for {
		resp, err := http.Get(m.api + "/messages")
		if err == nil {
			resp.Body.Close()
			return
		}
		require.True(t, time.Now().Before(deadline), "mailpit never answered: %v", err)
		time.Sleep(20 * time.Millisecond)
	}
}

// Stop ends the server: an SMTP outage.
func (m *Mailpit) Stop() {
	if m.cmd != nil && m.cmd.Process != nil {
		_ = m.cmd.Process.Kill()
		_ = m.cmd.Wait()
		m.cmd = nil
	}
}

// Messages are what arrived, newest first, with their text and HTML.
func (m *Mailpit) Messages(t testing.TB) []MailpitMessage {
	t.Helper()
	var list struct{ Messages []MailpitMessage }
	m.get(t, "/messages?limit=1000", &list)
	for i, msg := range list.Messages {
		m.get(t, "/message/"+msg.ID, &list.Messages[i])
	}
	return list.Messages
}

// WaitFor waits up to 15 s until n messages arrived, and returns them.
func (m *Mailpit) WaitFor(t testing.TB, n int) []MailpitMessage {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		var list struct{ Total int }
		m.get(t, "/messages?limit=1", &list)
		if list.Total >= n || time.Now().After(deadline) {
			msgs := m.Messages(t)
			require.Len(t, msgs, n, "messages that arrived")
			return msgs
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (m *Mailpit) get(t testing.TB, path string, out any) {
	t.Helper()
	resp, err := http.Get(m.api + path)
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode, path)
	require.NoError(t, json.NewDecoder(resp.Body).Decode(out))
}
