// stargz-snapshotter is the stargz snapshotter as a containerd proxy snapshotter plugin: the
// upstream filesystem (fs), snapshotter (snapshot) and containerd's snapshot gRPC service, wired
// like upstream's containerd-stargz-grpc but without its CRI keychain (the Kubernetes CRI API is
// not packaged in Debian). Pulls are anonymous; localhost registries are spoken to over plain HTTP.
//
// Usage:
//
//	stargz-snapshotter -address SOCKET -root DIR [-no-prefetch] [-no-background-fetch] [-single-range]
//
// Register it in containerd's config as [proxy_plugins.stargz] type = "snapshot", address = SOCKET.
package main

import (
	"context"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"

	snapshotsapi "github.com/containerd/containerd/api/services/snapshots/v1"
	"github.com/containerd/containerd/contrib/snapshotservice"
	"github.com/containerd/containerd/reference"
	"github.com/containerd/containerd/remotes/docker"
	stargzfs "github.com/containerd/stargz-snapshotter/fs"
	"github.com/containerd/stargz-snapshotter/fs/config"
	"github.com/containerd/stargz-snapshotter/fs/layer"
	"github.com/containerd/stargz-snapshotter/fs/source"
	snbase "github.com/containerd/stargz-snapshotter/snapshot"
	"google.golang.org/grpc"
)

func main() {
	address := flag.String("address", "", "unix socket to serve the snapshot API on")
	root := flag.String("root", "", "state directory (snapshots, layer cache)")
	noPrefetch := flag.Bool("no-prefetch", false, "do not prefetch the files an image lists before its landmark")
	noBackground := flag.Bool("no-background-fetch", false, "do not fetch the rest of each layer in the background")
	singleRange := flag.Bool("single-range", false, "one range per request (default: several at once)")
	flag.Parse()
	if *address == "" || *root == "" {
		fail(fmt.Errorf("usage: stargz-snapshotter -address SOCKET -root DIR [-no-prefetch] [-no-background-fetch] [-single-range]"))
	}
	ctx := context.Background()
	cfg := config.Config{NoPrefetch: *noPrefetch, NoBackgroundFetch: *noBackground, NoPrometheus: true}
	cfg.BlobConfig.ForceSingleRangeMode = *singleRange
	// The fetcher needs a client with a Transport (http.DefaultClient has none); upstream's
	// retrying client lives in a package that needs the CRI API.
	client := &http.Client{Transport: http.DefaultTransport.(*http.Transport).Clone()}
	registries := docker.ConfigureDefaultRegistries(docker.WithClient(client), docker.WithPlainHTTP(docker.MatchLocalhost))
	hosts := func(spec reference.Spec) ([]docker.RegistryHost, error) { return registries(spec.Hostname()) }
	fs, err := stargzfs.NewFilesystem(filepath.Join(*root, "stargz"), cfg,
		stargzfs.WithGetSources(source.FromDefaultLabels(hosts)),
		stargzfs.WithOverlayOpaqueType(layer.OverlayOpaqueTrusted))
	if err != nil {
		fail(err)
	}
	sn, err := snbase.NewSnapshotter(ctx, filepath.Join(*root, "snapshotter"), fs, snbase.AsynchronousRemove)
	if err != nil {
		fail(err)
	}
	server := grpc.NewServer()
	snapshotsapi.RegisterSnapshotsServer(server, snapshotservice.FromSnapshotter(sn))
	if err := os.RemoveAll(*address); err != nil {
		fail(err)
	}
	listener, err := net.Listen("unix", *address)
	if err != nil {
		fail(err)
	}
	signals := make(chan os.Signal, 1)
	signal.Notify(signals, syscall.SIGINT, syscall.SIGTERM)
	go func() {
		<-signals
		server.Stop()
	}()
	fmt.Println("stargz-snapshotter: serving on", *address)
	if err := server.Serve(listener); err != nil {
		fail(err)
	}
	if err := sn.Close(); err != nil { // unmounts every layer's FUSE mount
		fail(err)
	}
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "stargz-snapshotter:", err)
	os.Exit(1)
}
