package delivery

import (
	"io"
	"mime"
	"net/http"

	"github.com/labstack/echo/v4"

	"ticketing/app/problem"
	"ticketing/app/web"
)

// UploadLimit bounds the body of an upload: the file's 5 MB and the form
// around it (the server applies it, before anything reads the form).
const UploadLimit = "5184K"

// Routes registers the seller's upload (a file or a barcode, as a form:
// it works without JavaScript) and the download.
func Routes(site *echo.Group, s *Store, sessions *web.Sessions) {
	site.POST("/tickets/:id/attachment", handleAttach(s, sessions), web.RequireUser)
	site.GET("/tickets/:id/attachment", handleDownload(s))
}

// handleAttach stores the posted file, or barcode and format, and goes
// back to the ticket's page saying so; a refusal is said there too.
func handleAttach(s *Store, sessions *web.Sessions) echo.HandlerFunc {
	return func(c echo.Context) error {
		id := c.Param("id")
		a := Attachment{TicketID: id}
		fh, ferr := c.FormFile("file")
		switch {
		case ferr == nil && (fh.Size > 0 || fh.Filename != "" && c.FormValue("barcode") == ""):
			// A file (an empty one is refused as such).
			if fh.Size > MaxFile {
				return refuse(problem.Fields(map[string]string{"file": "The file is larger than 5 MB"}))
			}
			f, err := fh.Open()
			if err != nil {
				return err
			}
			defer f.Close()
			data, err := io.ReadAll(io.LimitReader(f, MaxFile+1))
			if err != nil {
				return err
			}
			a.Kind, a.FileName, a.Data = "file", fh.Filename, data
		case c.FormValue("barcode") != "":
			a.Kind, a.Barcode, a.BarcodeFormat = "barcode", c.FormValue("barcode"), c.FormValue("format")
		}
		if _, err := s.Attach(c.Request().Context(), web.CurrentUser(c).ID, a); err != nil {
			return refuse(err)
		}
		if err := sessions.Flash(c, "The ticket is attached: its buyer can download it the moment they have paid."); err != nil {
			return err
		}
		return web.Redirect(c, "/tickets/"+id)
	}
}

// refuse answers a refused attachment with its reason, as a 4xx page
// (422 for the file or barcode, 409 for a ticket that sold), and nothing
// stored.
func refuse(err error) error {
	p, ok := problem.As(err)
	if !ok || len(p.Fields) == 0 {
		return err
	}
	return &problem.Error{Kind: p.Kind, Message: p.Fields[p.FieldNames()[0]], Fields: p.Fields}
}

// handleDownload answers the ticket to who may have it: the file as it
// was uploaded, or the barcode as a PNG; anyone else gets 404.
func handleDownload(s *Store) echo.HandlerFunc {
	return func(c echo.Context) error {
		u := web.CurrentUser(c)
		if u == nil {
			return errNotFound // no more said to a visitor than to anyone else
		}
		a, err := s.Download(c.Request().Context(), u.ID, c.Param("id"))
		if err != nil {
			return err
		}
		h := c.Response().Header()
		h.Set("Cache-Control", "no-store")
		h.Set("X-Content-Type-Options", "nosniff")
		if a.Kind == "barcode" {
			png, err := BarcodePNG(a.Barcode, a.BarcodeFormat)
			if err != nil {
				return err
			}
			return c.Blob(http.StatusOK, "image/png", png)
		}
		h.Set("Content-Disposition", mime.FormatMediaType("attachment", map[string]string{"filename": downloadName(a)}))
		return c.Blob(http.StatusOK, a.ContentType, a.Data)
	}
}

// downloadName is the name the file downloads as: the seller's, with the
// extension of what it really is.
func downloadName(a Attachment) string {
	ext := map[string]string{"application/pdf": ".pdf", "image/png": ".png", "image/jpeg": ".jpg"}[a.ContentType]
	return "ticket-" + a.TicketID + ext
}
