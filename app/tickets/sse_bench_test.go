package tickets_test

import (
	"context"
	"net/http"
	"runtime"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"ticketing/app/apptest"
)

// BenchmarkIdleSSEClients opens 1,000 live list streams that stay idle and
// reports what each costs: heap and stacks, and goroutines. Client and
// server share the process, so the figures include both ends of each
// connection; the server's share is its handler goroutine and the watch
// goroutine per log, plus the connection's buffers.
func BenchmarkIdleSSEClients(b *testing.B) {
	const clients = 1000
	for range b.N {
		h := apptest.New(b)
		measure := func() (uint64, int) {
			runtime.GC()
			var m runtime.MemStats
			runtime.ReadMemStats(&m)
			return m.HeapInuse + m.StackInuse, runtime.NumGoroutine()
		}
		mem0, g0 := measure()
		ctx, cancel := context.WithCancel(context.Background())
		tr := &http.Transport{MaxConnsPerHost: 0, MaxIdleConnsPerHost: clients}
		cl := &http.Client{Transport: tr}
		for range clients {
			req, err := http.NewRequestWithContext(ctx, http.MethodGet, h.URL+"/tickets/stream", nil)
			require.NoError(b, err)
			resp, err := cl.Do(req)
			require.NoError(b, err)
			require.Equal(b, 200, resp.StatusCode)
			defer resp.Body.Close()
		}
		time.Sleep(100 * time.Millisecond) // let every handler reach its wait
		mem1, g1 := measure()
		b.ReportMetric(float64(mem1-mem0)/clients, "bytes/client")
		b.ReportMetric(float64(g1-g0)/clients, "goroutines/client")
		cancel()
	}
}
