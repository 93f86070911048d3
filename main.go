// Command ticketing is a concert-ticket marketplace in one process: auth,
// tickets, orders, expiration and payments as modules, each with its own
// SQLite file, connected by event logs. See README.md.
package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"ticketing/app"
	"ticketing/app/auth"
	"ticketing/app/cluster"
	"ticketing/app/mail"
	"ticketing/db"
)

func main() {
	if err := run(context.Background(), os.Args, os.Getenv, os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "ticketing:", err)
		os.Exit(1)
	}
}

// config is the process's configuration, read from the environment.
type config struct {
	Addr           string
	DataDir        string
	BaseURL        string
	SessionSecret  string
	ReservationTTL time.Duration
	SweepInterval  time.Duration
	Production     bool
	// PriceCapPercent caps a show's ticket at its face value plus this
	// share (PRICE_CAP_PERCENT, default 20, as TicketSwap does); 0 is off.
	PriceCapPercent int

	StripeSecretKey     string
	StripeWebhookSecret string
	StripeAPIBase       string
	// TestPayments runs the built-in test checkout instead of Stripe: the
	// default without Stripe keys, and in production only when the
	// operator says PAYMENTS=test.
	TestPayments bool

	// TrustedProxyHeader names the header that carries the client's IP
	// (Fly-Client-IP on Fly); empty means the connection's own address.
	TrustedProxyHeader string
	// MetricsAddr is the internal listener for /metrics and the detailed
	// /healthz; "off" serves none.
	MetricsAddr string

	// SMTPURL is where mail goes (SMTP_URL); MailFrom its sender
	// (MAIL_FROM); MailOff (MAIL=off) lets production run without SMTP.
	SMTPURL  string
	MailFrom string
	MailOff  bool

	ReplicaURL string
	// ReplicaSyncInterval is how often Litestream takes the new writes
	// of each file and ships them (LITESTREAM_SYNC_INTERVAL).
	ReplicaSyncInterval time.Duration

	Limits auth.Limits

	// LiteFS runs the process as a node of a LiteFS cluster (LITEFS=on):
	// DATA_DIR is the LiteFS mount.
	LiteFS bool
	// LiteFSPrimaryURL is where a replica proxies a write: a URL with
	// {host} for the primary's lease hostname (LITEFS_PRIMARY_URL).
	LiteFSPrimaryURL string
	// LiteFSForward is how a replica hands a write on: fly-replay (the
	// default on Fly) or proxy (LITEFS_FORWARD).
	LiteFSForward string
	// LiteFSMaxLag bounds a read's wait for the reader's last write on a
	// replica (LITEFS_MAX_LAG).
	LiteFSMaxLag time.Duration
	// LitestreamStateDir is where Litestream keeps its state of each file
	// on a LiteFS node (LITESTREAM_STATE_DIR).
	LitestreamStateDir string
}

