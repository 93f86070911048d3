package db

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/benbjohnson/litestream/file"
	"github.com/benbjohnson/litestream/s3"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The S3 replica takes everything Fly's object storage sets from the
// configuration's getenv, not from whatever the process environment holds.
func TestS3ReplicaTakesItsSettingsFromGetenv(t *testing.T) {
	t.Setenv("AWS_ACCESS_KEY_ID", "key-from-the-process")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "secret-from-the-process")
	t.Setenv("AWS_CA_BUNDLE", "")
	env := map[string]string{
		"BUCKET_NAME":           "shop-backups",
		"AWS_ENDPOINT_URL_S3":   "http://127.0.0.1:9",
		"AWS_REGION":            "auto",
		"AWS_ACCESS_KEY_ID":     "key-from-config",
		"AWS_SECRET_ACCESS_KEY": "secret-from-config",
	}
	r, err := NewReplication("s3:///ticketing", func(k string) string { return env[k] }, nil)
	require.NoError(t, err)
	c, err := r.client(context.Background(), "orders")
	require.NoError(t, err)
	sc, ok := c.(*s3.ReplicaClient)
	require.True(t, ok, "%T", c)
	assert.Equal(t, "shop-backups", sc.Bucket)
	assert.Equal(t, "ticketing/orders", sc.Path)
	assert.Equal(t, "http://127.0.0.1:9", sc.Endpoint)
	assert.Equal(t, "auto", sc.Region)
	assert.Equal(t, "key-from-config", sc.AccessKeyID)
	assert.Equal(t, "secret-from-config", sc.SecretAccessKey)
}

func TestReplicaURLErrors(t *testing.T) {
	none := func(string) string { return "" }
	for raw, want := range map[string]string{
		"s3:///ticketing":   "no bucket",
		"file://relative/x": "absolute path",
		"gs://bucket/x":     `scheme "gs"`,
	} {
		_, err := NewReplication(raw, none, nil)
		assert.ErrorContains(t, err, want, raw)
	}
}

// A replica path is used as it is: Litestream does not unescape it, so an
// escaped path would put the backups somewhere else than configured.
func TestReplicaPathIsNotEscaped(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "backups (1)")
	r, err := NewReplication("file://"+dir, func(string) string { return "" }, nil)
	require.NoError(t, err)
	c, err := r.client(context.Background(), "orders")
	require.NoError(t, err)
	assert.Equal(t, filepath.Join(dir, "orders"), c.(*file.ReplicaClient).Path())
}
