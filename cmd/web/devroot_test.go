package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"teslalink/internal/pgcluster"
)

// TestDevAsRootRefusesPlantedTmpDir: run as root with a checkout the postgres
// user cannot enter, `web dev` keeps its data under TMPDIR. Another local user
// could have planted that predictable path first: a symbolic link (for root to
// chown its target), or a directory of their own (holding a hostile cluster).
// `web dev` must refuse each and touch nothing.
func TestDevAsRootRefusesPlantedTmpDir(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	if os.Geteuid() != 0 {
		t.Skip("needs root: the shared-temp fallback is only used as root")
	}
	if _, err := user.Lookup("postgres"); err != nil {
		t.Skip("no postgres user")
	}
	t.Parallel()
	bin, dir := buildWeb(t)
	private := filepath.Join(dir, "private")
	os.Mkdir(private, 0o700) // the postgres user cannot enter the "checkout"
	devDir := filepath.Join(private, "dev")
	tmp := filepath.Join(dir, "tmp")
	os.Mkdir(tmp, 0o1777)
	os.Chmod(tmp, 0o1777)
	sum := sha256.Sum256([]byte(filepath.Join(devDir, "pgdata")))
	planted := filepath.Join(tmp, "teslalink-dev-"+hex.EncodeToString(sum[:6]))

	victim := filepath.Join(dir, "victim")
	plant := map[string]func(){
		"symlink": func() {
			os.Mkdir(victim, 0o755)
			if err := os.Symlink(victim, planted); err != nil {
				t.Fatal(err)
			}
		},
		"foreign owner": func() {
			os.Mkdir(planted, 0o700)
			os.Chown(planted, 65534, 65534) // nobody
		},
		"open mode": func() {
			os.Mkdir(planted, 0o755)
			os.Chmod(planted, 0o777)
		},
	}
	for _, name := range []string{"symlink", "foreign owner", "open mode"} {
		os.RemoveAll(planted)
		os.RemoveAll(victim)
		plant[name]()
		ctx, cancel := context.WithTimeout(context.Background(), 40*time.Second)
		cmd := exec.CommandContext(ctx, bin, "dev", "--addr", "127.0.0.1:0")
		cmd.Env = append(filterEnv(os.Environ()), "TESLALINK_DEV_DIR="+devDir, "TMPDIR="+tmp)
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		err := cmd.Run()
		timedOut := ctx.Err() != nil
		cancel()
		if err == nil || timedOut || !strings.Contains(out.String(), "refusing") {
			t.Errorf("%s: web dev did not refuse (err %v):\n%s", name, err, out.String())
		}
		if name == "symlink" {
			fi, err := os.Stat(victim)
			if err != nil {
				t.Fatal(err)
			}
			if st := fi.Sys().(*syscall.Stat_t); st.Uid != 0 {
				t.Errorf("symlink: the link's target was chowned to uid %d", st.Uid)
			}
			if _, err := os.Stat(filepath.Join(victim, "pgdata")); err == nil {
				t.Error("symlink: a cluster was created through the link")
			}
		}
	}
}

// TestPrivateDir: a fresh directory is created 0700 and owned by the server
// user; running again accepts it.
func TestPrivateDir(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "p")
	for range 2 {
		if err := pgcluster.PrivateDir(dir); err != nil {
			t.Fatal(err)
		}
	}
	fi, err := os.Lstat(dir)
	if err != nil || !fi.IsDir() || fi.Mode().Perm() != 0o700 {
		t.Fatalf("%v %v", fi.Mode(), err)
	}
	want := os.Geteuid()
	if want == 0 {
		if u, err := user.Lookup("postgres"); err == nil {
			want, _ = strconv.Atoi(u.Uid)
		}
	}
	if st := fi.Sys().(*syscall.Stat_t); int(st.Uid) != want {
		t.Fatalf("owner %d, want %d", st.Uid, want)
	}
}
