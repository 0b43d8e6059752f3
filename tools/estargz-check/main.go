// estargz-check reads an eStargz layer with the reference reader
// (github.com/containerd/stargz-snapshotter/estargz) and proves it right:
// the TOC digest, every chunk digest, every file's content against a plain
// gzip+tar read of the same blob, the diff_id and the uncompressed size.
// It prints one JSON report on stdout and exits non-zero on the first mismatch.
//
// Usage:
//
//	estargz-check verify -toc-digest D -diff-id D -uncompressed-size N LAYER
//	estargz-check read -url URL -toc-digest D -file PATH -out FILE   (lazy read over HTTP Range requests)
package main

import (
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"sync/atomic"

	"archive/tar"

	"github.com/containerd/stargz-snapshotter/estargz"
	digest "github.com/opencontainers/go-digest"
)

func main() {
	if len(os.Args) < 2 {
		fail(errors.New("usage: estargz-check verify|read ..."))
	}
	var err error
	switch os.Args[1] {
	case "verify":
		err = verify(os.Args[2:])
	case "read":
		err = read(os.Args[2:])
	default:
		err = fmt.Errorf("unknown command %q", os.Args[1])
	}
	if err != nil {
		fail(err)
	}
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "estargz-check:", err)
	os.Exit(1)
}

type plainFile struct {
	size   int64
	digest string
}

type report struct {
	TOCDigest        string `json:"tocDigest"`
	DiffID           string `json:"diffId"`
	UncompressedSize int64  `json:"uncompressedSize"`
	Files            int    `json:"files"`
	Dirs             int    `json:"dirs"`
	Chunks           int    `json:"chunks"`
	Bytes            int64  `json:"bytes"`
}

func verify(args []string) error {
	fs := flag.NewFlagSet("verify", flag.ExitOnError)
	tocDigest := fs.String("toc-digest", "", "expected TOC digest (the layer annotation)")
	diffID := fs.String("diff-id", "", "expected diff_id (from the image config)")
	uncompressed := fs.Int64("uncompressed-size", -1, "expected uncompressed size (the layer annotation)")
	fs.Parse(args)
	if fs.NArg() != 1 {
		return errors.New("verify needs one layer blob path")
	}
	f, err := os.Open(fs.Arg(0))
	if err != nil {
		return err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return err
	}

	// 1. A plain gzip+tar read, as any client that knows nothing of eStargz does it,
	// in parallel with 2. the reference eStargz reader: footer, TOC, TOC digest, chunk digests.
	type plainResult struct {
		files map[string]plainFile
		rep   report
		err   error
	}
	plainDone := make(chan plainResult, 1)
	go func() {
		files, rep, err := plainRead(f)
		plainDone <- plainResult{files, rep, err}
	}()

	r, err := estargz.Open(io.NewSectionReader(f, 0, st.Size()))
	if err != nil {
		return fmt.Errorf("estargz.Open: %w", err)
	}
	if *tocDigest == "" {
		return errors.New("-toc-digest is required")
	}
	verifier, err := r.VerifyTOC(digest.Digest(*tocDigest))
	if err != nil {
		return fmt.Errorf("VerifyTOC: %w", err)
	}
	// 3. Every file in the TOC, read chunk by chunk.
	type tocFile struct {
		size   int64
		digest string
		chunks int
	}
	viaTOC := map[string]tocFile{}
	var walkErr error
	var walk func(dir string, e *estargz.TOCEntry)
	walk = func(dir string, e *estargz.TOCEntry) {
		e.ForeachChild(func(base string, ent *estargz.TOCEntry) bool {
			name := base
			if dir != "" {
				name = dir + "/" + base
			}
			switch ent.Type {
			case "dir":
				viaTOC[name] = tocFile{size: -1}
				walk(name, ent)
			case "reg":
				if ent.Digest == "" {
					walkErr = fmt.Errorf("%s: no digest in the TOC", name)
					return false
				}
				chunks, got, err := readVerified(r, verifier, name, ent.Size, io.Discard)
				if err != nil {
					walkErr = err
					return false
				}
				if got != ent.Digest {
					walkErr = fmt.Errorf("%s: read through the TOC as %s, TOC digest says %s", name, got, ent.Digest)
					return false
				}
				viaTOC[name] = tocFile{size: ent.Size, digest: got, chunks: chunks}
			default:
				walkErr = fmt.Errorf("%s: unexpected TOC type %q", name, ent.Type)
				return false
			}
			return walkErr == nil
		})
	}
	root, _ := r.Lookup("")
	walk("", root)
	plain := <-plainDone
	if plain.err != nil {
		return fmt.Errorf("plain gzip+tar read: %w", plain.err)
	}
	if walkErr != nil {
		return walkErr
	}
	rep := plain.rep
	rep.TOCDigest = r.TOCDigest().String()
	if *diffID != "" && rep.DiffID != *diffID {
		return fmt.Errorf("diff_id is %s, config says %s", rep.DiffID, *diffID)
	}
	if *uncompressed >= 0 && rep.UncompressedSize != *uncompressed {
		return fmt.Errorf("uncompressed size is %d, annotation says %d", rep.UncompressedSize, *uncompressed)
	}

	// 4. Both reads agree on every name, size and content.
	if len(viaTOC) != len(plain.files) {
		return fmt.Errorf("the TOC lists %d entries, the tar stream %d", len(viaTOC), len(plain.files))
	}
	for name, want := range plain.files {
		got, ok := viaTOC[name]
		if !ok {
			return fmt.Errorf("%s: in the tar stream but not in the TOC", name)
		}
		if got.size != want.size || got.digest != want.digest {
			return fmt.Errorf("%s: TOC read %d bytes %s, plain read %d bytes %s", name, got.size, got.digest, want.size, want.digest)
		}
		if got.size < 0 {
			rep.Dirs++
			continue
		}
		rep.Files++
		rep.Chunks += got.chunks
		rep.Bytes += got.size
	}
	return json.NewEncoder(os.Stdout).Encode(rep)
}

