// Package app wires the modules into one process: it opens each module's
// SQLite file, connects their event logs, and builds the HTTP handler. main
// and the tests use the same wiring, so what the tests exercise is what runs.
package app

import (
	"context"
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"time"

	"ticketing/app/auth"
	"ticketing/app/cluster"
	"ticketing/app/delivery"
	"ticketing/app/expiration"
	"ticketing/app/mail"
	"ticketing/app/orders"
	"ticketing/app/payments"
	"ticketing/app/tickets"
	"ticketing/app/web"
	"ticketing/db"
	"ticketing/events"
	"ticketing/views"
)

// Config is what the app needs from the environment (see main.go).
type Config struct {
	DataDir        string
	BaseURL        string
	SessionSecret  []byte
	ReservationTTL time.Duration
	SweepInterval  time.Duration
	Production     bool
	Logger         *slog.Logger
	// PriceCapPercent is how far above its face value a show's ticket may
	// be offered (PRICE_CAP_PERCENT); 0 is no cap.
	PriceCapPercent int

	// Stripe keys; without a secret key the built-in test gateway and
	// checkout page stand in for Stripe. StripeAPIBase points the client at
	// stripe-mock in tests.
	StripeSecretKey     string
	StripeWebhookSecret string
	StripeAPIBase       string

	// TrustedProxyHeader names the request header the operator's proxy
	// sets to the client's IP (Fly-Client-IP); empty means the peer's
	// address. X-Forwarded-For is never trusted: any client can send it.
	TrustedProxyHeader string
	// Limits are the sign-in and sign-up rate limits; zero rates take
	// auth.DefaultLimits.
	Limits auth.Limits

	// BcryptCost is the password hashing cost; 0 means bcrypt's default.
	// Tests lower it, which is the only reason it is here.
	BcryptCost int
	// Events tunes the bus (poll interval, read-your-writes bound).
	Events events.Options
	// SMTP sends the mail (SMTP_URL); nil keeps every message in mail.db,
	// readable at /mailbox outside production. MailFrom is the sender.
	SMTP     *mail.SMTP
	MailFrom string
	// Replication, when set, restores missing files and streams every file
	// to object storage (LITESTREAM_REPLICA_URL).
	Replication *db.Replication
	// Cluster, when set, runs the process as a node of a LiteFS cluster
	// (LITEFS=on): DataDir is the LiteFS mount, the work that writes and
	// Replication run only while the node is the primary, and a replica
	// hands writes to the primary. Its Files are set to Modules.
	Cluster *cluster.Config
}

// Modules are the module files, in the order they are opened.
var Modules = []string{"auth", "tickets", "orders", "expiration", "payments", "mail", "delivery"}

// App is the running process's parts.
type App struct {
	cfg    Config
	logger *slog.Logger

	DBs []*db.DB
	// Restored is set when module files came back from the replica (at
	// this start or by `ticketing restore`) and payments have not been
	// reconciled with Stripe since: Start then does it.
	Restored bool
	Bus      *events.Bus
	Views    *views.Views
	Sessions *web.Sessions
	Renderer *web.Renderer
	// Streams are the live (Server-Sent Events) views; main closes them
	// when the server starts shutting down.
	Streams *web.Streams

	Auth       *auth.Store
	Tickets    *tickets.Store
	Orders     *orders.Store
	Expiration *expiration.Store
	Mail       *mail.Store
	Delivery   *delivery.Store
	Sweeper    *expiration.Sweeper
	Payments   *payments.Store
	Webhook    *payments.Webhook
	limiter    *auth.Limiter
	// Node is this process in a LiteFS cluster; nil on one machine.
	Node *cluster.Node

	leadMu   sync.Mutex
	stopLead func() // set while the background work that writes runs

	handler   http.Handler
	internal  http.Handler
	metrics   *metrics
	stopBG    context.CancelFunc
	bg        sync.WaitGroup
	closeOnce sync.Once
	closeErr  error

	healthCache healthCache
}

