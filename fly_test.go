package main

import (
	"fmt"
	"io/fs"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/BurntSushi/toml"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.yaml.in/yaml/v3"

	"ticketing/app"
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
		Metrics struct {
			Port int    `toml:"port"`
			Path string `toml:"path"`
		} `toml:"metrics"`
	}
	b, err := os.ReadFile("fly.toml")
	require.NoError(t, err)
	require.NoError(t, toml.Unmarshal(b, &fly))

	secrets := map[string]string{ // set with fly secrets, not in fly.toml
		"SESSION_SECRET": strings.Repeat("s", 32), "STRIPE_SECRET_KEY": "sk_live_x", "STRIPE_WEBHOOK_SECRET": "whsec_x",
		"SMTP_URL": "smtps://user:pass@smtp.example.com",
	}
	cfg, err := loadConfig(func(k string) string {
		if v, ok := secrets[k]; ok {
			return v
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
	assert.Equal(t, "Fly-Client-IP", cfg.TrustedProxyHeader, "client IPs from Fly's proxy header")
	_, metricsPort, err := net.SplitHostPort(cfg.MetricsAddr)
	require.NoError(t, err)
	assert.Equal(t, metricsPort, strconv.Itoa(fly.Metrics.Port), "Fly scrapes METRICS_ADDR's port")
	assert.Equal(t, "/metrics", fly.Metrics.Path)
	assert.LessOrEqual(t, fly.KillTimeout, 5)

	require.NotEmpty(t, fly.HTTPService.Checks)
	h := apptest.New(t)
	for _, c := range fly.HTTPService.Checks {
		resp := h.Client(t).Do(t, http.MethodGet, c.Path, nil)
		resp.Body.Close()
		assert.Equal(t, http.StatusOK, resp.StatusCode, c.Path)
	}
}

// The container's entrypoint, started as root (as Fly starts it, with the
// volume owned by root), gives DATA_DIR to the app's user and runs the
// server as that user.
func TestEntrypointRunsTheServerAsTheAppUser(t *testing.T) {
	_, bin, data := entrypointDirs(t)
	nobody, err := user.Lookup("nobody")
	require.NoError(t, err)

	srv := startCommand(t, exec.Command("sh", "deploy/entrypoint.sh"), data,
		"TICKETING_BIN="+bin, "TICKETING_USER=nobody")
	signUp(t, srv, "first@example.com")

	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", srv.cmd.Process.Pid))
	require.NoError(t, err)
	assert.Regexp(t, `(?m)^Uid:\s+`+nobody.Uid+`\s+`+nobody.Uid+`\s`, string(status), "the server runs as the app's user")
	srv.stop(t)

	n := 0
	require.NoError(t, filepath.WalkDir(data, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		assert.Equal(t, nobody.Uid, strconv.Itoa(int(info.Sys().(*syscall.Stat_t).Uid)), "%s belongs to the app's user", path)
		n++
		return nil
	}))
	assert.Greater(t, n, 5, "the module files were written")
}

// RESTORE=latest makes the entrypoint restore every module from the
// replica before it serves, once: a restart with the same value serves
// the files as they are.
func TestEntrypointRestoresOnce(t *testing.T) {
	root, bin, data := entrypointDirs(t)
	replica := filepath.Join(root, "replica")
	require.NoError(t, os.Mkdir(replica, 0o777))
	require.NoError(t, os.Chmod(replica, 0o777))
	env := []string{"TICKETING_BIN=" + bin, "TICKETING_USER=nobody", "LITESTREAM_REPLICA_URL=file://" + replica}
	srv := startCommand(t, exec.Command("sh", "deploy/entrypoint.sh"), data, env...)
	signUp(t, srv, "first@example.com")
	waitInSync(t, srv.Internal)
	srv.stop(t)

	replaced := func() int {
		m, err := filepath.Glob(filepath.Join(data, "*.db.replaced-*Z")) // not their -wal and -shm
		require.NoError(t, err)
		return len(m)
	}
	env = append(env, "RESTORE=latest")
	srv = startCommand(t, exec.Command("sh", "deploy/entrypoint.sh"), data, env...)
	srv.stop(t)
	assert.Equal(t, len(app.Modules), replaced(), "every module file restored, the old ones kept aside")
	done, err := os.ReadFile(filepath.Join(data, ".restore-done"))
	require.NoError(t, err)
	assert.Equal(t, "latest\n", string(done))

	srv = startCommand(t, exec.Command("sh", "deploy/entrypoint.sh"), data, env...)
	c := apptest.NewClient(t, srv.URL)
	s, err := c.Try(http.MethodPost, "/api/users/signin", map[string]string{"email": "first@example.com", "password": "password"}, nil)
	require.NoError(t, err)
	assert.Equal(t, http.StatusOK, s, "the restored files serve")
	srv.stop(t)
	assert.Equal(t, len(app.Modules), replaced(), "a restart with the same RESTORE does not restore again")
}

// entrypointDirs makes a directory the app's user (nobody) can reach
// (t.TempDir's are root's alone) with a copy of the binary and an empty
// data directory owned by root, like a fresh volume. It skips unless the
// test runs as root, as the container starts.
func entrypointDirs(t *testing.T) (root, bin, data string) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root, as the container starts")
	}
	if _, err := exec.LookPath("setpriv"); err != nil {
		t.Skip("no setpriv")
	}
	root, err := os.MkdirTemp("", "ticketing-entrypoint-*")
	require.NoError(t, err)
	t.Cleanup(func() { os.RemoveAll(root) })
	require.NoError(t, os.Chmod(root, 0o755))
	bin = filepath.Join(root, "ticketing")
	b, err := os.ReadFile(binary(t))
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(bin, b, 0o755))
	data = filepath.Join(root, "data")
	require.NoError(t, os.Mkdir(data, 0o755))
	return root, bin, data
}

