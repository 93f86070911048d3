package apptest

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"ticketing/db"
)

// LiteFS clusters on one machine, for the cluster tests and the flash-sale
// benchmark: each node is a real `litefs mount` (FUSE, github.com/superfly/
// litefs v0.5.14) of its own directory and the real server binary over
// it, all on 127.0.0.1. A node's lease hostname is its server's address,
// so a replica proxies writes to http://<.primary>.

// ClusterOptions describe a local cluster.
type ClusterOptions struct {
	Dir    string // each node gets Dir/nodeN
	Nodes  int
	LiteFS string // the litefs binary
	Server string // the server binary
	// Consul is the lease's Consul URL; empty is a static lease with node
	// 0 the primary. With Consul, the first Candidates nodes may lead.
	Consul     string
	Candidates int
	LeaseTTL   time.Duration // Consul session TTL (default 2 s)
	Env        []string      // added to every server's environment
	// MountOnly mounts the nodes and starts no server: the caller runs
	// the app over each mount (in process, APPTEST_LITEFS).
	MountOnly bool
}

// Cluster is a running local cluster.
type Cluster struct {
	Nodes []*Node
	opts  ClusterOptions
}

// Node is one machine of a local cluster.
type Node struct {
	Name      string
	Dir       string // node's own: mount, LiteFS data, Litestream state
	Mount     string
	Addr      string // the server's address, and the node's lease hostname
	URL       string
	Internal  string // /metrics and the detailed /healthz
	Candidate bool
	LiteFSLog *LogBuffer
	Log       *LogBuffer

	lfsPort          int
	lfs, app         *exec.Cmd
	lfsDone, appDone chan error
}

// FindLiteFS returns the litefs binary: on PATH, or where `go install`
// puts it.
func FindLiteFS() (string, error) {
	if p, err := exec.LookPath("litefs"); err == nil {
		return p, nil
	}
	gopath, err := exec.Command("go", "env", "GOPATH").Output()
	if err == nil {
		p := filepath.Join(strings.TrimSpace(string(gopath)), "bin", "litefs")
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
	}
	return "", errors.New("litefs is not installed (go install github.com/superfly/litefs/cmd/litefs@v0.5.14)")
}

// CanMountFUSE says why this machine cannot run LiteFS, or nil.
func CanMountFUSE() error {
	if os.Geteuid() != 0 {
		return errors.New("LiteFS mounts need root")
	}
	if _, err := os.Stat("/dev/fuse"); err != nil {
		return errors.New("no /dev/fuse")
	}
	if _, err := exec.LookPath("fusermount3"); err != nil {
		return errors.New("no fusermount3 (apt-get install fuse3)")
	}
	return nil
}

// StartCluster mounts every node's LiteFS and starts the servers, the
// primary's first (it creates the files the replicas wait for).
func StartCluster(o ClusterOptions) (_ *Cluster, err error) {
	if o.LeaseTTL == 0 {
		o.LeaseTTL = 2 * time.Second
	}
	c := &Cluster{opts: o}
	defer func() {
		if err != nil {
			c.Close()
		}
	}()
	for i := range o.Nodes {
		n := &Node{Name: fmt.Sprintf("node%d", i), Dir: filepath.Join(o.Dir, fmt.Sprintf("node%d", i))}
		n.Mount = filepath.Join(n.Dir, "mnt")
		n.Addr = fmt.Sprintf("127.0.0.1:%d", port())
		n.URL = "http://" + n.Addr
		n.lfsPort = port()
		n.Candidate = o.Consul == "" && i == 0 || o.Consul != "" && i < o.Candidates
		c.Nodes = append(c.Nodes, n)
	}
	for _, n := range c.Nodes {
		if err := c.mount(n); err != nil {
			return nil, err
		}
		if n == c.Nodes[0] {
			if err := c.waitPrimary(n, 15*time.Second); err != nil {
				return nil, err
			}
		}
	}
	for _, n := range c.Nodes {
		if o.MountOnly {
			break
		}
		if err := c.StartServer(n); err != nil {
			return nil, err
		}
	}
	return c, nil
}

// port returns a free port on 127.0.0.1.
func port() int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// mount writes the node's litefs.yml and runs litefs on it.
func (c *Cluster) mount(n *Node) error {
	httpPort := n.lfsPort
	for _, d := range []string{n.Mount, filepath.Join(n.Dir, "litefs")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return err
		}
	}
	lease := ""
	if c.opts.Consul == "" {
		primary := c.Nodes[0]
		lease = fmt.Sprintf("lease:\n  type: static\n  candidate: %t\n  hostname: %q\n  advertise-url: %q\n",
			n == primary, primary.Addr, fmt.Sprintf("http://127.0.0.1:%d", primary.lfsPort))
	} else {
		lease = fmt.Sprintf("lease:\n  type: consul\n  candidate: %t\n  hostname: %q\n  advertise-url: \"http://127.0.0.1:%d\"\n"+
			"  consul:\n    url: %q\n    key: \"ticketing/primary\"\n    ttl: %q\n    lock-delay: \"0s\"\n",
			n.Candidate, n.Addr, httpPort, c.opts.Consul, c.opts.LeaseTTL.String())
	}
	cfg := fmt.Sprintf("fuse:\n  dir: %q\ndata:\n  dir: %q\nhttp:\n  addr: \"127.0.0.1:%d\"\nexit-on-error: false\n%s",
		n.Mount, filepath.Join(n.Dir, "litefs"), httpPort, lease)
	path := filepath.Join(n.Dir, "litefs.yml")
	if err := os.WriteFile(path, []byte(cfg), 0o644); err != nil {
		return err
	}
	n.LiteFSLog = &LogBuffer{}
	n.lfs = exec.Command(c.opts.LiteFS, "mount", "-config", path)
	n.lfs.Stdout, n.lfs.Stderr = n.LiteFSLog, n.LiteFSLog
	if err := n.lfs.Start(); err != nil {
		return fmt.Errorf("litefs mount: %w", err)
	}
	n.lfsDone = make(chan error, 1)
	go func() { n.lfsDone <- n.lfs.Wait() }()
	deadline := time.Now().Add(15 * time.Second)
	for {
		if _, err := os.Stat(filepath.Join(n.Mount, ".lag")); err == nil {
			return nil
		}
		select {
		case err := <-n.lfsDone:
			n.lfsDone <- err
			return fmt.Errorf("litefs on %s exited: %v\n%s", n.Name, err, n.LiteFSLog)
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("litefs on %s did not mount in 15s:\n%s", n.Name, n.LiteFSLog)
		}
	}
}