// loadConfig reads the environment (DESIGN.md "Configuration"). A value that
// does not parse is an error that names the variable, not a default.
func loadConfig(getenv func(string) string) (config, error) {
	cfg := config{
		Addr:            ":8080",
		DataDir:         "./data",
		BaseURL:         "http://localhost:8080",
		ReservationTTL:  15 * time.Minute,
		SweepInterval:   time.Second,
		PriceCapPercent: 20,
		MetricsAddr:     "127.0.0.1:9091",
		// A quarter of Litestream's 1s default: measured, a lost machine
		// loses p50 0.2-0.3 s of acknowledged writes instead of 1.1-1.7 s,
		// at no measurable cost to the flash sale (README, Backups).
		ReplicaSyncInterval: 250 * time.Millisecond,
	}
	str := func(name string, dst *string) {
		if v := strings.TrimSpace(getenv(name)); v != "" {
			*dst = v
		}
	}
	str("ADDR", &cfg.Addr)
	str("DATA_DIR", &cfg.DataDir)
	str("BASE_URL", &cfg.BaseURL)
	cfg.SessionSecret = getenv("SESSION_SECRET")
	str("STRIPE_SECRET_KEY", &cfg.StripeSecretKey)
	str("STRIPE_WEBHOOK_SECRET", &cfg.StripeWebhookSecret)
	str("STRIPE_API_BASE", &cfg.StripeAPIBase)
	str("LITESTREAM_REPLICA_URL", &cfg.ReplicaURL)
	str("TRUSTED_PROXY_HEADER", &cfg.TrustedProxyHeader)
	str("METRICS_ADDR", &cfg.MetricsAddr)
	str("SMTP_URL", &cfg.SMTPURL)
	str("MAIL_FROM", &cfg.MailFrom)
	cfg.BaseURL = strings.TrimRight(cfg.BaseURL, "/")
	cfg.LiteFSPrimaryURL = "http://{host}"
	if app := getenv("FLY_APP_NAME"); app != "" {
		// Fly's private network: the lease hostname is the machine id.
		cfg.LiteFSPrimaryURL = "http://{host}.vm." + app + ".internal:" + portOf(cfg.Addr)
		cfg.LiteFSForward = "fly-replay"
	}
	cfg.LiteFSMaxLag = 2 * time.Second
	cfg.LitestreamStateDir = "/var/lib/litefs/litestream"
	str("LITEFS_PRIMARY_URL", &cfg.LiteFSPrimaryURL)
	str("LITEFS_FORWARD", &cfg.LiteFSForward)
	str("LITESTREAM_STATE_DIR", &cfg.LitestreamStateDir)

	var errs []error
	dur := func(name string, dst *time.Duration) {
		v := strings.TrimSpace(getenv(name))
		if v == "" {
			return
		}
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 {
			errs = append(errs, fmt.Errorf("%s=%q: want a positive duration such as 15m or 1s", name, v))
			return
		}
		*dst = d
	}
	limit := func(name string, dst *auth.Rate) {
		v := strings.TrimSpace(getenv(name))
		if v == "" {
			return
		}
		r, err := auth.ParseRate(v)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s=%w", name, err))
			return
		}
		*dst = r
	}
	limit("SIGNIN_LIMIT", &cfg.Limits.SignInFailuresPerAccount)
	limit("SIGNIN_IP_LIMIT", &cfg.Limits.SignInPerIP)
	limit("SIGNUP_LIMIT", &cfg.Limits.SignUpPerIP)
	if v := strings.TrimSpace(getenv("PRICE_CAP_PERCENT")); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 || n > 1000 {
			errs = append(errs, fmt.Errorf("PRICE_CAP_PERCENT=%q: want a whole percent from 0 (no cap) to 1000", v))
		} else {
			cfg.PriceCapPercent = n
		}
	}
	dur("RESERVATION_TTL", &cfg.ReservationTTL)
	dur("SWEEP_INTERVAL", &cfg.SweepInterval)
	dur("LITESTREAM_SYNC_INTERVAL", &cfg.ReplicaSyncInterval)
	dur("LITEFS_MAX_LAG", &cfg.LiteFSMaxLag)
	switch v := strings.TrimSpace(getenv("LITEFS")); v {
	case "", "off":
	case "on":
		cfg.LiteFS = true
		if cfg.SessionSecret == "" {
			errs = append(errs, errors.New("LITEFS=on needs SESSION_SECRET: every node must sign sessions with the same key"))
		}
		if !strings.Contains(cfg.LiteFSPrimaryURL, "{host}") {
			errs = append(errs, fmt.Errorf("LITEFS_PRIMARY_URL=%q: want a URL with {host} for the primary's lease hostname, such as http://{host}:8080", cfg.LiteFSPrimaryURL))
		}
		switch cfg.LiteFSForward {
		case "", "proxy", "fly-replay":
		default:
			errs = append(errs, fmt.Errorf("LITEFS_FORWARD=%q: want proxy or fly-replay", cfg.LiteFSForward))
		}
	default:
		errs = append(errs, fmt.Errorf("LITEFS=%q: want on or off", v))
	}

	switch env := getenv("APP_ENV"); env {
	case "", "development", "test":
	case "production":
		cfg.Production = true
	default:
		errs = append(errs, fmt.Errorf("APP_ENV=%q: want production, development or empty", env))
	}
	if _, _, err := net.SplitHostPort(cfg.Addr); err != nil {
		errs = append(errs, fmt.Errorf("ADDR=%q: want host:port such as :8080", cfg.Addr))
	}
	if !strings.HasPrefix(cfg.BaseURL, "http://") && !strings.HasPrefix(cfg.BaseURL, "https://") {
		errs = append(errs, fmt.Errorf("BASE_URL=%q: want an http:// or https:// URL", cfg.BaseURL))
	}
	switch v := strings.TrimSpace(getenv("MAIL")); v {
	case "", "on":
	case "off":
		cfg.MailOff = true
	default:
		errs = append(errs, fmt.Errorf("MAIL=%q: want off or empty", v))
	}
	if cfg.SMTPURL != "" {
		if _, err := mail.ParseSMTPURL(cfg.SMTPURL); err != nil {
			errs = append(errs, fmt.Errorf("SMTP_URL: %w", err))
		}
	} else if cfg.Production && !cfg.MailOff {
		errs = append(errs, fmt.Errorf("SMTP_URL is required when APP_ENV=production (or MAIL=off to run without sending mail)"))
	}
	if cfg.Production && cfg.SessionSecret == "" {
		errs = append(errs, errors.New("SESSION_SECRET is required when APP_ENV=production (at least 32 characters)"))
	}
	if cfg.StripeSecretKey != "" && cfg.StripeWebhookSecret == "" {
		errs = append(errs, errors.New("STRIPE_WEBHOOK_SECRET is required with STRIPE_SECRET_KEY: without it no payment can be confirmed"))
	}
	if cfg.StripeSecretKey == "" && cfg.StripeWebhookSecret != "" {
		errs = append(errs, errors.New("STRIPE_WEBHOOK_SECRET is set but STRIPE_SECRET_KEY is not"))
	}
	switch payments := strings.TrimSpace(getenv("PAYMENTS")); payments {
	case "":
		cfg.TestPayments = cfg.StripeSecretKey == ""
		if cfg.Production && cfg.TestPayments {
			errs = append(errs, errors.New("APP_ENV=production needs STRIPE_SECRET_KEY and STRIPE_WEBHOOK_SECRET; "+
				"without them every order would be paid by the built-in test checkout, for free (set PAYMENTS=test to run it anyway, on purpose)"))
		}
	case "test":
		cfg.TestPayments = true
		if cfg.StripeSecretKey != "" {
			errs = append(errs, errors.New("PAYMENTS=test but STRIPE_SECRET_KEY is set: choose one"))
		}
	case "stripe":
		if cfg.StripeSecretKey == "" {
			errs = append(errs, errors.New("PAYMENTS=stripe needs STRIPE_SECRET_KEY and STRIPE_WEBHOOK_SECRET"))
		}
	default:
		errs = append(errs, fmt.Errorf("PAYMENTS=%q: want stripe, test or empty (Stripe when STRIPE_SECRET_KEY is set)", payments))
	}
	if cfg.MetricsAddr != "off" {
		if _, _, err := net.SplitHostPort(cfg.MetricsAddr); err != nil {
			errs = append(errs, fmt.Errorf("METRICS_ADDR=%q: want host:port such as 127.0.0.1:9091, or off", cfg.MetricsAddr))
		}
	}
	if h := cfg.TrustedProxyHeader; h != "" && strings.Trim(h, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-") != "" {
		errs = append(errs, fmt.Errorf("TRUSTED_PROXY_HEADER=%q: want a header name such as Fly-Client-IP", h))
	}
	if cfg.SessionSecret != "" && len(cfg.SessionSecret) < 32 {
		errs = append(errs, errors.New("SESSION_SECRET must be at least 32 characters"))
	}
	return cfg, errors.Join(errs...)
}

