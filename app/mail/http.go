package mail

import (
	"net/http"

	"github.com/labstack/echo/v4"

	"ticketing/app/web"
)

// Routes registers /mailbox: the signed-in user's messages, for a shop
// without SMTP (outside production only; the caller decides).
func Routes(site *echo.Group, s *Store, r *web.Renderer) {
	site.GET("/mailbox", handleMailbox(s, r), web.RequireUser)
}

func handleMailbox(s *Store, r *web.Renderer) echo.HandlerFunc {
	return func(c echo.Context) error {
		msgs, err := s.Mailbox(c.Request().Context(), web.CurrentUser(c).ID)
		if err != nil {
			return err
		}
		return r.Render(c, http.StatusOK, web.View{Page: "mail/mailbox", Title: "Your mailbox", Data: msgs})
	}
}