// waitPrimary waits until n's mount says it is the primary.
func (c *Cluster) waitPrimary(n *Node, within time.Duration) error {
	deadline := time.Now().Add(within)
	for time.Now().Before(deadline) {
		if n.IsPrimary() {
			return nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	return fmt.Errorf("%s did not become the primary in %s:\n%s", n.Name, within, n.LiteFSLog)
}

// StartServer runs the server binary over n's mount and waits until it
// listens.
func (c *Cluster) StartServer(n *Node) error {
	cmd := exec.Command(c.opts.Server)
	cmd.Env = append(os.Environ(), "ADDR="+n.Addr, "METRICS_ADDR=127.0.0.1:0", "DATA_DIR="+n.Mount,
		"BASE_URL="+n.URL, "SESSION_SECRET="+strings.Repeat("c", 32), "LITEFS=on",
		"LITESTREAM_STATE_DIR="+filepath.Join(n.Dir, "litestream"))
	cmd.Env = append(cmd.Env, c.opts.Env...)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return err
	}
	n.Log = &LogBuffer{}
	cmd.Stderr = n.Log
	if err := cmd.Start(); err != nil {
		return err
	}
	n.app, n.appDone = cmd, make(chan error, 1)
	lines := bufio.NewReader(stdout)
	n.Internal = ""
	ready := make(chan error, 1)
	go func() {
		for {
			line, err := lines.ReadString('\n')
			if err != nil {
				ready <- err
				return
			}
			if u, ok := strings.CutPrefix(strings.TrimSpace(line), "ticketing: internal on "); ok {
				n.Internal = u
			}
			if strings.HasPrefix(line, "ticketing: listening on ") {
				ready <- nil
				io.Copy(io.Discard, lines)
				return
			}
		}
	}()
	select {
	case err = <-ready:
	case <-time.After(30 * time.Second):
		err = errors.New("not listening after 30s")
	}
	if err != nil {
		cmd.Process.Kill()
		cmd.Wait()
		n.app = nil
		return fmt.Errorf("the server on %s: %v:\n%s\nlitefs:\n%s", n.Name, err, n.Log, n.LiteFSLog)
	}
	go func() { n.appDone <- cmd.Wait() }()
	return nil
}

// Pid is the process id of n's server.
func (n *Node) Pid() int {
	if n.app == nil {
		return 0
	}
	return n.app.Process.Pid
}

// IsPrimary reports whether n's mount says it holds the lease.
func (n *Node) IsPrimary() bool {
	leading, _, err := db.LiteFS{Dir: n.Mount}.Role()
	return err == nil && leading
}

// Kill is the machine dying: SIGKILL to its server and its LiteFS, and
// the dead mount taken away.
func (c *Cluster) Kill(n *Node) {
	if n.app != nil {
		n.app.Process.Signal(syscall.SIGKILL)
		<-n.appDone
		n.app = nil
	}
	if n.lfs != nil {
		n.lfs.Process.Signal(syscall.SIGKILL)
		<-n.lfsDone
		n.lfs = nil
	}
	exec.Command("fusermount3", "-uz", n.Mount).Run()
}

// StopServer stops n's server gracefully (SIGTERM), leaving its mount.
func (c *Cluster) StopServer(n *Node) error {
	if n.app == nil {
		return nil
	}
	n.app.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-n.appDone:
		n.app = nil
		return err
	case <-time.After(10 * time.Second):
		return fmt.Errorf("the server on %s did not stop in 10s", n.Name)
	}
}

// Close stops every server and unmounts every node.
func (c *Cluster) Close() {
	for _, n := range c.Nodes {
		if n.app != nil {
			n.app.Process.Kill()
			<-n.appDone
			n.app = nil
		}
	}
	for _, n := range c.Nodes {
		if n.lfs != nil {
			n.lfs.Process.Signal(syscall.SIGTERM)
			select {
			case <-n.lfsDone:
			case <-time.After(5 * time.Second):
				n.lfs.Process.Kill()
				<-n.lfsDone
			}
			n.lfs = nil
		}
		exec.Command("fusermount3", "-uz", n.Mount).Run()
	}
}