// prepareFiles trusts no file before the app opens them. An empty or
// damaged one is not a new module: with a replica it is moved aside and
// restored, without one the start stops and names it. With a replica, a
// missing file, or files that disagree (a consumer past its source's log),
// bring every file back to one consistent cut (see Restore); then
// Litestream's store opens, before the app's own connections.
func (a *App) prepareFiles(ctx context.Context) error {
	cfg := a.cfg
	repair := false
	for _, name := range Modules {
		path := filepath.Join(cfg.DataDir, name+".db")
		took, err := db.Check(ctx, path, false)
		switch {
		case errors.Is(err, os.ErrNotExist):
			// A deleted file's -wal would be applied by SQLite to the new
			// file that takes its name.
			if _, werr := os.Stat(path + "-wal"); werr == nil {
				to, merr := db.MoveAside(path, "orphaned")
				if merr != nil {
					return merr
				}
				a.logger.Warn("a module file was deleted but its -wal was left; moved aside", "file", name+".db", "moved_to", to+"-wal")
			}
			repair = true
		case errors.Is(err, db.ErrDamaged) && cfg.Replication != nil:
			to, merr := db.MoveAside(path, "damaged")
			if merr != nil {
				return merr
			}
			a.logger.Error("damaged module file moved aside; restoring it from the replica", "file", name+".db", "moved_to", to, "err", err)
			repair = true
		case errors.Is(err, db.ErrDamaged):
			return fmt.Errorf("%w\nThere is no replica (LITESTREAM_REPLICA_URL) to restore it from: put back a good copy of the file, "+
				"or move it away to start the %s module empty (its data is then gone)", err, name)
		case err != nil:
			return err
		default:
			a.logger.Info("module file checked", "file", name+".db", "quick_check", took)
		}
	}
	r := cfg.Replication
	if r == nil {
		return nil // Bus.CheckPositions refuses files that disagree
	}
	if !repair {
		files := map[string]events.Positions{}
		for _, name := range Modules {
			p, err := readPositions(ctx, filepath.Join(cfg.DataDir, name+".db"))
			if err != nil {
				return fmt.Errorf("read %s.db's positions: %w", name, err)
			}
			files[name] = p
		}
		for _, g := range events.Gaps(files) {
			a.logger.Error("module files disagree; restoring a consistent cut from the replica", "gap", g.String())
			repair = true
		}
	}
	if repair {
		cut, err := Restore(ctx, cfg.DataDir, r, RestoreOptions{UseLocal: true}, a.logger)
		if err != nil {
			return err
		}
		for _, m := range cut.Modules {
			a.logger.Info("restore: "+m.String(), "module", m.Name, "source", m.Source, "lost_events", sum(m.Lost))
		}
		if cut.Changed() {
			a.logger.Info("restored a consistent cut from the replica", "replica", r.String(), "took", cut.Took, "probes", cut.Probes)
		}
	}
	if _, err := os.Stat(filepath.Join(cfg.DataDir, restoredMarker)); err == nil {
		a.Restored = true
	}
	files := map[string]string{}
	for _, name := range Modules {
		files[name] = filepath.Join(cfg.DataDir, name+".db")
	}
	return r.Start(ctx, files)
}

// openFiles opens every module file, applying its migrations.
func (a *App) openFiles(ctx context.Context) error {
	schemas := map[string]db.Migrations{
		"auth": auth.Migrations(), "tickets": tickets.Migrations(), "orders": orders.Migrations(),
		"expiration": expiration.Migrations(), "payments": payments.Migrations(), "mail": mail.Migrations(),
		"delivery": delivery.Migrations(),
	}
	for _, name := range Modules {
		d, err := db.Open(ctx, a.cfg.DataDir, name, events.Migrations(), schemas[name])
		if err != nil {
			return err
		}
		a.DBs = append(a.DBs, d)
	}
	return nil
}

// openReplicated opens the module files on a LiteFS mount. The primary
// creates and migrates them; a replica can only read, so it waits until
// the primary's files have reached it with every migration this build
// knows (on a new cluster, or when the primary runs an older build), and
// says so every few seconds. A file that is not right is LiteFS's to
// repair from the primary, not restored here.
func (a *App) openReplicated(ctx context.Context) error {
	mount := db.LiteFS{Dir: a.cfg.DataDir}
	if !mount.Mounted() {
		return fmt.Errorf("LITEFS=on but %s is not a LiteFS mount (no .lag file): start the app under `litefs mount` (see litefs.yml), with DATA_DIR its fuse.dir", a.cfg.DataDir)
	}
	for attempt := 0; ; attempt++ {
		err := a.openFiles(ctx)
		if err == nil {
			return nil
		}
		for _, d := range a.DBs {
			d.Close()
		}
		a.DBs = nil
		leading, primary, perr := mount.Role()
		if perr != nil || leading {
			return errors.Join(err, perr) // the primary's own files: a real error
		}
		if attempt%10 == 0 {
			a.logger.Info("cluster: waiting for the primary's files to reach this replica", "primary", primary, "err", err)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting for the module files from the primary %s: %w", primary, err)
		case <-time.After(500 * time.Millisecond):
		}
	}
}

