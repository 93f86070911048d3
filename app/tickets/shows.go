package tickets

import (
	"encoding/json"
	"strings"
	"time"

	// The venues' zones come with the binary: a static build on a
	// minimal image has no zoneinfo of its own.
	_ "time/tzdata"

	"ticketing/app/problem"
	"ticketing/app/text"
	"ticketing/app/web"
	"ticketing/views"
)

// Show is a concert: who plays (Title), where (Venue, City, Country) and
// when (StartsAt, an instant, shown in the venue's TimeZone). Listings
// for it carry its id. The word "events" is the event log's, so concerts
// are shows in code and tables.
type Show struct {
	ID          string
	Title       string
	Venue       string
	City        string
	Country     string
	StartsAt    time.Time // UTC
	TimeZone    string    // IANA, the venue's
	Description string
	UserID      string // who added it
	Version     int64
	CreatedAt   time.Time
	UpdatedAt   time.Time
	// OnSale and MinPriceCents are its listings on sale: how many, and
	// the cheapest (0 when none).
	OnSale        int
	MinPriceCents int64
}

// Local is the show's start in the venue's zone.
func (s Show) Local() time.Time { return inZone(s.StartsAt, s.TimeZone) }

// Started reports whether the show has begun at now: its tickets can no
// longer be reserved, and it is off the lists.
func (s Show) Started(now time.Time) bool { return !now.Before(s.StartsAt) }

// ShowRef is what a listing shows of its show: enough for "Radiohead ·
// Fri 12 Jun 2027, 20:00 CEST, Ziggo Dome, Amsterdam". ID is "" for a
// listing that belongs to no show.
type ShowRef struct {
	ID       string
	Title    string
	Venue    string
	City     string
	StartsAt time.Time
	TimeZone string
}

// Local is the start in the venue's zone.
func (s ShowRef) Local() time.Time { return inZone(s.StartsAt, s.TimeZone) }

func inZone(t time.Time, zone string) time.Time { return views.InZone(t, zone) }

// Show field bounds.
const (
	maxShowTitle   = 120
	maxVenue       = 120
	maxCity        = 80
	maxCountry     = 60
	maxDescription = 2000
	maxSeatPart    = 20 // section, row, seat: "Floor left", "AA", "1021"
)

// ShowInput is a show as typed or sent: the start is either an instant
// with its offset (2027-06-12T20:00:00+02:00) or the venue's wall-clock
// time (2027-06-12T20:00, what a datetime-local field sends), read in
// TimeZone.
type ShowInput struct {
	Title       string `json:"title"`
	Venue       string `json:"venue"`
	City        string `json:"city"`
	Country     string `json:"country"`
	StartsAt    string `json:"startsAt"`
	TimeZone    string `json:"timeZone"`
	Description string `json:"description"`
}

// wallClock are the layouts of a start without an offset.
var wallClock = []string{"2006-01-02T15:04", "2006-01-02T15:04:05", "2006-01-02 15:04"}

// parse validates every field at once and returns the show it describes
// (its id, owner and version are the caller's). The start must be after
// now.
func (in ShowInput) parse(now time.Time) (Show, error) {
	fields := map[string]string{}
	sh := Show{
		Title:       strings.TrimSpace(in.Title),
		Venue:       strings.TrimSpace(in.Venue),
		City:        strings.TrimSpace(in.City),
		Country:     strings.TrimSpace(in.Country),
		TimeZone:    strings.TrimSpace(in.TimeZone),
		Description: strings.TrimSpace(in.Description),
	}
	required := func(field, name, v string, max int) {
		if v == "" {
			fields[field] = name + " is required"
		} else if msg := text.Line(name, v, max); msg != "" {
			fields[field] = msg
		}
	}
	required("title", "Performer or title", sh.Title, maxShowTitle)
	required("venue", "Venue", sh.Venue, maxVenue)
	required("city", "City", sh.City, maxCity)
	required("country", "Country", sh.Country, maxCountry)
	if msg := text.Lines("Description", sh.Description, maxDescription); msg != "" {
		fields["description"] = msg
	}

	loc, zoneErr := zone(sh.TimeZone)
	if zoneErr != "" {
		fields["timeZone"] = zoneErr
	}
	start := strings.TrimSpace(in.StartsAt)
	if start == "" {
		fields["startsAt"] = "Start time is required"
	} else if t, ok := parseStart(start, loc); ok && !t.After(now) {
		fields["startsAt"] = "Start time must be in the future"
	} else if ok {
		sh.StartsAt = t.UTC()
	} else if _, wall := parseStart(start, time.UTC); loc != nil || !wall {
		// (A wall-clock time with a zone that is wrong: said at the zone.)
		fields["startsAt"] = "Start time must be a date and time such as 2027-06-12T20:00"
	}
	if len(fields) > 0 {
		return Show{}, problem.Fields(fields)
	}
	return sh, nil
}

