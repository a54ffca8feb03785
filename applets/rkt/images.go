package rkt

import (
	"encoding/json"
	"fmt"
	"os"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/corebox/corebox/applets/rkt/image"
)

func (c *cli) fetch(vals flagValues, args []string) int {
	if len(args) == 0 {
		return c.usageError(fmt.Errorf("no image given"))
	}
	store, err := c.openImages()
	if err != nil {
		return c.fail(err)
	}
	status := 0
	for _, ref := range args {
		if !isFetchRef(ref) {
			// rkt fetches names from docker registries: docker:// is implied.
			ref = "docker://" + ref
		}
		img, err := store.Fetch(c.ctx, ref, image.FetchOptions{Insecure: c.insecure["http"], Progress: c.env.Stderr})
		if err != nil {
			status = c.fail(err)
			continue
		}
		fmt.Fprintln(c.env.Stdout, img.ID)
	}
	return status
}

// imageFlags are the flags of the image subcommands.
var imageFlags = map[string]flagSet{
	"list":         {{name: "full", kind: boolFlag}, {name: "no-legend", kind: boolFlag}, {name: "format", kind: valueFlag}, {name: "fields", kind: valueFlag}, {name: "order", kind: valueFlag}, {name: "sort", kind: valueFlag}},
	"rm":           {},
	"gc":           {{name: "grace-period", kind: valueFlag}},
	"export":       {{name: "overwrite", kind: boolFlag}},
	"extract":      {{name: "overwrite", kind: boolFlag}, {name: "rootfs-only", kind: boolFlag}},
	"cat-manifest": {{name: "pretty-print", kind: boolFlag}},
}

func (c *cli) image(args []string) int {
	if len(args) == 0 {
		return c.usageError(fmt.Errorf("image needs a subcommand: list, rm, gc, export, extract or cat-manifest"))
	}
	sub, args := args[0], args[1:]
	set, ok := imageFlags[sub]
	if !ok {
		return c.usageError(fmt.Errorf("unknown image subcommand %q", sub))
	}
	c.cmd = "image " + sub
	vals, words, err := slices.Concat(set, globalFlags).parse(args, true)
	if err != nil {
		return c.usageError(err)
	}
	if err := c.mergeGlobals(pick(vals, globalFlags)); err != nil {
		return c.usageError(err)
	}
	store, err := c.openImages()
	if err != nil {
		return c.fail(err)
	}
	switch sub {
	case "list":
		return c.imageList(store, vals)
	case "cat-manifest":
		return c.imageCatManifest(store, vals, words)
	}
	return c.imageMore(store, sub, vals, words)
}

// pick returns the values of the flags in set.
func pick(vals flagValues, set flagSet) flagValues {
	out := flagValues{}
	for _, d := range set {
		if v, ok := vals[d.name]; ok {
			out[d.name] = v
		}
	}
	return out
}

// imageJSON is an image in `image list --format=json`, as rkt's fields.
type imageJSON struct {
	ID         string `json:"id"`
	Name       string `json:"name"`
	ImportTime int64  `json:"importtime"`
	LastUsed   int64  `json:"lastused"`
	Size       int64  `json:"size"`
}

func (c *cli) imageList(store *image.Store, vals flagValues) int {
	imgs, err := store.List()
	if err != nil {
		return c.fail(err)
	}
	if f := vals.last("format", ""); f != "" {
		out := []imageJSON{}
		for _, img := range imgs {
			out = append(out, imageJSON{ID: img.ID, Name: strings.Join(img.Names, ","), ImportTime: img.FetchedAt.UnixNano(), LastUsed: img.FetchedAt.UnixNano(), Size: img.Size})
		}
		if err := writeJSON(c.env.Stdout, f, out); err != nil {
			return c.usageError(err)
		}
		return 0
	}
	full := vals.bool("full")
	now := time.Now()
	tw := tabwriter.NewWriter(c.env.Stdout, 0, 8, 1, '\t', 0)
	if !vals.bool("no-legend") {
		fmt.Fprintln(tw, "ID\tNAME\tSIZE\tIMPORT TIME\tLAST USED")
	}
	for _, img := range imgs {
		id, size, when := img.ID, fmt.Sprint(img.Size), img.FetchedAt.Format(timeLayout)
		if !full {
			if len(id) > 19 {
				id = id[:19]
			}
			size, when = humanSize(img.Size), ago(img.FetchedAt, now)
		}
		name := strings.Join(img.Names, ",")
		if name == "" {
			name = img.Source
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", id, name, size, when, when)
	}
	tw.Flush()
	return 0
}

// humanSize prints a size as rkt does (binary units).
func humanSize(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%dB", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit && exp < 4; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f%ciB", float64(n)/float64(div), "KMGTP"[exp])
}