// readVerified reads a file chunk by chunk, checking each chunk against its chunkDigest.
// The content is also copied to out.
func readVerified(r *estargz.Reader, verifier estargz.TOCEntryVerifier, name string, size int64, out io.Writer) (int, string, error) {
	whole := sha256.New()
	if size == 0 {
		return 0, "sha256:" + hex.EncodeToString(whole.Sum(nil)), nil
	}
	sr, err := r.OpenFile(name)
	if err != nil {
		return 0, "", fmt.Errorf("%s: OpenFile: %w", name, err)
	}
	chunks := 0
	var buf []byte
	for off := int64(0); off < size; {
		ce, ok := r.ChunkEntryForOffset(name, off)
		if !ok {
			return 0, "", fmt.Errorf("%s: no chunk at offset %d", name, off)
		}
		v, err := verifier.Verifier(ce)
		if err != nil {
			return 0, "", fmt.Errorf("%s: %w", name, err)
		}
		// One ReadAt per chunk: the reader decompresses from the chunk's start on every call.
		if int64(cap(buf)) < ce.ChunkSize {
			buf = make([]byte, ce.ChunkSize)
		}
		chunk := buf[:ce.ChunkSize]
		if _, err := sr.ReadAt(chunk, ce.ChunkOffset); err != nil && err != io.EOF {
			return 0, "", fmt.Errorf("%s: reading chunk at %d: %w", name, ce.ChunkOffset, err)
		}
		if _, err := io.MultiWriter(v, whole, out).Write(chunk); err != nil {
			return 0, "", err
		}
		if !v.Verified() {
			return 0, "", fmt.Errorf("%s: chunk at offset %d does not match its chunkDigest", name, ce.ChunkOffset)
		}
		chunks++
		off = ce.ChunkOffset + ce.ChunkSize
	}
	return chunks, "sha256:" + hex.EncodeToString(whole.Sum(nil)), nil
}

type counter struct{ n int64 }

func (c *counter) Write(p []byte) (int, error) { c.n += int64(len(p)); return len(p), nil }

