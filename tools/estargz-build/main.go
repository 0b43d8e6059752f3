// estargz-build runs the reference estargz.Build over a tar file, for `npm run bench` and as the
// reference layout for prioritised (prefetched) files in tests: it prints the seconds Build and
// reading its output took and the output size, as JSON.
//
// Usage: estargz-build -level 6 -chunk-size 4194304 [-prioritize a,b/c] INPUT.tar OUTPUT
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/containerd/stargz-snapshotter/estargz"
)

func main() {
	level := flag.Int("level", 6, "gzip level")
	chunkSize := flag.Int("chunk-size", 4<<20, "chunk size")
	prioritize := flag.String("prioritize", "", "comma-separated files to put before the prefetch landmark")
	flag.Parse()
	var prioritized []string
	if *prioritize != "" {
		prioritized = strings.Split(*prioritize, ",")
	}
	if err := run(flag.Arg(0), flag.Arg(1), *level, *chunkSize, prioritized); err != nil {
		fmt.Fprintln(os.Stderr, "estargz-build:", err)
		os.Exit(1)
	}
}

func run(input, output string, level, chunkSize int, prioritized []string) error {
	in, err := os.Open(input)
	if err != nil {
		return err
	}
	defer in.Close()
	st, err := in.Stat()
	if err != nil {
		return err
	}
	out, err := os.Create(output)
	if err != nil {
		return err
	}
	defer out.Close()
	start := time.Now()
	blob, err := estargz.Build(io.NewSectionReader(in, 0, st.Size()), estargz.WithCompressionLevel(level), estargz.WithChunkSize(chunkSize), estargz.WithPrioritizedFiles(prioritized))
	if err != nil {
		return err
	}
	defer blob.Close()
	size, err := io.Copy(out, blob)
	if err != nil {
		return err
	}
	if err := out.Sync(); err != nil {
		return err
	}
	return json.NewEncoder(os.Stdout).Encode(map[string]any{"seconds": time.Since(start).Seconds(), "size": size, "diffId": blob.DiffID()})
}