// zone loads an IANA time zone, or says why it cannot.
func zone(name string) (*time.Location, string) {
	if name == "" {
		return nil, "Time zone is required"
	}
	if msg := text.Line("Time zone", name, 64); msg != "" {
		return nil, msg
	}
	// "Local" is the server's zone, never a venue's.
	if strings.EqualFold(name, "local") {
		return nil, "Time zone must be an IANA zone such as Europe/Amsterdam"
	}
	loc, err := time.LoadLocation(name)
	if err != nil {
		return nil, "Time zone must be an IANA zone such as Europe/Amsterdam"
	}
	return loc, ""
}

// parseStart reads a start with an offset, or a wall-clock time in loc.
func parseStart(s string, loc *time.Location) (time.Time, bool) {
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t, true
	}
	if loc == nil {
		return time.Time{}, false
	}
	for _, layout := range wallClock {
		if t, err := time.ParseInLocation(layout, s, loc); err == nil {
			return t, true
		}
	}
	return time.Time{}, false
}

// MarshalJSON writes a show: its start as an instant in the venue's
// offset (2027-06-12T20:00:00+02:00), its lowest price on sale in
// currency units, null when none is.
func (s Show) MarshalJSON() ([]byte, error) {
	var lowest *json.Number
	if s.OnSale > 0 {
		n := web.Units(s.MinPriceCents)
		lowest = &n
	}
	return json.Marshal(showJSON{
		ID: s.ID, Title: s.Title, Venue: s.Venue, City: s.City, Country: s.Country,
		StartsAt: s.Local().Format(time.RFC3339), TimeZone: s.TimeZone, Description: s.Description,
		UserID: s.UserID, Version: s.Version, OnSale: s.OnSale, LowestPrice: lowest,
	})
}

type showJSON struct {
	ID          string       `json:"id"`
	Title       string       `json:"title"`
	Venue       string       `json:"venue"`
	City        string       `json:"city"`
	Country     string       `json:"country"`
	StartsAt    string       `json:"startsAt"`
	TimeZone    string       `json:"timeZone"`
	Description string       `json:"description"`
	UserID      string       `json:"userId"`
	Version     int64        `json:"version"`
	OnSale      int          `json:"onSale"`
	LowestPrice *json.Number `json:"lowestPrice"`
}

// Events about shows, in the tickets log with the listings'.
const (
	eventShowCreated = "show:created"
	eventShowUpdated = "show:updated"
)

// showChanged is the payload of show:created and show:updated: the show
// after the change (not its counts, which follow its listings).
type showChanged struct {
	ID       string    `json:"id"`
	Title    string    `json:"title"`
	Venue    string    `json:"venue"`
	City     string    `json:"city"`
	Country  string    `json:"country"`
	StartsAt time.Time `json:"startsAt"`
	TimeZone string    `json:"timeZone"`
	UserID   string    `json:"userId"`
	Version  int64     `json:"version"`
}

func showEvent(s Show) showChanged {
	return showChanged{ID: s.ID, Title: s.Title, Venue: s.Venue, City: s.City, Country: s.Country,
		StartsAt: s.StartsAt, TimeZone: s.TimeZone, UserID: s.UserID, Version: s.Version}
}
