package apptest

import (
	"fmt"
	"net"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"ticketing/app"
	"ticketing/app/cluster"
	"ticketing/db"
)

// newOnCluster runs the suites against a LiteFS cluster: with
// APPTEST_LITEFS=replica (or primary) every Harness is two apps in this
// process, each over its own real LiteFS mount (static lease), the
// primary's writing, the replica's forwarding writes to it, and the
// Harness's URL is the replica's (or the primary's). Harness.App is the
// primary's, so what a test does through the stores, the bus or the
// workers happens where it would in production. A test that picks its
// own data directory (a restart on the same files) runs on plain files:
// it returns nil then.
func newOnCluster(t testing.TB, node string, opts []Option) *Harness {
	t.Helper()
	if node != "replica" && node != "primary" {
		t.Fatalf("APPTEST_LITEFS=%q: want replica or primary", node)
	}
	var probe app.Config
	for _, o := range opts {
		o(&probe)
	}
	if probe.DataDir != "" {
		return nil
	}
	litefs, err := FindLiteFS()
	if err == nil {
		err = CanMountFUSE()
	}
	require.NoError(t, err, "APPTEST_LITEFS needs LiteFS")
	c, err := StartCluster(ClusterOptions{Dir: t.TempDir(), Nodes: 2, LiteFS: litefs, MountOnly: true})
	require.NoError(t, err)
	t.Cleanup(c.Close)

	pick := 0
	if node == "replica" {
		pick = 1
	}
	// Every node has the one public address (BASE_URL), as behind Fly's
	// proxy: the links in mail and the checkout's redirects point there.
	public := "http://" + c.Nodes[pick].Addr
	var apps []*app.App
	var cfgs []app.Config
	var servers []*httptest.Server
	var internals []string
	for _, n := range c.Nodes {
		ln, err := net.Listen("tcp", n.Addr) // the lease names this address
		require.NoError(t, err)
		srv := httptest.NewUnstartedServer(nil)
		srv.Listener.Close()
		srv.Listener = ln
		cfg := config(t, append([]Option{func(c *app.Config) { c.BaseURL = public }}, opts...))
		cfg.DataDir = n.Mount
		cfg.Cluster = &cluster.Config{Mount: db.LiteFS{Dir: n.Mount}, Logger: cfg.Logger}
		a, internal := serve(t, srv, cfg)
		apps, cfgs, servers, internals = append(apps, a), append(cfgs, cfg), append(servers, srv), append(internals, internal)
		if len(apps) == 1 {
			// The replica opens the files the primary has made.
			require.Eventually(t, a.Node.IsPrimary, 10*time.Second, 5*time.Millisecond)
		}
	}
	primary, replica := db.LiteFS{Dir: c.Nodes[0].Mount}, db.LiteFS{Dir: c.Nodes[1].Mount}
	return &Harness{App: apps[0], Config: cfgs[0], URL: servers[pick].URL, Server: servers[pick], Internal: internals[0],
		caughtUp: func() error { return caughtUpWith(primary, replica) }, others: apps[1:]}
}

// caughtUpWith waits until every module file on replica has what it has
// on primary: what a test wrote through the primary's stores, or another
// client's writes, which no positions cookie tells this one about.
func caughtUpWith(primary, replica db.LiteFS) error {
	deadline := time.Now().Add(10 * time.Second)
	for {
		behind := ""
		for _, name := range app.Modules {
			want, err1 := primary.Position(name)
			got, err2 := replica.Position(name)
			if err1 != nil || err2 != nil || got < want {
				behind = name
				break
			}
		}
		if behind == "" {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("the replica's %s.db did not catch up with the primary's in 10s", behind)
		}
		time.Sleep(500 * time.Microsecond)
	}
}
