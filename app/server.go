package app

import (
	"log/slog"
	"net/http"
	"strings"

	"github.com/labstack/echo/v4"
	"github.com/labstack/echo/v4/middleware"

	"ticketing/app/web"
)

// NewServer builds the Echo instance: the middleware every request passes,
// the error handler, and the routes.
func NewServer(a *App) http.Handler {
	e := echo.New()
	e.HideBanner = true
	e.HidePort = true
	e.HTTPErrorHandler = web.ErrorHandler(a.Renderer, a.logger)
	// The client's address (for the sign-in limiter and the logs): from
	// X-Forwarded-For only when the direct peer is a private or loopback
	// address (Fly's proxy), so a client cannot choose its own.
	e.IPExtractor = echo.ExtractIPFromXFFHeader()

	e.Use(middleware.RecoverWithConfig(middleware.RecoverConfig{
		LogErrorFunc: func(c echo.Context, err error, stack []byte) error {
			a.logger.Error("panic", "path", c.Request().URL.Path, "err", err, "stack", string(stack))
			return err
		},
		DisableStackAll:   true,
		DisablePrintStack: true,
	}))
	e.Use(requestLogger(a.logger))
	a.metrics = newMetrics(a)
	e.Use(a.metrics.middleware)
	e.Use(middleware.BodyLimit("1M"))
	e.Use(middleware.SecureWithConfig(middleware.SecureConfig{
		XSSProtection:      "",
		ContentTypeNosniff: "nosniff",
		XFrameOptions:      "DENY",
		ReferrerPolicy:     "same-origin",
	}))
	e.Use(a.Sessions.Middleware)
	e.Use(web.CSRF(isHTTPS(a.cfg.BaseURL)))
	e.Use(web.ReadYourWrites(a.Bus))

	routes(e, a)
	return e
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
		HandleError: true, // run the error handler first, so Status is what the client got
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
