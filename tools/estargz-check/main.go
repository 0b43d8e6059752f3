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

	// 1. A plain gzip+tar read, as any client that knows nothing of eStargz does it.
	plain, rep, err := plainRead(f)
	if err != nil {
		return fmt.Errorf("plain gzip+tar read: %w", err)
	}
	if *diffID != "" && rep.DiffID != *diffID {
		return fmt.Errorf("diff_id is %s, config says %s", rep.DiffID, *diffID)
	}
	if *uncompressed >= 0 && rep.UncompressedSize != *uncompressed {
		return fmt.Errorf("uncompressed size is %d, annotation says %d", rep.UncompressedSize, *uncompressed)
	}

	// 2. The reference eStargz reader: footer, TOC, TOC digest, chunk digests.
	r, err := estargz.Open(io.NewSectionReader(f, 0, st.Size()))
	if err != nil {
		return fmt.Errorf("estargz.Open: %w", err)
	}
	rep.TOCDigest = r.TOCDigest().String()
	if *tocDigest == "" {
		return errors.New("-toc-digest is required")
	}
	verifier, err := r.VerifyTOC(digest.Digest(*tocDigest))
	if err != nil {
		return fmt.Errorf("VerifyTOC: %w", err)
	}

	// 3. Every file the plain read saw, read through the TOC chunk by chunk.
	for name, want := range plain {
		ent, ok := r.Lookup(name)
		if !ok {
			return fmt.Errorf("%s: in the tar stream but not in the TOC", name)
		}
		if ent.Type == "dir" {
			rep.Dirs++
			continue
		}
		if ent.Type != "reg" {
			return fmt.Errorf("%s: unexpected TOC type %q", name, ent.Type)
		}
		if ent.Size != want.size {
			return fmt.Errorf("%s: TOC size %d, tar size %d", name, ent.Size, want.size)
		}
		if ent.Digest != want.digest {
			return fmt.Errorf("%s: TOC digest %s, content digest %s", name, ent.Digest, want.digest)
		}
		chunks, got, err := readVerified(r, verifier, name, ent.Size, io.Discard)
		if err != nil {
			return err
		}
		if got != want.digest {
			return fmt.Errorf("%s: read through the TOC as %s, plain read %s", name, got, want.digest)
		}
		rep.Files++
		rep.Chunks += chunks
		rep.Bytes += ent.Size
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
	for off := int64(0); off < size; {
		ce, ok := r.ChunkEntryForOffset(name, off)
		if !ok {
			return 0, "", fmt.Errorf("%s: no chunk at offset %d", name, off)
		}
		v, err := verifier.Verifier(ce)
		if err != nil {
			return 0, "", fmt.Errorf("%s: %w", name, err)
		}
		if _, err := io.Copy(io.MultiWriter(v, whole, out), io.NewSectionReader(sr, ce.ChunkOffset, ce.ChunkSize)); err != nil {
			return 0, "", fmt.Errorf("%s: reading chunk at %d: %w", name, ce.ChunkOffset, err)
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