// sessionSecret returns the configured secret, or the one generated into
// the data directory on first start, so sessions survive restarts without
// any configuration in development.
func sessionSecret(cfg config) ([]byte, error) {
	if cfg.SessionSecret != "" {
		return []byte(cfg.SessionSecret), nil
	}
	if err := os.MkdirAll(cfg.DataDir, 0o755); err != nil {
		return nil, fmt.Errorf("create data dir: %w", err)
	}
	path := filepath.Join(cfg.DataDir, "session.key")
	b, err := os.ReadFile(path)
	if err == nil {
		s := strings.TrimSpace(string(b))
		if len(s) < 32 {
			return nil, fmt.Errorf("%s is too short; delete it to generate a new one", path)
		}
		return []byte(s), nil
	}
	if !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("read session secret: %w", err)
	}
	key := make([]byte, 32)
	rand.Read(key)
	s := hex.EncodeToString(key)
	if err := os.WriteFile(path, []byte(s+"\n"), 0o600); err != nil {
		return nil, fmt.Errorf("write session secret (is DATA_DIR writable?): %w", err)
	}
	return []byte(s), nil
}

// run is the whole program, with its dependencies passed in so tests can
// run it in-process.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	cfg, err := loadConfig(getenv)
	if err != nil {
		return fmt.Errorf("configuration: %w", err)
	}
	var handler slog.Handler = slog.NewTextHandler(stderr, nil)
	if cfg.Production {
		handler = slog.NewJSONHandler(stderr, nil)
	}
	logger := slog.New(handler)

	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()

	if len(args) > 1 && args[1] == "check" {
		// Before anything opens the files: a check must not change them.
		return integrityCheck(ctx, cfg.DataDir, stdout)
	}

	if !cfg.LiteFS {
		// On a LiteFS mount the lease is what keeps one writer.
		unlock, err := db.Lock(cfg.DataDir)
		if err != nil {
			return err
		}
		defer unlock()
	}
	var replication *db.Replication
	if cfg.ReplicaURL == "" {
		logger.Info("replication off: LITESTREAM_REPLICA_URL is not set, so the data lives only in DATA_DIR")
	} else if replication, err = db.NewReplication(cfg.ReplicaURL, getenv, logger); err != nil {
		return fmt.Errorf("configuration: %w", err)
	} else {
		replication.SyncInterval = cfg.ReplicaSyncInterval
		if cfg.LiteFS {
			replication.MetaDir = cfg.LitestreamStateDir
		}
	}
	if len(args) > 1 && args[1] == "restore" {
		if cfg.LiteFS {
			return errors.New("restore: a LiteFS mount cannot take restored files: restore into a plain DATA_DIR " +
				"(LITEFS=off), then `litefs import` each file on the primary (README, Scaling out)")
		}
		return restore(ctx, cfg.DataDir, replication, args[2:], logger, stdout)
	}
	secret, err := sessionSecret(cfg)
	if err != nil {
		return err
	}
	var smtp *mail.SMTP
	if cfg.SMTPURL != "" {
		if smtp, err = mail.ParseSMTPURL(cfg.SMTPURL); err != nil {
			return fmt.Errorf("SMTP_URL: %w", err)
		}
	}
	a, err := app.Open(ctx, app.Config{
		DataDir:         cfg.DataDir,
		BaseURL:         cfg.BaseURL,
		SessionSecret:   secret,
		ReservationTTL:  cfg.ReservationTTL,
		SweepInterval:   cfg.SweepInterval,
		PriceCapPercent: cfg.PriceCapPercent,
		SMTP:            smtp,
		MailFrom:        cfg.MailFrom,
		Production:      cfg.Production,
		Logger:          logger,

		StripeSecretKey:     cfg.StripeSecretKey,
		StripeWebhookSecret: cfg.StripeWebhookSecret,
		StripeAPIBase:       cfg.StripeAPIBase,
		TrustedProxyHeader:  cfg.TrustedProxyHeader,
		Limits:              cfg.Limits,
		Replication:         replication,
		Cluster:             clusterConfig(cfg, logger),
	})
	if err != nil {
		return err
	}
	defer a.Close()

	if len(args) > 1 {
		return command(ctx, a, args[1:], stdout)
	}

	// bg ends the background loops only after HTTP has drained, so requests
	// in flight still see their events applied.
	bg, cancelBG := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelBG()
	if err := a.Start(bg); err != nil {
		return err
	}

	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", cfg.Addr, err)
	}
	srv := &http.Server{
		Handler:           a.Handler(),
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(handler, slog.LevelWarn),
	}
	errc := make(chan error, 2)
	// The internal listener: /metrics and the detailed /healthz, for the
	// operator's scraper (Fly's [metrics]), never the public port.
	var internal *http.Server
	if cfg.MetricsAddr != "off" {
		iln, err := net.Listen("tcp", cfg.MetricsAddr)
		if err != nil {
			ln.Close()
			return fmt.Errorf("listen on METRICS_ADDR %s: %w", cfg.MetricsAddr, err)
		}
		internal = &http.Server{Handler: a.InternalHandler(), ReadHeaderTimeout: 10 * time.Second, ErrorLog: srv.ErrorLog}
		logger.Info("internal listener (metrics, health details)", "addr", iln.Addr().String())
		fmt.Fprintf(stdout, "ticketing: internal on http://%s\n", iln.Addr())
		go func() { errc <- internal.Serve(iln) }()
	}
	srv.RegisterOnShutdown(a.Streams.Close) // live views end, so Shutdown need not wait for them
	logger.Info("listening", "addr", ln.Addr().String(), "data_dir", cfg.DataDir, "base_url", cfg.BaseURL)
	fmt.Fprintf(stdout, "ticketing: listening on http://%s\n", ln.Addr())

	go func() { errc <- srv.Serve(ln) }()

	select {
	case err := <-errc:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}

	// Fly sends SIGINT and waits kill_timeout (5 s) before SIGKILL.
	logger.Info("shutting down")
	// HTTP gets 2.5 s to drain and the replica 1.5 s to take the last
	// writes (app.Close), so the whole stop fits in 5 s.
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 2500*time.Millisecond)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil {
		logger.Warn("shutdown: connections still open", "err", err)
	}
	if internal != nil {
		internal.Close()
	}
	cancelBG()
	if err := a.Close(); err != nil {
		return fmt.Errorf("close: %w", err)
	}
	logger.Info("stopped")
	return nil
}

