package main

import (
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/BurntSushi/toml"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"ticketing/app/apptest"
)

// fly.toml agrees with the program: the volume is mounted where DATA_DIR
// points, Fly sends traffic to the port ADDR listens on, and the health
// check asks a path that answers 200.
func TestFlyConfig(t *testing.T) {
	var fly struct {
		KillSignal  string            `toml:"kill_signal"`
		KillTimeout int               `toml:"kill_timeout"`
		Env         map[string]string `toml:"env"`
		Mounts      []struct {
			Source      string `toml:"source"`
			Destination string `toml:"destination"`
		} `toml:"mounts"`
		HTTPService struct {
			InternalPort int `toml:"internal_port"`
			Checks       []struct {
				Path   string `toml:"path"`
				Method string `toml:"method"`
			} `toml:"checks"`
		} `toml:"http_service"`
	}
	b, err := os.ReadFile("fly.toml")
	require.NoError(t, err)
	require.NoError(t, toml.Unmarshal(b, &fly))

	cfg, err := loadConfig(func(k string) string {
		if k == "SESSION_SECRET" {
			return strings.Repeat("s", 32)
		}
		return fly.Env[k]
	})
	require.NoError(t, err, "fly.toml's env is a valid configuration")
	require.Len(t, fly.Mounts, 1)
	assert.Equal(t, cfg.DataDir, fly.Mounts[0].Destination, "the volume holds DATA_DIR")
	_, port, err := net.SplitHostPort(cfg.Addr)
	require.NoError(t, err)
	assert.Equal(t, port, strconv.Itoa(fly.HTTPService.InternalPort), "Fly's internal port is ADDR's")
	assert.Equal(t, "SIGINT", fly.KillSignal)
	assert.LessOrEqual(t, fly.KillTimeout, 5)

	require.NotEmpty(t, fly.HTTPService.Checks)
	h := apptest.New(t)
	for _, c := range fly.HTTPService.Checks {
		resp := h.Client(t).Do(t, http.MethodGet, c.Path, nil)
		resp.Body.Close()
		assert.Equal(t, http.StatusOK, resp.StatusCode, c.Path)
	}
}
