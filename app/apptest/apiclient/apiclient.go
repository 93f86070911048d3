// Package apiclient sends JSON requests to the Ticketing API, for the test
// harness, the fault drills and the flash-sale load command.
package apiclient

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
)

// Do sends body (when non-nil) as JSON to url and, on a 2xx answer with a
// body, decodes it into out (when non-nil). It returns the status;
// transport errors are returned, not hidden, since drills kill the server
// mid-request.
func Do(c *http.Client, method, url string, body, out any) (int, error) {
	var r io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return 0, err
		}
		r = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, url, r)
	if err != nil {
		return 0, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, err
	}
	if out != nil && len(b) > 0 && resp.StatusCode < 300 {
		if err := json.Unmarshal(b, out); err != nil {
			return resp.StatusCode, err
		}
	}
	return resp.StatusCode, nil
}
