// Package apiclient sends JSON requests to the Ticketing API, for the test
// harness, the fault drills and the flash-sale load command.
package apiclient

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
)

// Do sends body (when non-nil) as JSON to url and decodes the answer's
// body into out (when non-nil): a 2xx must decode, an error's body is
// decoded when it fits. It returns the status;
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
	if out != nil && len(b) > 0 {
		// A success must decode; an error's {"errors": [...]} decodes
		// into an out that has room for it (and is left alone otherwise).
		if err := json.Unmarshal(b, out); err != nil && resp.StatusCode < 300 {
			return resp.StatusCode, err
		}
	}
	return resp.StatusCode, nil
}