func plainRead(f *os.File) (map[string]plainFile, report, error) {
	files := map[string]plainFile{}
	zr, err := gzip.NewReader(io.NewSectionReader(f, 0, 1<<62))
	if err != nil {
		return nil, report{}, err
	}
	diff := sha256.New()
	count := &counter{}
	tr := tar.NewReader(io.TeeReader(zr, io.MultiWriter(diff, count)))
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, report{}, err
		}
		if h.Name == estargz.TOCTarName {
			continue
		}
		name := cleanName(h.Name)
		if _, dup := files[name]; dup {
			return nil, report{}, fmt.Errorf("%s appears twice", name)
		}
		switch h.Typeflag {
		case tar.TypeDir:
			files[name] = plainFile{size: -1}
		case tar.TypeReg:
			hash := sha256.New()
			n, err := io.Copy(hash, tr)
			if err != nil {
				return nil, report{}, err
			}
			files[name] = plainFile{size: n, digest: "sha256:" + hex.EncodeToString(hash.Sum(nil))}
		default:
			return nil, report{}, fmt.Errorf("%s: unexpected tar type %q", name, h.Typeflag)
		}
	}
	// The rest of the stream (tar padding, footer) belongs to the diff too.
	if _, err := io.Copy(io.MultiWriter(diff, count), zr); err != nil {
		return nil, report{}, err
	}
	return files, report{DiffID: "sha256:" + hex.EncodeToString(diff.Sum(nil)), UncompressedSize: count.n}, nil
}

func cleanName(name string) string {
	for len(name) > 0 && name[len(name)-1] == '/' {
		name = name[:len(name)-1]
	}
	return name
}

// httpReaderAt reads a blob with HTTP Range requests and counts the bytes fetched.
type httpReaderAt struct {
	url     string
	fetched int64
	reqs    int64
}

func (h *httpReaderAt) ReadAt(p []byte, off int64) (int, error) {
	req, err := http.NewRequest("GET", h.url, nil)
	if err != nil {
		return 0, err
	}
	req.Header.Set("Range", fmt.Sprintf("bytes=%d-%d", off, off+int64(len(p))-1))
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusPartialContent {
		return 0, fmt.Errorf("range request got status %d", res.StatusCode)
	}
	n, err := io.ReadFull(res.Body, p)
	atomic.AddInt64(&h.fetched, int64(n))
	atomic.AddInt64(&h.reqs, 1)
	if err == io.ErrUnexpectedEOF {
		err = io.EOF
	}
	return n, err
}

func read(args []string) error {
	fs := flag.NewFlagSet("read", flag.ExitOnError)
	url := fs.String("url", "", "blob URL that answers Range requests")
	tocDigest := fs.String("toc-digest", "", "expected TOC digest")
	name := fs.String("file", "", "file to read")
	out := fs.String("out", "", "where to write the file")
	fs.Parse(args)
	head, err := http.Head(*url)
	if err != nil {
		return err
	}
	head.Body.Close()
	size, err := strconv.ParseInt(head.Header.Get("Content-Length"), 10, 64)
	if err != nil {
		return fmt.Errorf("HEAD %s: no Content-Length", *url)
	}
	ra := &httpReaderAt{url: *url}
	r, err := estargz.Open(io.NewSectionReader(ra, 0, size))
	if err != nil {
		return fmt.Errorf("estargz.Open: %w", err)
	}
	verifier, err := r.VerifyTOC(digest.Digest(*tocDigest))
	if err != nil {
		return err
	}
	ent, ok := r.Lookup(*name)
	if !ok {
		return fmt.Errorf("%s: not in the TOC", *name)
	}
	o, err := os.Create(*out)
	if err != nil {
		return err
	}
	defer o.Close()
	chunks, got, err := readVerified(r, verifier, *name, ent.Size, o)
	if err != nil {
		return err
	}
	if got != ent.Digest {
		return fmt.Errorf("%s: content %s, TOC says %s", *name, got, ent.Digest)
	}
	return json.NewEncoder(os.Stdout).Encode(map[string]int64{
		"blobSize": size, "fetched": ra.fetched, "requests": ra.reqs, "fileSize": ent.Size, "chunks": int64(chunks),
	})
}