// clusterConfig is the node's cluster configuration, nil off LiteFS.
func clusterConfig(cfg config, logger *slog.Logger) *cluster.Config {
	if !cfg.LiteFS {
		return nil
	}
	return &cluster.Config{
		Mount:          db.LiteFS{Dir: cfg.DataDir},
		FlyReplay:      cfg.LiteFSForward == "fly-replay",
		PrimaryURL:     func(host string) string { return strings.ReplaceAll(cfg.LiteFSPrimaryURL, "{host}", host) },
		ClientIPHeader: cfg.TrustedProxyHeader,
		MaxLag:         cfg.LiteFSMaxLag,
		Logger:         logger,
	}
}

// portOf is addr's port ("8080" of ":8080").
func portOf(addr string) string {
	_, port, err := net.SplitHostPort(addr)
	if err != nil || port == "" {
		return "8080"
	}
	return port
}

// integrityCheck runs SQLite's full integrity_check on every module file and
// prints each one's result and time (`ticketing check`).
func integrityCheck(ctx context.Context, dir string, stdout io.Writer) error {
	var errs []error
	for _, name := range app.Modules {
		took, err := db.Check(ctx, filepath.Join(dir, name+".db"), true)
		switch {
		case errors.Is(err, os.ErrNotExist):
			fmt.Fprintf(stdout, "check: %s.db: missing\n", name)
		case err != nil:
			fmt.Fprintf(stdout, "check: %s.db: %v (%s)\n", name, err, took.Round(time.Millisecond))
			errs = append(errs, err)
		default:
			fmt.Fprintf(stdout, "check: %s.db: ok (integrity_check, %s)\n", name, took.Round(time.Millisecond))
		}
	}
	return errors.Join(errs...)
}

