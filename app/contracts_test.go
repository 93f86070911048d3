package app_test

import (
	"encoding/json"
	"reflect"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"ticketing/app/apptest"
)

// Modules never import each other, so each consumer declares the payload
// of every event it reads. Every such declaration holds to the
// publisher's: a publisher's payload with every field set decodes into
// the consumer's, and each field the consumer reads arrives, under its
// JSON name, with the value the publisher sent. A field renamed, dropped
// or retyped on either side fails here, not in production.
func TestEventPayloadsHoldTogether(t *testing.T) {
	t.Parallel()
	a := apptest.Open(t)
	contracts := a.Bus.Contracts()
	require.NotEmpty(t, contracts)
	for _, c := range contracts {
		t.Run(c.Source+" "+c.Type+" to "+c.Consumer, func(t *testing.T) {
			require.NotNil(t, c.Published, "the %s module declares no payload for %s (events.Publishes)", c.Source, c.Type)
			require.NotNil(t, c.Consumed, "%s handles %s without declaring its payload (events.Handle)", c.Consumer, c.Type)
			sample := reflect.New(c.Published).Elem()
			fill(sample, c.Published.Name())
			sent, err := json.Marshal(sample.Interface())
			require.NoError(t, err)

			got := reflect.New(c.Consumed)
			require.NoError(t, json.Unmarshal(sent, got.Interface()), "%s's %s decodes into %s's declaration", c.Source, c.Type, c.Consumer)
			read, err := json.Marshal(got.Elem().Interface())
			require.NoError(t, err)
			var published, consumed map[string]any
			require.NoError(t, json.Unmarshal(sent, &published))
			require.NoError(t, json.Unmarshal(read, &consumed))
			holds(t, "", consumed, published)
		})
	}
}

// holds checks that every field of consumed is in published with the same
// value.
func holds(t *testing.T, path string, consumed, published map[string]any) {
	t.Helper()
	for k, v := range consumed {
		p, ok := published[k]
		if !assert.True(t, ok, "%s%s is read but not published", path, k) {
			continue
		}
		if m, isMap := v.(map[string]any); isMap {
			pm, _ := p.(map[string]any)
			holds(t, path+k+".", m, pm)
			continue
		}
		assert.Equal(t, p, v, "%s%s", path, k)
	}
}

// fill sets every field of v to a value that is not its zero, distinct by
// name where it can be.
func fill(v reflect.Value, name string) {
	if v.Type() == reflect.TypeFor[time.Time]() {
		v.Set(reflect.ValueOf(time.Date(2027, 6, 12, 18, 0, 0, 0, time.UTC)))
		return
	}
	switch v.Kind() {
	case reflect.String:
		v.SetString("x-" + name)
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		v.SetInt(int64(7 + len(name)))
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		v.SetUint(uint64(7 + len(name)))
	case reflect.Float32, reflect.Float64:
		v.SetFloat(float64(7 + len(name)))
	case reflect.Bool:
		v.SetBool(true)
	case reflect.Struct:
		for i := range v.NumField() {
			if v.Type().Field(i).IsExported() {
				fill(v.Field(i), v.Type().Field(i).Name)
			}
		}
	case reflect.Pointer:
		v.Set(reflect.New(v.Type().Elem()))
		fill(v.Elem(), name)
	case reflect.Slice:
		v.Set(reflect.MakeSlice(v.Type(), 1, 1))
		fill(v.Index(0), name)
	}
}
