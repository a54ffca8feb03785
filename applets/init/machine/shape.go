package machine

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"reflect"
	"strings"
)

// configType is the Go type whose JSON shape checkShape enforces.
var configType = reflect.TypeFor[Config]()

// checkShape walks the JSON document in data against the Go type t, the way
// encoding/json would decode it, and finds what encoding/json cannot say
// well: an unknown field and where it is, a field given twice, a field that
// differs from its tag only in case, a value of the wrong type with its full
// path. It returns those problems and the paths of the wrong-typed values.
// fatal is set when data is not a single JSON object: a syntax error, an
// empty input, another kind of value or trailing data.
func checkShape(data []byte, t reflect.Type) (errs []error, badPaths []string, fatal error) {
	s := &shape{dec: json.NewDecoder(bytes.NewReader(data)), data: data}
	s.dec.UseNumber()
	tok, err := s.dec.Token()
	switch {
	case err == io.EOF:
		return nil, nil, errors.New("config is empty")
	case err != nil:
		return nil, nil, s.syntaxError(err)
	case tok != json.Delim('{'):
		return nil, nil, fmt.Errorf("config must be a JSON object, not %s", describe(tok))
	}
	if err := s.object(t, ""); err != nil {
		return nil, nil, s.syntaxError(err)
	}
	if off := s.dec.InputOffset(); len(bytes.TrimLeft(data[off:], " \t\r\n")) > 0 {
		off = int64(len(data) - len(bytes.TrimLeft(data[off:], " \t\r\n")))
		return nil, nil, fmt.Errorf("config has data after its object, at %s", s.position(off))
	}
	return s.errs, s.badPaths, nil
}

type shape struct {
	dec      *json.Decoder
	data     []byte
	errs     []error
	badPaths []string
}

// value checks the next value against t.
func (s *shape) value(t reflect.Type, path string) error {
	tok, err := s.dec.Token()
	if err != nil {
		return err
	}
	if tok == nil {
		return nil // null leaves the zero value, as in encoding/json
	}
	var want string
	switch t.Kind() {
	case reflect.Struct:
		if tok == json.Delim('{') {
			return s.object(t, path)
		}
		want = "an object"
	case reflect.Slice:
		if tok == json.Delim('[') {
			for i := 0; s.dec.More(); i++ {
				if err := s.value(t.Elem(), fmt.Sprintf("%s[%d]", path, i)); err != nil {
					return err
				}
			}
			_, err := s.dec.Token() // ]
			return err
		}
		want = "an array"
	case reflect.String:
		if _, ok := tok.(string); ok {
			return nil
		}
		want = "a string"
	case reflect.Bool:
		if _, ok := tok.(bool); ok {
			return nil
		}
		want = "true or false"
	default:
		panic(fmt.Sprintf("machine: config field %s has kind %s, which checkShape does not know", path, t.Kind()))
	}
	s.errs = append(s.errs, fieldErr(path, "want %s, got %s", want, describe(tok)))
	s.badPaths = append(s.badPaths, path)
	return s.skip(tok)
}

// object checks the members of an object whose '{' has been read.
func (s *shape) object(t reflect.Type, path string) error {
	seen := map[string]bool{}
	for s.dec.More() {
		tok, err := s.dec.Token()
		if err != nil {
			return err
		}
		key := tok.(string) // the decoder allows nothing else here
		f, ok := fieldByName(t, key)
		switch {
		case !ok:
			where := "at top level"
			if path != "" {
				where = "in " + path
			}
			msg := fmt.Sprintf("unknown field %q %s", key, where)
			if f.Name != "" {
				msg += fmt.Sprintf(" (did you mean %q?)", jsonName(f))
			}
			s.errs = append(s.errs, errors.New(msg))
			tok, err := s.dec.Token()
			if err != nil {
				return err
			}
			if err := s.skip(tok); err != nil {
				return err
			}
			continue
		case seen[key]:
			s.errs = append(s.errs, fieldErr(join(path, key), "given more than once"))
		}
		seen[key] = true
		if err := s.value(f.Type, join(path, key)); err != nil {
			return err
		}
	}
	_, err := s.dec.Token() // }
	return err
}

// skip consumes the rest of a value whose first token is tok.
func (s *shape) skip(tok any) error {
	if tok != json.Delim('{') && tok != json.Delim('[') {
		return nil
	}
	for depth := 1; depth > 0; {
		tok, err := s.dec.Token()
		if err != nil {
			return err
		}
		switch tok {
		case json.Delim('{'), json.Delim('['):
			depth++
		case json.Delim('}'), json.Delim(']'):
			depth--
		}
	}
	return nil
}

// fieldByName finds the field of struct t whose JSON name is key exactly.
// When none is but one matches ignoring case, it is returned with ok false,
// for the hint.
func fieldByName(t reflect.Type, key string) (f reflect.StructField, ok bool) {
	var fold reflect.StructField
	for i := range t.NumField() {
		f := t.Field(i)
		if !f.IsExported() || jsonName(f) == "-" {
			continue
		}
		switch name := jsonName(f); {
		case name == key:
			return f, true
		case strings.EqualFold(name, key):
			fold = f
		}
	}
	return fold, false
}

func jsonName(f reflect.StructField) string {
	name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
	if name == "" {
		return f.Name
	}
	return name
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// describe names a JSON token for an error message.
func describe(tok any) string {
	switch v := tok.(type) {
	case json.Delim:
		if v == '{' {
			return "an object"
		}
		return "an array"
	case string:
		if len(v) > 40 {
			v = v[:40] + "…"
		}
		return fmt.Sprintf("string %q", v)
	case json.Number:
		return "number " + v.String()
	case bool:
		return fmt.Sprint(v)
	case nil:
		return "null"
	}
	return fmt.Sprintf("%v", tok)
}

// syntaxError says where in the document a decoding error is.
func (s *shape) syntaxError(err error) error {
	var se *json.SyntaxError
	switch {
	case errors.As(err, &se):
		return fmt.Errorf("config is not valid JSON: %s: %s", s.position(se.Offset), strings.TrimPrefix(se.Error(), "json: "))
	case err == io.ErrUnexpectedEOF || err == io.EOF:
		return errors.New("config is not valid JSON: it ends too early")
	}
	return fmt.Errorf("config is not valid JSON: %w", err)
}

// position turns a byte offset into "line L, column C", both from 1.
func (s *shape) position(off int64) string {
	off = min(max(off, 0), int64(len(s.data)))
	before := s.data[:off]
	line := bytes.Count(before, []byte("\n")) + 1
	col := len(before) - bytes.LastIndexByte(before, '\n')
	return fmt.Sprintf("line %d, column %d", line, col)
}
