package app

import (
	"log/slog"
	"net/http"
	"net/netip"
	"strings"

	"github.com/labstack/echo/v4"
	"github.com/labstack/echo/v4/middleware"

	"ticketing/app/delivery"
	"ticketing/app/web"
)

// NewServer builds the Echo instance: the middleware every request passes,
// the error handler, and the routes.
func NewServer(a *App) http.Handler {
	e := echo.New()
	e.HideBanner = true
	e.HidePort = true
	e.HTTPErrorHandler = web.ErrorHandler(a.Renderer, a.logger)
	e.IPExtractor = clientIP(a.cfg.TrustedProxyHeader)

	e.Use(middleware.RecoverWithConfig(middleware.RecoverConfig{
		LogErrorFunc: func(c echo.Context, err error, stack []byte) error {
			a.logger.Error("panic", "path", c.Request().URL.Path, "err", err, "stack", string(stack))
			return err
		},
		DisableStackAll:   true,
		DisablePrintStack: true,
	}))
	// The logger is outside the metrics middleware, which hands errors to
	// the error handler: both see the status the client got.
	e.Use(requestLogger(a.logger))
	e.Use(a.metrics.middleware)
	// Bodies are bounded before anything reads them (the CSRF check reads
	// forms): 1 MB, but a ticket file's upload (5 MB and its form).
	upload := func(c echo.Context) bool {
		return c.Request().Method == http.MethodPost && strings.HasSuffix(c.Request().URL.Path, "/attachment")
	}
	e.Use(middleware.BodyLimitWithConfig(middleware.BodyLimitConfig{Limit: "1M", Skipper: upload}))
	e.Use(middleware.BodyLimitWithConfig(middleware.BodyLimitConfig{Limit: delivery.UploadLimit, Skipper: func(c echo.Context) bool { return !upload(c) }}))
	if a.Node != nil {
		// A replica hands writes to the primary before anything here
		// reads the request.
		e.Use(a.Node.Forward(writingGETs...))
	}
	e.Use(web.BoundQuery)
	e.Use(web.SecurityHeaders(a.cfg.BaseURL))
	e.Use(a.Sessions.Middleware)
	e.Use(web.NoStoreWhenSignedIn)
	e.Use(web.CSRF(isHTTPS(a.cfg.BaseURL), a.Renderer))
	e.Use(web.ReadYourWrites(a.Bus))
	if a.Node != nil {
		// Inside read-your-writes: the positions are read once the
		// request's events have been applied everywhere.
		e.Use(a.Node.Positions(writingGETs...))
	}

	routes(e, a)
	return e
}

// writingGETs are the GET routes that write (by path suffix): signing out
// by link, and a ticket's download, which is recorded.
var writingGETs = []string{"/auth/signout", "/attachment"}

// clientIP is where the client's address (for the rate limits and the
// logs) comes from: the header the operator's proxy sets (Fly-Client-IP),
// when one is configured, else the connection's peer. X-Forwarded-For is
// never read: a client can write any address there, and a limit keyed on
// it is no limit.
func clientIP(header string) echo.IPExtractor {
	direct := echo.ExtractIPDirect()
	if header == "" {
		return direct
	}
	return func(r *http.Request) string {
		if a, err := netip.ParseAddr(strings.TrimSpace(r.Header.Get(header))); err == nil {
			return a.String()
		}
		return direct(r)
	}
}

// requestLogger logs one line per request with log/slog; static files and
// health checks only when they fail, so the log stays readable.
func requestLogger(logger *slog.Logger) echo.MiddlewareFunc {
	return middleware.RequestLoggerWithConfig(middleware.RequestLoggerConfig{
		LogMethod:   true,
		LogURI:      true,
		LogStatus:   true,
		LogLatency:  true,
		LogRemoteIP: true,
		LogError:    true,
		LogValuesFunc: func(c echo.Context, v middleware.RequestLoggerValues) error {
			p := c.Request().URL.Path
			if v.Status < 400 && (strings.HasPrefix(p, "/static/") || p == "/healthz" || p == "/metrics") {
				return nil
			}
			level := slog.LevelInfo
			if v.Status >= 500 {
				level = slog.LevelError
			}
			logger.LogAttrs(c.Request().Context(), level, "request",
				slog.String("method", v.Method), slog.String("uri", v.URI), slog.Int("status", v.Status),
				slog.Duration("latency", v.Latency), slog.String("ip", v.RemoteIP))
			return nil
		},
	})
}
