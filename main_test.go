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

// env is a fake environment; tests that run the program in parallel get
// a free port for the internal listener unless they say otherwise.
func env(m map[string]string) func(string) string {
	return func(k string) string {
		if v, ok := m[k]; ok || k != "METRICS_ADDR" {
			return v
		}
		return "127.0.0.1:0"
	}
}

func TestLoadConfigDefaults(t *testing.T) {
	cfg, err := loadConfig(env(nil))
	require.NoError(t, err)
	assert.Equal(t, ":8080", cfg.Addr)
	assert.Equal(t, "./data", cfg.DataDir)
	assert.Equal(t, "http://localhost:8080", cfg.BaseURL)
	assert.Equal(t, 15*time.Minute, cfg.ReservationTTL)
	assert.Equal(t, time.Second, cfg.SweepInterval)
	assert.Equal(t, 250*time.Millisecond, cfg.ReplicaSyncInterval)
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
		{"production without stripe", map[string]string{"APP_ENV": "production", "SESSION_SECRET": long}, "STRIPE_SECRET_KEY and STRIPE_WEBHOOK_SECRET"},
		{"payments test with stripe keys", map[string]string{"PAYMENTS": "test", "STRIPE_SECRET_KEY": "sk_test_x", "STRIPE_WEBHOOK_SECRET": "whsec_x"}, "choose one"},
		{"payments stripe without keys", map[string]string{"PAYMENTS": "stripe"}, "PAYMENTS=stripe needs"},
		{"payments unknown", map[string]string{"PAYMENTS": "free"}, "PAYMENTS"},
		{"metrics addr", map[string]string{"METRICS_ADDR": "9091"}, "METRICS_ADDR"},
		{"proxy header", map[string]string{"TRUSTED_PROXY_HEADER": "Fly Client IP"}, "TRUSTED_PROXY_HEADER"},
		{"sync interval", map[string]string{"LITESTREAM_SYNC_INTERVAL": "often"}, "LITESTREAM_SYNC_INTERVAL"},
		{"price cap", map[string]string{"PRICE_CAP_PERCENT": "twenty"}, "PRICE_CAP_PERCENT"},
		{"negative price cap", map[string]string{"PRICE_CAP_PERCENT": "-1"}, "PRICE_CAP_PERCENT"},
		{"production without smtp", map[string]string{"APP_ENV": "production", "SESSION_SECRET": long, "STRIPE_SECRET_KEY": "sk_live_x", "STRIPE_WEBHOOK_SECRET": "whsec_x"}, "SMTP_URL is required"},
		{"smtp url scheme", map[string]string{"SMTP_URL": "http://mail.example.com"}, "SMTP_URL"},
		{"smtp tls", map[string]string{"SMTP_URL": "smtp://mail.example.com?tls=maybe"}, "SMTP_URL"},
		{"mail switch", map[string]string{"MAIL": "no"}, "MAIL"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := loadConfig(env(tt.env))
			require.Error(t, err)
			assert.Contains(t, err.Error(), tt.want)
		})
	}
	cfg, err := loadConfig(env(map[string]string{"APP_ENV": "production", "SESSION_SECRET": long, "RESERVATION_TTL": "2s",
		"STRIPE_SECRET_KEY": "sk_live_x", "STRIPE_WEBHOOK_SECRET": "whsec_x", "SMTP_URL": "smtp://user:pass@mail.example.com:587"}))
	require.NoError(t, err)
	assert.True(t, cfg.Production)
	_, err = loadConfig(env(map[string]string{"APP_ENV": "production", "SESSION_SECRET": long,
		"STRIPE_SECRET_KEY": "sk_live_x", "STRIPE_WEBHOOK_SECRET": "whsec_x", "MAIL": "off"}))
	require.NoError(t, err, "MAIL=off runs production without SMTP")
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
	base, _, stop := startRunLog(t, vars, io.Discard)
	return base, stop
}