// The image's DATA_DIR is where fly.toml mounts the volume.
func TestDockerfileDataDirIsTheVolume(t *testing.T) {
	b, err := os.ReadFile("Dockerfile")
	require.NoError(t, err)
	var fly struct {
		Mounts []struct{ Destination string } `toml:"mounts"`
	}
	_, err = toml.DecodeFile("fly.toml", &fly)
	require.NoError(t, err)
	require.Len(t, fly.Mounts, 1)
	assert.Regexp(t, `(?m)^ENV .*\bDATA_DIR=`+regexp.QuoteMeta(fly.Mounts[0].Destination)+`(\s|$)`, string(b))
	assert.Regexp(t, `(?m)^ENTRYPOINT \["/usr/local/bin/entrypoint"\]`, string(b))
	assert.Contains(t, string(b), "COPY deploy/entrypoint.sh /usr/local/bin/entrypoint")
}

// The cluster image: its DATA_DIR is LiteFS's mount, its LiteFS version the
// one CI tests, and its litefs.yml runs the server with no LiteFS proxy
// (the server forwards writes itself) and only primary-region candidates.
func TestLiteFSDeployment(t *testing.T) {
	var cfg struct {
		FUSE struct {
			Dir        string `yaml:"dir"`
			AllowOther bool   `yaml:"allow-other"`
		} `yaml:"fuse"`
		Lease struct {
			Type      string `yaml:"type"`
			Candidate string `yaml:"candidate"`
			Hostname  string `yaml:"hostname"`
		} `yaml:"lease"`
		Proxy map[string]any      `yaml:"proxy"`
		Exec  []map[string]string `yaml:"exec"`
	}
	raw, err := os.ReadFile("deploy/litefs.yml")
	require.NoError(t, err)
	require.NoError(t, yaml.Unmarshal(raw, &cfg))
	assert.Equal(t, "consul", cfg.Lease.Type)
	assert.Equal(t, "${FLY_REGION == PRIMARY_REGION}", cfg.Lease.Candidate)
	assert.Equal(t, "${FLY_MACHINE_ID}", cfg.Lease.Hostname, "fly-replay names the primary by machine id")
	assert.True(t, cfg.FUSE.AllowOther, "the server runs as another user than LiteFS")
	assert.Nil(t, cfg.Proxy)
	require.Len(t, cfg.Exec, 1)
	assert.Contains(t, cfg.Exec[0]["cmd"], "/usr/local/bin/ticketing")

	docker, err := os.ReadFile("Dockerfile.litefs")
	require.NoError(t, err)
	assert.Regexp(t, `(?m)^ENV .*\bDATA_DIR=`+regexp.QuoteMeta(cfg.FUSE.Dir)+`(\s|$)`, string(docker))
	assert.Regexp(t, `(?m)^ENV .*\bLITEFS=on\b`, string(docker))
	ci, err := os.ReadFile(".ci/run")
	require.NoError(t, err)
	pin := regexp.MustCompile(`github.com/superfly/litefs/cmd/litefs@v[0-9.]+`)
	assert.Equal(t, pin.FindString(string(ci)), pin.FindString(string(docker)), "the image ships the LiteFS that CI tests")
}
