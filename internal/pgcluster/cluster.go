// Package pgcluster runs a throwaway PostgreSQL server from the machine's own
// binaries (initdb, postgres). `web dev`, the test harness and the benchmark
// use it. The server listens on a Unix socket only, and dies with the process
// that started it, so no orphan postgres is left behind.
package pgcluster

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"runtime"
	"strconv"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
)

// ErrNoBinaries means initdb/postgres were not found.
var ErrNoBinaries = errors.New("PostgreSQL server binaries (initdb, postgres) not found: install them (Debian: apt-get install postgresql) or set DATABASE_URL")

// SuperUser is the cluster's superuser role.
const SuperUser = "postgres"

// Options configure a cluster.
type Options struct {
	// DataDir holds the cluster; it is created and initialised when empty.
	DataDir string
	// Fast trades durability for speed (fsync off): for tests only.
	Fast bool
	// Settings are extra "name=value" server settings.
	Settings []string
	// Logger receives progress messages; nil discards them.
	Logger *slog.Logger
	// SocketDir, when set, is where the Unix socket lives (kept across
	// restarts); otherwise a fresh short temp dir is used and removed at Stop.
	SocketDir string
}

// Cluster is a running PostgreSQL server.
type Cluster struct {
	dataDir      string
	socketDir    string
	ownSocketDir bool
	cmd          *exec.Cmd
	exited       chan struct{}
	waitErr      error
	logger       *slog.Logger
}

// FindBinDir locates the directory holding initdb and postgres.
func FindBinDir() (string, error) {
	if p, err := exec.LookPath("initdb"); err == nil {
		dir := filepath.Dir(p)
		if _, err := os.Stat(filepath.Join(dir, "postgres")); err == nil {
			return dir, nil
		}
	}
	matches, _ := filepath.Glob("/usr/lib/postgresql/*/bin/initdb")
	if len(matches) > 0 {
		return filepath.Dir(matches[len(matches)-1]), nil // the newest version (sorted by name)
	}
	return "", ErrNoBinaries
}