// Open opens every module's file, applies migrations and wires the modules'
// events. Nothing runs in the background until Start.
func Open(ctx context.Context, cfg Config) (_ *App, err error) {
	logger := cfg.Logger
	if logger == nil {
		logger = slog.Default()
	}
	a := &App{cfg: cfg, logger: logger}
	defer func() {
		if err != nil {
			a.Close()
		}
	}()

	if cfg.Cluster != nil {
		cc := *cfg.Cluster
		cc.Files = Modules
		if cc.Logger == nil {
			cc.Logger = logger
		}
		a.Node = cluster.New(cc)
		if err := a.openReplicated(ctx); err != nil {
			return nil, err
		}
	} else {
		if err := a.prepareFiles(ctx); err != nil {
			return nil, err
		}
		if err := a.openFiles(ctx); err != nil {
			return nil, err
		}
	}
	authDB, ticketsDB, ordersDB := a.DB("auth"), a.DB("tickets"), a.DB("orders")
	expirationDB, paymentsDB, mailDB, deliveryDB := a.DB("expiration"), a.DB("payments"), a.DB("mail"), a.DB("delivery")

	a.Bus = events.NewBus(logger, cfg.Events)
	resetKey := derivedKey(cfg.SessionSecret, "password reset links")
	a.Auth = auth.NewStore(authDB, a.Bus.Log(authDB), cfg.BcryptCost, resetKey)
	a.Tickets = tickets.NewStore(ticketsDB, a.Bus.Log(ticketsDB), cfg.PriceCapPercent)
	a.Orders = orders.NewStore(ordersDB, a.Bus.Log(ordersDB), cfg.ReservationTTL, logger)
	a.Expiration = expiration.NewStore(expirationDB, a.Bus.Log(expirationDB))
	a.Delivery = delivery.NewStore(deliveryDB, a.Bus.Log(deliveryDB))
	a.limiter = auth.NewLimiter(cfg.Limits)

	var gateway payments.Gateway = payments.NewTestGateway(cfg.BaseURL, []byte(testWebhookSecret(cfg.SessionSecret)))
	webhookSecret := cfg.StripeWebhookSecret
	if cfg.StripeSecretKey != "" {
		gateway = payments.NewStripeGateway(cfg.StripeSecretKey, cfg.StripeAPIBase)
	} else {
		// The test checkout signs its events like Stripe does, with a
		// secret of this install's own.
		webhookSecret = testWebhookSecret(cfg.SessionSecret)
	}
	a.Payments = payments.NewStore(paymentsDB, a.Bus.Log(paymentsDB), gateway, a.Bus, logger)
	a.Webhook = payments.NewWebhook(a.Payments, webhookSecret)
	if a.Views, err = views.New(); err != nil {
		return nil, err
	}
	var transport mail.Transport
	if cfg.SMTP != nil {
		transport = cfg.SMTP
	}
	a.Mail = mail.NewStore(mailDB, a.Views, cfg.BaseURL, cfg.MailFrom, transport, logger)
	a.Mail.ResetToken = func(id string) string { return auth.ResetToken(resetKey, id) }

	// The event flow between modules, as in the seed's NATS subscriptions.
	tickets.Subscribe(a.Bus.Consumers(ticketsDB), a.Tickets)
	orders.Subscribe(a.Bus.Consumers(ordersDB), a.Orders)
	expiration.Subscribe(a.Bus.Consumers(expirationDB), a.Expiration)
	payments.Subscribe(a.Bus.Consumers(paymentsDB), a.Payments)
	delivery.Subscribe(a.Bus.Consumers(deliveryDB), a.Delivery)
	// Who bought what is read at download time; a payment never waits
	// for it. (Its copy of the sellers is awaited: a seller attaches the
	// ticket right after listing it.)
	a.Bus.Consumers(deliveryDB).InBackground("orders")
	mail.Subscribe(a.Bus.Consumers(mailDB), a.Mail)
	a.Bus.Consumers(mailDB).InBackground() // a purchase never waits for its mail

	// A file restored from an older backup than the files that consumed
	// its events must not be served: its log would reuse their seqs. (On
	// a LiteFS mount the files arrive one by one, so a replica's may
	// disagree for a moment; a node that becomes the primary closes the
	// gaps, see lead.)
	if err := a.Bus.CheckPositions(ctx); err != nil && a.Node == nil {
		return nil, fmt.Errorf("refusing to start: the module files in %s disagree: %w\n"+
			"Serving now would give new events numbers the consumers have already applied, and they would skip them. "+
			"Put back the newer copy of the file that is behind, or restore every module file from the same backup point", cfg.DataDir, err)
	}

	if a.Sweeper, err = expiration.NewSweeper(a.Expiration, cfg.SweepInterval, logger); err != nil {
		return nil, err
	}

	if a.Sessions, err = web.NewSessions(cfg.SessionSecret, isHTTPS(cfg.BaseURL), a.Auth, logger); err != nil {
		return nil, err
	}
	a.Renderer = &web.Renderer{Views: a.Views, Sessions: a.Sessions, TestMode: gateway.Test()}
	a.Streams = web.NewStreams(a.Sessions)
	a.metrics = newMetrics(a)
	a.handler = NewServer(a)
	a.internal = internalRoutes(a)
	return a, nil
}