// restore brings every module file in dir back from the replica to the
// latest consistent cut, or the latest before -timestamp, moving the files
// that were there aside, and prints what each module lost
// (`ticketing restore [-timestamp 2026-12-01T20:00:00Z]`).
func restore(ctx context.Context, dir string, r *db.Replication, args []string, logger *slog.Logger, stdout io.Writer) error {
	flags := flag.NewFlagSet("restore", flag.ContinueOnError)
	flags.SetOutput(stdout)
	timestamp := flags.String("timestamp", "", "restore to the latest consistent cut synced before this time (RFC 3339, such as 2026-12-01T20:00:00Z)")
	if err := flags.Parse(args); err != nil {
		return err
	}
	if r == nil {
		return errors.New("restore: LITESTREAM_REPLICA_URL is not set: there is no replica to restore from")
	}
	var opt app.RestoreOptions
	if *timestamp != "" {
		t, err := time.Parse(time.RFC3339, *timestamp)
		if err != nil {
			return fmt.Errorf("restore: -timestamp %q: want RFC 3339, such as 2026-12-01T20:00:00Z", *timestamp)
		}
		opt.Timestamp = t
	}
	cut, err := app.Restore(ctx, dir, r, opt, logger)
	if err != nil {
		return err
	}
	for _, m := range cut.Modules {
		fmt.Fprintf(stdout, "restore: %s\n", m)
	}
	fmt.Fprintf(stdout, "restore: a consistent cut from %s in %s (%d file versions looked at); start the app to serve it\n",
		r, cut.Took.Round(time.Millisecond), cut.Probes)
	return nil
}

// command runs a one-off operation instead of serving.
func command(ctx context.Context, a *app.App, args []string, stdout io.Writer) error {
	switch args[0] {
	case "reconcile":
		// After a restore (it also runs by itself then): record payments
		// Stripe has and we lost, from the last 24 hours.
		n, err := a.Payments.Reconcile(ctx, time.Now().Add(-app.ReconcileWindow))
		if err != nil {
			return err
		}
		if a.Payments.Gateway().Test() {
			fmt.Fprintln(stdout, "reconcile: test mode (no STRIPE_SECRET_KEY): no processor to ask, nothing to do")
			return nil
		}
		fmt.Fprintf(stdout, "reconcile: recorded %d payments we had no record of\n", n)
		return nil
	}
	return fmt.Errorf("unknown command %q (commands: check, restore, reconcile)", args[0])
}
