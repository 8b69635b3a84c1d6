package node

import (
	"bytes"
	"encoding/json"
	"fmt"
	"reflect"
	"slices"
	"strings"
)

// checkKeys walks standardized JSON alongside the Go type it will decode
// into and reports the first key the type does not have, or a key given
// twice, with its line. encoding/json's DisallowUnknownFields names the key
// but not where it is, and silently keeps the last of two duplicates.
func checkKeys(data []byte, t reflect.Type) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	w := keyWalker{dec: dec, data: data}
	return w.value(t, "")
}

type keyWalker struct {
	dec  *json.Decoder
	data []byte
}

func (w *keyWalker) value(t reflect.Type, path string) error {
	tok, err := w.dec.Token()
	if err != nil {
		return &ConfigError{Line: lineAt(w.data, int(w.dec.InputOffset())), Msg: "syntax: " + err.Error()}
	}
	for t != nil && t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	d, ok := tok.(json.Delim)
	if !ok {
		return nil // a scalar; its type is checked by the real decode
	}
	switch d {
	case '[':
		var elem reflect.Type
		if t != nil && (t.Kind() == reflect.Slice || t.Kind() == reflect.Array) {
			elem = t.Elem()
		}
		for w.dec.More() {
			if err := w.value(elem, path+"[]"); err != nil {
				return err
			}
		}
	case '{':
		fields := jsonFields(t)
		seen := map[string]bool{}
		for w.dec.More() {
			ktok, err := w.dec.Token()
			if err != nil {
				return &ConfigError{Line: lineAt(w.data, int(w.dec.InputOffset())), Msg: "syntax: " + err.Error()}
			}
			key, _ := ktok.(string)
			line := lineAt(w.data, int(w.dec.InputOffset()))
			full := key
			if path != "" {
				full = path + "." + key
			}
			if seen[key] {
				return &ConfigError{Line: line, Msg: fmt.Sprintf("key %q appears twice", full)}
			}
			seen[key] = true
			var ft reflect.Type
			if t != nil && t.Kind() == reflect.Map {
				ft = t.Elem()
			} else if fields != nil {
				f, ok := fields[key]
				if !ok {
					return &ConfigError{Line: line, Msg: fmt.Sprintf("unknown key %q (known keys here: %s)", full, knownKeys(fields))}
				}
				ft = f
			}
			if err := w.value(ft, full); err != nil {
				return err
			}
		}
	}
	if _, err := w.dec.Token(); err != nil { // the closing delimiter
		return &ConfigError{Line: lineAt(w.data, int(w.dec.InputOffset())), Msg: "syntax: " + err.Error()}
	}
	return nil
}

// jsonFields maps the JSON names of a struct's fields to their types; nil
// for a non-struct, which accepts any key.
func jsonFields(t reflect.Type) map[string]reflect.Type {
	if t == nil || t.Kind() != reflect.Struct {
		return nil
	}
	m := make(map[string]reflect.Type, t.NumField())
	for i := range t.NumField() {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name == "-" {
			continue
		}
		if name == "" {
			name = f.Name
		}
		m[name] = f.Type
	}
	return m
}

func knownKeys(fields map[string]reflect.Type) string {
	keys := make([]string, 0, len(fields))
	for k := range fields {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return strings.Join(keys, ", ")
}

// lineAt is the 1-based line of byte offset off in data.
func lineAt(data []byte, off int) int {
	if off > len(data) {
		off = len(data)
	}
	if off < 0 {
		off = 0
	}
	return bytes.Count(data[:off], []byte("\n")) + 1
}

// keyLine is the line of the first occurrence of "key" as a key, or 0.
func keyLine(data []byte, key string) int {
	i := bytes.Index(data, []byte(`"`+key+`"`))
	if i < 0 {
		return 0
	}
	return lineAt(data, i)
}

// syntaxError turns a hujson syntax error ("hujson: line 3, column 7: ...")
// into a ConfigError carrying the line.
func syntaxError(err error) *ConfigError {
	msg := err.Error()
	var line, col int
	if _, e := fmt.Sscanf(msg, "hujson: line %d, column %d:", &line, &col); e == nil {
		if _, rest, ok := strings.Cut(msg, ": "); ok {
			if _, rest2, ok := strings.Cut(rest, ": "); ok {
				msg = fmt.Sprintf("column %d: %s", col, rest2)
			}
		}
		return &ConfigError{Line: line, Msg: "syntax: " + msg}
	}
	return &ConfigError{Msg: "syntax: " + msg}
}
