package web

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/labstack/echo/v4"

	"ticketing/app/problem"
	"ticketing/app/text"
)

// MaxBodyBytes bounds every request body; the API's bodies are tiny.
const MaxBodyBytes = 64 << 10

// Bind decodes the JSON request body into v. It answers the client's
// mistakes (no JSON content type, malformed or oversize JSON, a value of the
// wrong type) with a problem.Invalid naming the field where there is one,
// never an internal error.
func Bind(c echo.Context, v any) error {
	r := c.Request()
	mt, _, _ := mime.ParseMediaType(r.Header.Get(echo.HeaderContentType))
	if mt != echo.MIMEApplicationJSON {
		return problem.New(problem.Invalid, "Content-Type must be application/json")
	}
	body, err := io.ReadAll(http.MaxBytesReader(c.Response(), r.Body, MaxBodyBytes))
	if err != nil {
		return decodeError(err)
	}
	// encoding/json would quietly turn invalid UTF-8 into U+FFFD; JSON
	// must be UTF-8 (RFC 8259), so such a body is refused as it is.
	if !utf8.Valid(body) {
		return problem.New(problem.Invalid, "Request body must be UTF-8 JSON")
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	if err := dec.Decode(v); err != nil {
		return decodeError(err)
	}
	if dec.More() {
		return problem.New(problem.Invalid, "Request body must be a single JSON object")
	}
	return nil
}

func decodeError(err error) error {
	var (
		typeErr *json.UnmarshalTypeError
		maxErr  *http.MaxBytesError
		syntax  *json.SyntaxError
	)
	switch {
	case errors.As(err, &typeErr) && typeErr.Field != "":
		field := typeErr.Field
		if i := strings.LastIndexByte(field, '.'); i >= 0 {
			field = field[i+1:]
		}
		return &problem.Error{Kind: problem.Invalid, Message: fmt.Sprintf("%s must be a %s", field, jsonType(typeErr.Type.Kind().String())),
			Fields: map[string]string{field: fmt.Sprintf("%s must be a %s", field, jsonType(typeErr.Type.Kind().String()))}}
	case errors.As(err, &typeErr):
		return problem.New(problem.Invalid, "Request body must be a JSON object")
	case errors.As(err, &maxErr):
		return problem.New(problem.Invalid, fmt.Sprintf("Request body must be at most %d bytes", maxErr.Limit))
	case errors.As(err, &syntax), errors.Is(err, io.ErrUnexpectedEOF):
		return problem.New(problem.Invalid, "Malformed JSON body")
	case errors.Is(err, io.EOF):
		return problem.New(problem.Invalid, "Request body is empty")
	}
	return problem.New(problem.Invalid, "Malformed JSON body")
}

func jsonType(kind string) string {
	switch kind {
	case "string":
		return "string"
	case "bool":
		return "boolean"
	case "slice", "array":
		return "list"
	case "map", "struct":
		return "object"
	}
	return "number"
}

// JSON writes v as the response body with the given status.
func JSON(c echo.Context, status int, v any) error {
	return c.JSON(status, v)
}

// RequireJSON rejects API requests that carry a body but are not declared as
// JSON. With SameSite cookies this keeps other sites' HTML forms, which cannot
// send application/json without a preflight, from posting to the API.
func RequireJSON(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		r := c.Request()
		if r.Method == http.MethodGet || r.Method == http.MethodHead || r.Method == http.MethodOptions {
			return next(c)
		}
		if r.ContentLength == 0 && r.Header.Get(echo.HeaderContentType) == "" {
			return next(c) // a bodiless POST or DELETE (signout, cancel)
		}
		mt, _, _ := mime.ParseMediaType(r.Header.Get(echo.HeaderContentType))
		if mt != echo.MIMEApplicationJSON {
			return problem.New(problem.Invalid, "Content-Type must be application/json")
		}
		return next(c)
	}
}

// Query parameter bounds: no page of ours takes more, or longer ones.
const (
	maxQueryBytes  = 4096
	maxQueryParams = 20
	maxQueryValue  = 1000 // characters
)

// BoundQuery refuses a request whose query string is too long, has too many
// parameters, or a name or value that is not clean text (text.Line), with
// a 400 or 422 naming the parameter; so no handler ever sees such a value.
func BoundQuery(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		raw := c.Request().URL.RawQuery
		if raw == "" {
			return next(c)
		}
		if len(raw) > maxQueryBytes {
			return problem.New(problem.Invalid, fmt.Sprintf("The query string must be at most %d bytes", maxQueryBytes))
		}
		q := c.QueryParams()
		n := 0
		for _, vs := range q {
			n += len(vs)
		}
		if n > maxQueryParams {
			return problem.New(problem.Invalid, fmt.Sprintf("At most %d query parameters", maxQueryParams))
		}
		for name, values := range q {
			if msg := text.Line("Parameter name", name, 64); msg != "" {
				// A name not fit to echo back as a field.
				return &problem.Error{Kind: problem.Invalid, Message: msg, Fields: map[string]string{"query": msg}}
			}
			for _, v := range values {
				if msg := text.Line(name, v, maxQueryValue); msg != "" {
					return &problem.Error{Kind: problem.Invalid, Message: msg, Fields: map[string]string{name: msg}}
				}
			}
		}
		return next(c)
	}
}

// Units formats integer cents as a JSON number in currency units, the
// seed's price format: 2000 → 20, 1050 → 10.5, 1055 → 10.55. It works on
// the integer, never through a float.
func Units(cents int64) json.Number {
	sign := ""
	if cents < 0 {
		sign, cents = "-", -cents
	}
	s := sign + strconv.FormatInt(cents/100, 10)
	if r := cents % 100; r != 0 {
		s += strings.TrimRight("."+strconv.FormatInt(100+r, 10)[1:], "0")
	}
	return json.Number(s)
}