// startRunLog is startRun with the program's log written to stderr; it
// also returns the internal listener's URL ("" when METRICS_ADDR=off).
func startRunLog(t *testing.T, vars map[string]string, stderr io.Writer) (base, internal string, stop func() error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, nil, env(vars), pw, stderr)
		pw.Close()
	}()
	base, internal = readAddrs(t, bufio.NewReader(pr))
	go io.Copy(io.Discard, pr)
	stop = func() error {
		cancel()
		select {
		case err := <-done:
			return err
		case <-time.After(5 * time.Second):
			t.Fatal("run did not stop within 5s")
			return nil
		}
	}
	return base, internal, stop
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

	for _, f := range []string{"auth.db", "tickets.db", "orders.db", "expiration.db", "payments.db", "mail.db", "delivery.db", "session.key"} {
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

// Production never sells for free: without Stripe keys the start stops
// and names the variables; with PAYMENTS=test it runs the test checkout on
// purpose, warns in the log, and every page says TEST MODE.
func TestProductionRefusesTestCheckoutUnlessAskedFor(t *testing.T) {
	prod := map[string]string{"APP_ENV": "production", "SESSION_SECRET": strings.Repeat("s", 32),
		"DATA_DIR": t.TempDir(), "ADDR": "127.0.0.1:0", "METRICS_ADDR": "off", "MAIL": "off"}
	err := run(context.Background(), nil, env(prod), io.Discard, io.Discard)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "STRIPE_SECRET_KEY and STRIPE_WEBHOOK_SECRET")
	assert.Contains(t, err.Error(), "PAYMENTS=test")

	prod["PAYMENTS"] = "test"
	var logs strings.Builder
	base, _, stop := startRunLog(t, prod, &logs)
	for _, path := range []string{"/", "/auth/signin", "/auth/signup", "/no-such-page"} {
		resp, err := http.Get(base + path)
		require.NoError(t, err)
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		assert.Contains(t, string(b), `class="test-mode-banner"`, path)
		assert.Contains(t, string(b), "TEST MODE", path)
	}
	require.NoError(t, stop())
	assert.Contains(t, logs.String(), `"level":"WARN","msg":"payments in TEST MODE in production`)
}

// readAddrs reads what the program prints when it is ready: the public
// URL, then the internal one unless METRICS_ADDR=off (then "").
func readAddrs(t *testing.T, r *bufio.Reader) (base, internal string) {
	t.Helper()
	for base == "" {
		line, err := r.ReadString('\n')
		require.NoError(t, err, "the program exited before listening")
		if u, ok := strings.CutPrefix(strings.TrimSpace(line), "ticketing: internal on "); ok {
			internal = u
		}
		if u, ok := strings.CutPrefix(strings.TrimSpace(line), "ticketing: listening on "); ok {
			base = u
		}
	}
	return base, internal
}

// `ticketing check` runs integrity_check on every file without changing
// any, and fails naming a damaged one.
func TestCheckCommand(t *testing.T) {
	dir := t.TempDir()
	_, stop := startRun(t, map[string]string{"DATA_DIR": dir, "ADDR": "127.0.0.1:0"})
	require.NoError(t, stop())
	var out strings.Builder
	require.NoError(t, run(context.Background(), []string{"ticketing", "check"}, env(map[string]string{"DATA_DIR": dir}), &out, io.Discard))
	assert.Contains(t, out.String(), "check: orders.db: ok (integrity_check")
	require.NoError(t, os.Truncate(filepath.Join(dir, "orders.db"), 0))
	out.Reset()
	err := run(context.Background(), []string{"ticketing", "check"}, env(map[string]string{"DATA_DIR": dir}), &out, io.Discard)
	require.Error(t, err)
	assert.Contains(t, out.String(), "orders.db is empty (0 bytes)")
	info, err := os.Stat(filepath.Join(dir, "orders.db"))
	require.NoError(t, err)
	assert.Zero(t, info.Size(), "check changed nothing")
}