// Start initialises DataDir if needed and starts the server.
func Start(ctx context.Context, opts Options) (*Cluster, error) {
	logger := opts.Logger
	if logger == nil {
		logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	bin, err := FindBinDir()
	if err != nil {
		return nil, err
	}
	runAs, err := serverUser()
	if err != nil {
		return nil, err
	}
	dataDir, err := filepath.Abs(opts.DataDir)
	if err != nil {
		return nil, fmt.Errorf("data dir: %w", err)
	}
	if runAs.root && !Reachable(dataDir) {
		return nil, fmt.Errorf("the postgres user cannot reach %s (a parent folder is not searchable by others); choose another folder", dataDir)
	}
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		return nil, fmt.Errorf("create data dir: %w", err)
	}
	if fi, err := os.Lstat(dataDir); err != nil || !fi.IsDir() {
		return nil, fmt.Errorf("data dir %s is not a plain directory (a symbolic link?); refusing to use it", dataDir)
	}
	if err := chownTo(dataDir, runAs); err != nil {
		return nil, err
	}
	if _, err := os.Stat(filepath.Join(dataDir, "PG_VERSION")); errors.Is(err, os.ErrNotExist) {
		logger.Info("initialising PostgreSQL cluster", "dir", dataDir)
		cmd := exec.CommandContext(ctx, filepath.Join(bin, "initdb"),
			"-D", dataDir, "-U", SuperUser, "--auth=trust", "-E", "UTF8", "--locale=C", "--no-instructions")
		if opts.Fast {
			cmd.Args = append(cmd.Args, "--no-sync")
		}
		cmd.SysProcAttr = runAs.sysProcAttr(false)
		if out, err := cmd.CombinedOutput(); err != nil {
			return nil, fmt.Errorf("initdb: %w: %s", err, lastLines(out))
		}
	}
	// Unix socket paths are limited to ~107 bytes, so the socket lives in a short temp dir.
	socketDir, ownSocketDir := opts.SocketDir, opts.SocketDir == ""
	if ownSocketDir {
		if socketDir, err = os.MkdirTemp("", "tlpg"); err != nil {
			return nil, fmt.Errorf("socket dir: %w", err)
		}
	} else if err := os.MkdirAll(socketDir, 0o755); err != nil {
		return nil, fmt.Errorf("socket dir: %w", err)
	}
	if err := chownTo(socketDir, runAs); err != nil {
		return nil, err
	}
	args := []string{"-D", dataDir, "-k", socketDir, "-c", "listen_addresses=", "-c", "max_connections=300"}
	if opts.Fast {
		args = append(args, "-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off")
	}
	for _, s := range opts.Settings {
		args = append(args, "-c", s)
	}
	logFile, err := os.OpenFile(filepath.Join(dataDir, "server.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, fmt.Errorf("server log: %w", err)
	}
	c := &Cluster{dataDir: dataDir, socketDir: socketDir, ownSocketDir: ownSocketDir, exited: make(chan struct{}), logger: logger}
	c.cmd = exec.Command(filepath.Join(bin, "postgres"), args...)
	c.cmd.Stdout, c.cmd.Stderr = logFile, logFile
	c.cmd.SysProcAttr = runAs.sysProcAttr(true)

	started := make(chan error, 1)
	go func() {
		// Pdeathsig fires when the thread that forked exits: keep it locked and
		// alive for the server's lifetime so the signal means "parent died".
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		err := c.cmd.Start()
		started <- err
		if err != nil {
			return
		}
		c.waitErr = c.cmd.Wait()
		logFile.Close()
		close(c.exited)
	}()
	if err := <-started; err != nil {
		logFile.Close()
		c.removeSocketDir()
		return nil, fmt.Errorf("start postgres: %w", err)
	}
	if err := c.waitReady(ctx); err != nil {
		c.Stop()
		return nil, err
	}
	logger.Info("PostgreSQL started", "dir", dataDir, "socket", socketDir)
	return c, nil
}

func (c *Cluster) waitReady(ctx context.Context) error {
	deadline := time.Now().Add(60 * time.Second)
	for {
		cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		conn, err := pgx.Connect(cctx, c.URL("postgres"))
		cancel()
		if err == nil {
			conn.Close(ctx)
			return nil
		}
		select {
		case <-c.exited:
			return fmt.Errorf("postgres exited at start-up: %v: %s", c.waitErr, c.logTail())
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("postgres not ready after 60s: %s", c.logTail())
		}
	}
}

func (c *Cluster) logTail() string {
	b, _ := os.ReadFile(filepath.Join(c.dataDir, "server.log"))
	return lastLines(b)
}

// URL returns a connection string for database dbname as the superuser.
func (c *Cluster) URL(dbname string) string {
	q := url.Values{"host": {c.socketDir}, "user": {SuperUser}}
	return (&url.URL{Scheme: "postgres", Path: "/" + dbname, RawQuery: q.Encode()}).String()
}

// SocketDir is the directory holding the server's Unix socket.
func (c *Cluster) SocketDir() string { return c.socketDir }

// Stop shuts the server down (fast shutdown, then immediate) and waits.
func (c *Cluster) Stop() error {
	defer c.removeSocketDir()
	select {
	case <-c.exited:
		return nil
	default:
	}
	_ = c.cmd.Process.Signal(syscall.SIGINT)
	select {
	case <-c.exited:
	case <-time.After(15 * time.Second):
		_ = c.cmd.Process.Signal(syscall.SIGQUIT)
		select {
		case <-c.exited:
		case <-time.After(5 * time.Second):
			_ = c.cmd.Process.Kill()
			<-c.exited
		}
	}
	c.logger.Info("PostgreSQL stopped")
	return nil
}

// Exited is closed when the server process ends.
func (c *Cluster) Exited() <-chan struct{} { return c.exited }

// runUser is the OS user the server runs as: ourselves, or "postgres" when we
// are root (initdb and postgres refuse to run as root).
type runUser struct {
	root     bool
	uid, gid uint32
}

func serverUser() (runUser, error) {
	if os.Geteuid() != 0 {
		return runUser{}, nil
	}
	u, err := user.Lookup("postgres")
	if err != nil {
		return runUser{}, errors.New("running as root: PostgreSQL must run as an unprivileged user, and the 'postgres' system user does not exist (install Debian's postgresql package or run as another user)")
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	return runUser{root: true, uid: uint32(uid), gid: uint32(gid)}, nil
}

func (u runUser) sysProcAttr(server bool) *syscall.SysProcAttr {
	attr := &syscall.SysProcAttr{}
	if server {
		attr.Pdeathsig = syscall.SIGQUIT
		attr.Setpgid = true // Ctrl-C in a terminal reaches us, not the server directly
	}
	if u.root {
		attr.Credential = &syscall.Credential{Uid: u.uid, Gid: u.gid}
	}
	return attr
}

func chownTo(path string, u runUser) error {
	if !u.root {
		return nil
	}
	// Lchown: never follow a link someone planted to our chown.
	if err := os.Lchown(path, int(u.uid), int(u.gid)); err != nil {
		return fmt.Errorf("chown %s to postgres: %w", path, err)
	}
	return nil
}

// Reachable reports whether the unprivileged server user can reach dir: every
// ancestor must be searchable by others, or owned by that user and searchable
// by it. When we are not root it is always true.
func Reachable(dir string) bool {
	if os.Geteuid() != 0 {
		return true
	}
	runAs, err := serverUser()
	if err != nil {
		return false
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return false
	}
	for p := filepath.Dir(abs); ; p = filepath.Dir(p) {
		fi, err := os.Stat(p)
		if err != nil {
			return false
		}
		st, _ := fi.Sys().(*syscall.Stat_t)
		ownedByServer := st != nil && st.Uid == runAs.uid && fi.Mode().Perm()&0o100 != 0
		if fi.Mode().Perm()&0o001 == 0 && !ownedByServer {
			return false
		}
		if p == "/" {
			return true
		}
	}
}

func lastLines(b []byte) string {
	const max = 600
	if len(b) > max {
		b = b[len(b)-max:]
	}
	return string(b)
}

// DataDir is the cluster's data directory.
func (c *Cluster) DataDir() string { return c.dataDir }

func (c *Cluster) removeSocketDir() {
	if c.ownSocketDir {
		os.RemoveAll(c.socketDir)
	}
}

// PrivateDir makes dir a directory that only the server user (and root) can
// enter, for data that must live in a shared place such as /tmp: it is
// created exclusively with mode 0700, or, if it exists, accepted only when
// it is a real directory (not a symbolic link) with mode 0700 owned by the
// server user or by root. Anything else is refused, never repaired: in a
// world-writable parent it may have been planted by another local user (a
// link for us to chown, or a cluster with a hostile configuration to start).
// Its parent must already exist.
func PrivateDir(dir string) error {
	runAs, err := serverUser()
	if err != nil {
		return err
	}
	if err := os.Mkdir(dir, 0o700); err != nil && !errors.Is(err, os.ErrExist) {
		return fmt.Errorf("create %s: %w", dir, err)
	}
	fi, err := os.Lstat(dir)
	if err != nil {
		return fmt.Errorf("check %s: %w", dir, err)
	}
	st, _ := fi.Sys().(*syscall.Stat_t)
	owner := uint32(os.Geteuid())
	if runAs.root {
		owner = runAs.uid
	}
	switch {
	case fi.Mode()&os.ModeSymlink != 0:
		return fmt.Errorf("%s is a symbolic link, not a directory; refusing to use it (remove it, or set TESLALINK_DEV_DIR)", dir)
	case !fi.IsDir():
		return fmt.Errorf("%s is not a directory; refusing to use it (remove it, or set TESLALINK_DEV_DIR)", dir)
	case st == nil || (st.Uid != owner && st.Uid != 0):
		return fmt.Errorf("%s belongs to another user; refusing to use it (remove it, or set TESLALINK_DEV_DIR)", dir)
	case fi.Mode().Perm() != 0o700:
		return fmt.Errorf("%s has mode %04o, not 0700; refusing to use it (remove it, or set TESLALINK_DEV_DIR)", dir, fi.Mode().Perm())
	}
	return chownTo(dir, runAs)
}
