package main

import (
	"bufio"
	"context"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func env(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

func TestLoadConfigDefaults(t *testing.T) {
	cfg, err := loadConfig(env(nil))
	require.NoError(t, err)
	assert.Equal(t, ":8080", cfg.Addr)
	assert.Equal(t, "./data", cfg.DataDir)
	assert.Equal(t, "http://localhost:8080", cfg.BaseURL)
	assert.Equal(t, 15*time.Minute, cfg.ReservationTTL)
	assert.Equal(t, time.Second, cfg.SweepInterval)
	assert.False(t, cfg.Production)
}

func TestLoadConfigRejectsBadValues(t *testing.T) {
	long := strings.Repeat("s", 32)
	tests := []struct {
		name string
		env  map[string]string
		want string
	}{
		{"ttl not a duration", map[string]string{"RESERVATION_TTL": "banana"}, "RESERVATION_TTL"},
		{"ttl negative", map[string]string{"RESERVATION_TTL": "-5m"}, "RESERVATION_TTL"},
		{"sweep zero", map[string]string{"SWEEP_INTERVAL": "0s"}, "SWEEP_INTERVAL"},
		{"unknown env", map[string]string{"APP_ENV": "prod"}, "APP_ENV"},
		{"production without secret", map[string]string{"APP_ENV": "production"}, "SESSION_SECRET is required"},
		{"short secret", map[string]string{"SESSION_SECRET": "short"}, "at least 32"},
		{"bad addr", map[string]string{"ADDR": "8080"}, "ADDR"},
		{"bad base url", map[string]string{"BASE_URL": "example.com"}, "BASE_URL"},
		{"stripe key without webhook secret", map[string]string{"STRIPE_SECRET_KEY": "sk_test_x"}, "STRIPE_WEBHOOK_SECRET is required"},
		{"webhook secret without key", map[string]string{"STRIPE_WEBHOOK_SECRET": "whsec_x"}, "STRIPE_SECRET_KEY is not"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := loadConfig(env(tt.env))
			require.Error(t, err)
			assert.Contains(t, err.Error(), tt.want)
		})
	}
	cfg, err := loadConfig(env(map[string]string{"APP_ENV": "production", "SESSION_SECRET": long, "RESERVATION_TTL": "2s"}))
	require.NoError(t, err)
	assert.True(t, cfg.Production)
	assert.Equal(t, 2*time.Second, cfg.ReservationTTL)
}

func TestRunFailsOnBadConfig(t *testing.T) {
	err := run(context.Background(), nil, env(map[string]string{"RESERVATION_TTL": "banana", "DATA_DIR": t.TempDir()}), io.Discard, io.Discard)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "RESERVATION_TTL")
}

func TestSessionSecretGeneratedOnceIntoDataDir(t *testing.T) {
	dir := t.TempDir()
	first, err := sessionSecret(config{DataDir: dir})
	require.NoError(t, err)
	second, err := sessionSecret(config{DataDir: dir})
	require.NoError(t, err)
	assert.Equal(t, first, second)
	assert.GreaterOrEqual(t, len(first), 32)
	info, err := os.Stat(filepath.Join(dir, "session.key"))
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o600), info.Mode().Perm())
}

func TestRunRejectsAFileThatIsNotADatabase(t *testing.T) {
	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, "auth.db"), []byte(strings.Repeat("not sqlite ", 20)), 0o644))
	err := run(context.Background(), nil, env(map[string]string{"DATA_DIR": dir, "ADDR": "127.0.0.1:0"}), io.Discard, io.Discard)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "not a SQLite database")
}

// startRun runs the program in-process on a free port and returns its base
// URL and a function that stops it and returns run's error.
func startRun(t *testing.T, vars map[string]string) (string, func() error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, nil, env(vars), pw, io.Discard)
		pw.Close()
	}()
	line, err := bufio.NewReader(pr).ReadString('\n')
	require.NoError(t, err, "run exited before listening")
	go io.Copy(io.Discard, pr)
	base := strings.TrimSpace(strings.TrimPrefix(line, "ticketing: listening on "))
	stop := func() error {
		cancel()
		select {
		case err := <-done:
			return err
		case <-time.After(5 * time.Second):
			t.Fatal("run did not stop within 5s")
			return nil
		}
	}
	return base, stop
}

func TestRunServesAndShutsDownGracefully(t *testing.T) {
	dir := t.TempDir()
	base, stop := startRun(t, map[string]string{"DATA_DIR": dir, "ADDR": "127.0.0.1:0"})

	resp, err := http.Get(base + "/healthz")
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusOK, resp.StatusCode)

	resp, err = http.Get(base + "/")
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusOK, resp.StatusCode)

	start := time.Now()
	require.NoError(t, stop())
	assert.Less(t, time.Since(start), 5*time.Second)

	for _, f := range []string{"auth.db", "tickets.db", "orders.db", "expiration.db", "payments.db", "session.key"} {
		assert.FileExists(t, filepath.Join(dir, f))
	}
}

// io2 discards output but keeps it for a failing test's log.
func io2(t *testing.T) io.Writer { return &testWriter{t} }

type testWriter struct{ t *testing.T }

func (w *testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}
