package events

import (
	"context"
	"fmt"
	"reflect"
	"sort"

	"ticketing/db"
)

// Modules never import each other, so each consumer declares the payload
// of the events it reads, and the publisher declares its own. Handle and
// Publishes record both declarations, and Contracts pairs them, so that a
// test can hold every consumer's copy to the publisher's.

// Handle registers h for source's events of type typ, each payload decoded
// into a T first: T is the consumer's declaration of that payload.
func Handle[T any](c *Consumers, source, typ string, h func(ctx context.Context, tx *db.Tx, e Event, p T) error) {
	c.declare(source, typ, reflect.TypeFor[T]())
	c.Handle(source, typ, func(ctx context.Context, tx *db.Tx, e Event) error {
		var p T
		if err := e.Decode(&p); err != nil {
			return fmt.Errorf("decode %s: %w", e.Type, err)
		}
		return h(ctx, tx, e, p)
	})
}

// Publishes declares T as the payload of the events of type typ that l's
// module appends.
func Publishes[T any](l *Log, typ string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.payloads == nil {
		l.payloads = map[string]reflect.Type{}
	}
	l.payloads[typ] = reflect.TypeFor[T]()
}

func (c *Consumers) declare(source, typ string, t reflect.Type) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.payloads == nil {
		c.payloads = map[string]map[string]reflect.Type{}
	}
	if c.payloads[source] == nil {
		c.payloads[source] = map[string]reflect.Type{}
	}
	c.payloads[source][typ] = t
}

// Contract is one consumer's declaration of one event type's payload
// beside the publisher's (nil Published: the publisher declares none; nil
// Consumed: the handler was registered without one, through
// Consumers.Handle).
type Contract struct {
	Source, Type, Consumer string
	Published, Consumed    reflect.Type
}

// Contracts lists every declared consumer payload with its publisher's,
// by source, type and consumer.
func (b *Bus) Contracts() []Contract {
	var out []Contract
	for _, c := range b.allConsumers() {
		c.mu.Lock()
		for source, types := range c.handlers {
			var published map[string]reflect.Type
			if l, ok := b.log(source); ok {
				l.mu.Lock()
				published = l.payloads
				l.mu.Unlock()
			}
			for typ := range types {
				out = append(out, Contract{Source: source, Type: typ, Consumer: c.db.Name, Published: published[typ], Consumed: c.payloads[source][typ]})
			}
		}
		c.mu.Unlock()
	}
	sort.Slice(out, func(i, j int) bool {
		a, b := out[i], out[j]
		if a.Source != b.Source {
			return a.Source < b.Source
		}
		if a.Type != b.Type {
			return a.Type < b.Type
		}
		return a.Consumer < b.Consumer
	})
	return out
}