func (c *cli) imageCatManifest(store *image.Store, vals flagValues, args []string) int {
	if len(args) != 1 {
		return c.usageError(fmt.Errorf("cat-manifest takes one image"))
	}
	img, err := store.Resolve(args[0])
	if err != nil {
		return c.fail(err)
	}
	b, err := store.Manifest(img.ID)
	if err != nil {
		return c.fail(err)
	}
	if vals.last("pretty-print", "true") == "true" {
		var v any
		if json.Unmarshal(b, &v) == nil {
			b, _ = json.MarshalIndent(v, "", "\t")
		}
	}
	fmt.Fprintf(c.env.Stdout, "%s\n", b)
	return 0
}

func (c *cli) imageMore(store *image.Store, sub string, vals flagValues, args []string) int {
	switch sub {
	case "rm":
		if len(args) == 0 {
			return c.usageError(fmt.Errorf("no image given"))
		}
		status := 0
		for _, ref := range args {
			img, err := store.Resolve(ref)
			if err != nil {
				status = c.fail(err)
				continue
			}
			if users := c.podsUsing(img.ID); len(users) > 0 {
				status = c.fail(fmt.Errorf("image %s is used by pod(s) %s: remove them first", img.ID, strings.Join(users, ", ")))
				continue
			}
			if _, err := store.Remove(img.ID); err != nil {
				status = c.fail(err)
				continue
			}
			fmt.Fprintf(c.env.Stdout, "successfully removed aci for image: %q\n", img.ID)
		}
		return status
	case "gc":
		grace, err := time.ParseDuration(vals.last("grace-period", "24h0m0s"))
		if err != nil || grace < 0 {
			return c.usageError(fmt.Errorf("--grace-period %q: want a duration", vals.last("grace-period", "")))
		}
		now := time.Now()
		res, err := store.GC(func(img image.Image) bool {
			return now.Sub(img.FetchedAt) < grace || len(c.podsUsing(img.ID)) > 0
		})
		if err != nil {
			return c.fail(err)
		}
		fmt.Fprintf(c.env.Stdout, "%+v\n", res)
		return 0
	case "export":
		if len(args) != 2 {
			return c.usageError(fmt.Errorf("export takes IMAGE and OUTPUT_FILE"))
		}
		flags := os.O_WRONLY | os.O_CREATE | os.O_EXCL
		if vals.bool("overwrite") {
			flags = os.O_WRONLY | os.O_CREATE | os.O_TRUNC
		}
		f, err := os.OpenFile(args[1], flags, 0o644)
		if err != nil {
			return c.fail(err)
		}
		err = store.Export(args[0], image.OCIArchiveFormat, f)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			os.Remove(args[1])
			return c.fail(err)
		}
		return 0
	case "extract":
		if len(args) != 2 {
			return c.usageError(fmt.Errorf("extract takes IMAGE and OUTPUT_DIR"))
		}
		if vals.bool("overwrite") {
			if err := os.RemoveAll(args[1]); err != nil {
				return c.fail(err)
			}
		}
		if err := store.Extract(args[0], args[1]); err != nil {
			return c.fail(err)
		}
		return 0
	}
	return c.usageError(fmt.Errorf("unknown image subcommand %q", sub))
}

// podsUsing lists the pods whose manifest names image id.
func (c *cli) podsUsing(id string) []string {
	pods, err := c.allPods()
	if err != nil {
		return nil
	}
	var out []string
	for _, p := range pods {
		if p.Manifest == nil {
			continue
		}
		for _, a := range p.Manifest.Apps {
			if a.Image.ID == id {
				out = append(out, p.UUID)
				break
			}
		}
	}
	return out
}
