// Package problem is the one error type the modules use to say what went
// wrong in terms a user can act on. A store or handler returns a
// *problem.Error with a Kind; app/web maps each Kind to an HTTP status in one
// place. Any other error is internal: it is logged and the user sees a
// generic message.
package problem

import (
	"errors"
	"maps"
	"slices"
	"strings"
)

// Kind classifies an error for the user.
type Kind int

// The kinds. Their statuses follow the seed's contract (app/web).
const (
	Internal        Kind = iota // a bug or an outage; never shown in detail
	Invalid                     // the input is wrong; Fields says where
	NotFound                    // no such thing (or not yours to see)
	Conflict                    // the request clashes with the current state
	Unauthenticated             // sign in first
	Forbidden                   // signed in, but not allowed
	TooManyRequests             // slow down
	Unavailable                 // the service cannot take writes right now
	PaymentRequired             // the card was declined
)

// Error is an error with a kind, a message for the user and, for Invalid,
// a message per input field keyed by the form or JSON field name.
type Error struct {
	Kind    Kind
	Message string
	Fields  map[string]string
}

func (e *Error) Error() string {
	if len(e.Fields) == 0 {
		return e.Message
	}
	var b strings.Builder
	b.WriteString(e.Message)
	for _, f := range e.FieldNames() {
		b.WriteString("; " + f + ": " + e.Fields[f])
	}
	return b.String()
}

// FieldNames returns the names in Fields, sorted, so output is stable.
func (e *Error) FieldNames() []string {
	return slices.Sorted(maps.Keys(e.Fields))
}

// New returns an error of kind k with message msg.
func New(k Kind, msg string) *Error { return &Error{Kind: k, Message: msg} }

// Fields returns an Invalid error for the given field messages, or nil when
// fields is empty, so validation reads: `return problem.Fields(errs)`.
func Fields(fields map[string]string) error {
	if len(fields) == 0 {
		return nil
	}
	return &Error{Kind: Invalid, Message: "Please correct the highlighted fields", Fields: fields}
}

// KindOf returns the kind of err, Internal when it carries none.
func KindOf(err error) Kind {
	var e *Error
	if errors.As(err, &e) {
		return e.Kind
	}
	return Internal
}

// As returns the *Error inside err, if any.
func As(err error) (*Error, bool) {
	var e *Error
	ok := errors.As(err, &e)
	return e, ok
}

// FieldsOf returns the field messages inside err, nil when it has none.
func FieldsOf(err error) map[string]string {
	if e, ok := As(err); ok {
		return e.Fields
	}
	return nil
}