// Start runs the consumers, the expiration sweeper and the payments worker
// until ctx ends or Close. The sweeper's first run is immediate, so
// deadlines that passed while the process was down are swept at once. In
// a cluster they run only while this node is the primary: Start returns
// once the node knows its role, and the work follows the lease from then
// on.
func (a *App) Start(ctx context.Context) error {
	bg, stop := context.WithCancel(ctx)
	a.stopBG = stop
	switch {
	case a.Payments.Gateway().Test() && a.cfg.Production:
		a.logger.Warn("payments in TEST MODE in production (PAYMENTS=test): orders are paid by the built-in test checkout, and no money is taken")
	case a.Payments.Gateway().Test():
		a.logger.Info("payments in TEST MODE: no Stripe keys, the built-in test checkout stands in for Stripe")
	}
	if a.Node != nil {
		a.bg.Go(func() {
			a.Node.Run(bg, cluster.Hooks{
				Lead:    func() error { return a.lead(bg) },
				Follow:  a.follow,
				Changed: func(name string) { a.changed(bg, name) },
			})
		})
		for {
			if _, _, known := a.Node.Role(); known {
				return nil
			}
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(5 * time.Millisecond):
			}
		}
	}
	if err := a.lead(bg); err != nil {
		return err
	}
	if a.Restored {
		// A restore can lose the last second of writes, a webhook we
		// answered among them: ask Stripe what was paid.
		rctx, cancel := context.WithTimeout(ctx, time.Minute)
		defer cancel()
		if _, err := a.Payments.Reconcile(rctx, time.Now().Add(-ReconcileWindow)); err != nil {
			a.logger.Error("reconcile with Stripe after restore failed; run `ticketing reconcile` once Stripe answers", "err", err)
		} else if err := os.Remove(filepath.Join(a.cfg.DataDir, restoredMarker)); err != nil && !errors.Is(err, os.ErrNotExist) {
			a.logger.Warn("could not remove the restore marker; the next start reconciles again", "err", err)
		}
	}
	return nil
}

// lead starts the background work that writes: the consumers, the
// sweeper, the payments worker, the mail sender, and in a cluster the
// backups (on one machine those start before the files open, in
// prepareFiles). In a cluster the node may have been a replica until now:
// the files are migrated to this build and read again first, since what
// the process remembered of them was written by another node.
func (a *App) lead(ctx context.Context) error {
	a.leadMu.Lock()
	defer a.leadMu.Unlock()
	if a.stopLead != nil {
		return nil
	}
	if a.Node != nil {
		for _, d := range a.DBs {
			if err := d.Migrate(ctx); err != nil {
				return err
			}
		}
		if err := a.refresh(ctx); err != nil {
			return err
		}
		// LiteFS ships each file on its own: the old primary's last
		// commits can reach this node in one file and not another.
		gaps, err := a.Bus.CloseGaps(ctx)
		if err != nil {
			return err
		}
		for _, g := range gaps {
			a.logger.Error("cluster: the old primary's last events of a module were lost in the failover, though another module had applied them; "+
				"new events are numbered past them so none is skipped", "gap", g.String(), "lost_events", g.Position-g.Head)
		}
		if r := a.cfg.Replication; r != nil {
			files := map[string]string{}
			for _, d := range a.DBs {
				files[d.Name] = d.Path
			}
			if err := r.Start(ctx, files); err != nil {
				return fmt.Errorf("start backups: %w", err)
			}
		}
	}
	if err := a.Bus.Start(ctx); err != nil {
		return fmt.Errorf("start consumers: %w", err)
	}
	a.Sweeper.Start()
	work, stop := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Go(func() { a.Payments.Run(work) })
	wg.Go(func() { a.Mail.Run(work) })
	a.stopLead = func() {
		stop()
		wg.Wait()
		if err := a.Sweeper.Stop(); err != nil {
			a.logger.Warn("stop sweeper", "err", err)
		}
		a.Bus.Stop()
	}
	return nil
}

// follow stops what lead started; in a cluster, the backups too (the
// next primary's own take over), and the files are read again.
func (a *App) follow() {
	a.leadMu.Lock()
	defer a.leadMu.Unlock()
	if a.stopLead != nil {
		a.stopLead()
		a.stopLead = nil
		if r := a.cfg.Replication; r != nil && a.Node != nil {
			ctx, cancel := context.WithTimeout(context.Background(), 1500*time.Millisecond)
			if err := r.Close(ctx); err != nil {
				a.logger.Warn("stop backups", "err", err)
			}
			cancel()
		}
	}
	if a.Node != nil {
		if err := a.refresh(context.Background()); err != nil {
			a.logger.Warn("cluster: reading the files again", "err", err)
		}
	}
}

// refresh makes the process forget what it remembers of every file.
func (a *App) refresh(ctx context.Context) error {
	for _, name := range Modules {
		if err := a.reread(ctx, name); err != nil {
			return err
		}
	}
	return nil
}

// changed is a replica's answer to a commit arriving in file name: its
// log wakes the live pages, and what a module keeps in memory from the
// file is read again (a signed-out session must not live on here).
func (a *App) changed(ctx context.Context, name string) {
	if err := a.reread(ctx, name); err != nil {
		a.logger.Warn("cluster: reading a changed file", "file", name, "err", err)
	}
}

// reread forgets what the bus and the modules remember of file name.
func (a *App) reread(ctx context.Context, name string) error {
	if err := a.Bus.Refresh(ctx, name); err != nil {
		return err
	}
	a.forget(name)
	return nil
}

func (a *App) forget(name string) {
	switch name {
	case "auth":
		a.Auth.ForgetSessions()
	case "tickets":
		a.Tickets.ForgetCities()
	}
}

// ReconcileWindow is how far back reconciliation asks Stripe: longer than
// any reservation window and Checkout Session.
const ReconcileWindow = 24 * time.Hour

// DB returns the module file named name ("orders"), nil if there is none.
// For operations and tests (the invariant checker); modules get theirs
// at wiring time.
func (a *App) DB(name string) *db.DB {
	for _, d := range a.DBs {
		if d.Name == name {
			return d
		}
	}
	return nil
}

// Handler is the whole public HTTP surface.
func (a *App) Handler() http.Handler { return a.handler }

// InternalHandler serves /metrics and the detailed /healthz, for the
// internal listen address (METRICS_ADDR).
func (a *App) InternalHandler() http.Handler { return a.internal }

// Close stops the background work, then closes the files. Calling it again
// returns the first result.
func (a *App) Close() error {
	a.closeOnce.Do(func() {
		if a.Streams != nil {
			a.Streams.Close()
		}
		if a.stopBG != nil {
			a.stopBG()
			a.bg.Wait()
		}
		a.leadMu.Lock()
		if a.stopLead != nil {
			a.stopLead()
			a.stopLead = nil
		}
		a.leadMu.Unlock()
		var errs []error
		if r := a.cfg.Replication; r != nil {
			// Push the last writes out before the files close.
			ctx, cancel := context.WithTimeout(context.Background(), 1500*time.Millisecond)
			if err := r.Sync(ctx); err != nil {
				errs = append(errs, fmt.Errorf("replicate before close: %w", err))
			}
			cancel()
		}
		for _, d := range a.DBs {
			if err := d.Close(); err != nil {
				errs = append(errs, fmt.Errorf("close %s: %w", d.Name, err))
			}
		}
		if r := a.cfg.Replication; r != nil {
			if err := r.Close(context.Background()); err != nil {
				errs = append(errs, fmt.Errorf("close replication: %w", err))
			}
		}
		a.closeErr = errors.Join(errs...)
	})
	return a.closeErr
}

// testWebhookSecret derives the test checkout's signing secret from the
// session secret: stable across restarts, different per install.
func testWebhookSecret(sessionSecret []byte) string {
	k, err := hkdf.Key(sha256.New, sessionSecret, nil, "ticketing test webhook", 24)
	if err != nil {
		panic(err) // only for lengths sha256 cannot produce
	}
	return "whsec_test_" + hex.EncodeToString(k)
}

func isHTTPS(baseURL string) bool {
	return len(baseURL) >= 8 && baseURL[:8] == "https://"
}

// derivedKey is a key for one purpose, from the install's secret.
func derivedKey(secret []byte, purpose string) []byte {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(purpose))
	return m.Sum(nil)
}
