package config

import (
	"fmt"
	"math"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/viper"
)

// This file turns what the user wrote, in the YAML file or in a WEBHOOKD_*
// variable, into Config's typed fields. Every key is decoded on its own, so
// every problem is reported at once, each naming its key, its variable and
// what was expected, in the style of Validate's messages.

var durationType = reflect.TypeOf(time.Duration(0))

// readFile reads the YAML file at path into nested maps, keys in lower case;
// nothing when path is empty.
func readFile(path string) (map[string]any, error) {
	if path == "" {
		return nil, nil
	}
	v := viper.New()
	v.SetConfigFile(path)
	v.SetConfigType("yaml")
	if err := v.ReadInConfig(); err != nil {
		return nil, fmt.Errorf("config file %s: %w", path, err)
	}
	return v.AllSettings(), nil
}

// load applies the defaults, then the file's settings (read from path),
// then the variables lookupEnv finds. It returns the configuration and every
// problem; a key that could not be decoded keeps its default and is listed
// in failed.
func load(path string, settings map[string]any, lookupEnv func(string) (string, bool)) (cfg Config, failed map[string]bool, errs []error) {
	for _, o := range Options {
		if err := decodeOption(&cfg, o, o.Default); err != nil {
			panic(fmt.Sprintf("config: default of %s: %v", o.Key, err))
		}
	}
	fromFile := map[string]any{}
	errs = walkFile(path, "", settings, fromFile)
	failed = map[string]bool{}
	for _, o := range Options {
		raw, ok := lookupEnv(o.Env())
		var val any = raw
		if !ok {
			if val, ok = fromFile[o.Key]; !ok {
				continue
			}
		}
		if err := decodeOption(&cfg, o, val); err != nil {
			failed[o.Key] = true
			errs = append(errs, &KeyError{Key: o.Key, Err: err})
		}
	}
	return cfg, failed, errs
}

// walkFile collects the file's values by key into out and reports the keys
// that are no option: each with the nearest key, when one is close.
func walkFile(path, prefix string, m map[string]any, out map[string]any) []error {
	var errs []error
	for _, k := range sortedKeys(m) {
		key, val := k, m[k]
		if prefix != "" {
			key = prefix + "." + k
		}
		switch {
		case isOption(key):
			out[key] = val
		case isSection(key):
			sub, ok := val.(map[string]any)
			if !ok {
				got := describe(val)
				if sectionHasSecret(key) {
					got = describeSecret(val) // the value may be a secret one level too high
				}
				errs = append(errs, &UnknownKeyError{Key: key, File: path,
					Problem: fmt.Sprintf("a section (%s), not a value, got %s", sectionExample(key), got)})
				continue
			}
			errs = append(errs, walkFile(path, key, sub, out)...)
		default:
			e := &UnknownKeyError{Key: key, File: path, Problem: "unknown key"}
			if near, ok := Closest(key, fileKeys()); ok {
				e.Suggestion = near
			}
			errs = append(errs, e)
		}
	}
	return errs
}

// UnknownKeyError is a key in the configuration file that webhookd does not
// read: a typo, or a value where a section belongs.
type UnknownKeyError struct {
	Key        string
	File       string
	Problem    string // "unknown key", or what is wrong with a section
	Suggestion string // the nearest option or section, "" when none is close
}

func (e *UnknownKeyError) Error() string {
	s := fmt.Sprintf("%s: %s in %s", e.Key, e.Problem, e.File)
	switch {
	case e.Suggestion == "":
	case isOption(e.Suggestion):
		s += fmt.Sprintf("; did you mean %s (%s)?", e.Suggestion, EnvName(e.Suggestion))
	default:
		s += "; did you mean " + e.Suggestion + "?"
	}
	return s
}

// decodeOption decodes val into the field of cfg that o names.
func decodeOption(cfg *Config, o Option, val any) error {
	f, ok := fieldOf(reflect.ValueOf(cfg).Elem(), o.Key)
	if !ok {
		return fmt.Errorf("no field for key %s", o.Key)
	}
	d := describe
	if o.Secret {
		d = describeSecret
	}
	return decodeValue(f, val, d)
}

// fieldOf finds the field a dotted key names, by the mapstructure tags.
func fieldOf(v reflect.Value, key string) (reflect.Value, bool) {
	for _, name := range strings.Split(key, ".") {
		if v.Kind() != reflect.Struct {
			return reflect.Value{}, false
		}
		t, found := v.Type(), false
		for i := 0; i < t.NumField(); i++ {
			if t.Field(i).Tag.Get("mapstructure") == name {
				v, found = v.Field(i), true
				break
			}
		}
		if !found {
			return reflect.Value{}, false
		}
	}
	return v, true
}

// decodeValue sets f from val: a Go value (a default), a YAML value (string,
// int, float64, bool, list, mapping or nil), or an environment variable's
// string. The error says what was expected and what was found, as describe
// puts it.
func decodeValue(f reflect.Value, val any, describe func(any) string) error {
	switch {
	case f.Type() == durationType:
		d, err := toDuration(val, describe)
		if err != nil {
			return err
		}
		f.SetInt(int64(d))
	case f.Kind() == reflect.String:
		s, ok := val.(string)
		if !ok {
			return fmt.Errorf("expected a string, got %s%s", describe(val), quoteHint(val))
		}
		f.SetString(s)
	case f.Kind() == reflect.Bool:
		b, err := toBool(val, describe)
		if err != nil {
			return err
		}
		f.SetBool(b)
	case f.Kind() == reflect.Int || f.Kind() == reflect.Int64:
		n, err := toInt(val, describe)
		if err != nil {
			return err
		}
		if f.OverflowInt(n) {
			return fmt.Errorf("%d is too large", n)
		}
		f.SetInt(n)
	case f.Kind() == reflect.Slice && f.Type().Elem().Kind() == reflect.String:
		l, err := toStrings(val, describe)
		if err != nil {
			return err
		}
		f.Set(reflect.ValueOf(l))
	default:
		return fmt.Errorf("cannot decode into %s", f.Type())
	}
	return nil
}

// toDuration reads a duration: a string with a unit (30s, 500ms, 1h30m).
// A number without a unit is refused, in YAML or in the environment:
// mapstructure read `timeout: 30` as 30 ns. A bare 0 is accepted, being 0
// in any unit; Validate then says whether 0 is allowed.
func toDuration(val any, describe func(any) string) (time.Duration, error) {
	noUnit := func(shown string, n float64) error {
		return fmt.Errorf("%s has no unit; write a duration such as %ss", shown, strconv.FormatFloat(n, 'f', -1, 64))
	}
	switch v := val.(type) {
	case time.Duration:
		return v, nil
	case int:
		if v == 0 {
			return 0, nil
		}
		return 0, noUnit(strconv.Itoa(v), float64(v))
	case float64:
		if v == 0 {
			return 0, nil
		}
		return 0, noUnit(strconv.FormatFloat(v, 'f', -1, 64), v)
	case string:
		s := strings.TrimSpace(v)
		if n, err := strconv.ParseFloat(s, 64); err == nil && !math.IsInf(n, 0) && !math.IsNaN(n) {
			if n == 0 {
				return 0, nil
			}
			return 0, noUnit(strconv.Quote(v), n)
		}
		d, err := time.ParseDuration(s)
		if err != nil {
			return 0, fmt.Errorf("expected a duration such as 30s, 500ms or 5m, got %q", v)
		}
		return d, nil
	}
	return 0, fmt.Errorf("expected a duration such as 30s, 500ms or 5m, got %s", describe(val))
}

func toBool(val any, describe func(any) string) (bool, error) {
	switch v := val.(type) {
	case bool:
		return v, nil
	case string:
		if b, err := strconv.ParseBool(strings.TrimSpace(v)); err == nil {
			return b, nil
		}
		return false, fmt.Errorf("expected true or false, got %q", v)
	}
	return false, fmt.Errorf("expected true or false, got %s", describe(val))
}

func toInt(val any, describe func(any) string) (int64, error) {
	switch v := val.(type) {
	case int:
		return int64(v), nil
	case int64:
		return v, nil
	case float64:
		if v == math.Trunc(v) && math.Abs(v) < 1<<62 {
			return int64(v), nil
		}
	case string:
		if n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64); err == nil {
			return n, nil
		}
		return 0, fmt.Errorf("expected an integer, got %q", v)
	}
	return 0, fmt.Errorf("expected an integer, got %s", describe(val))
}

// toStrings reads a list: a YAML list, or a comma-separated string (how the
// environment writes lists; blanks around entries are dropped). Integers in a
// YAML list are taken as written (delivery.retry.on: [408, 5xx]).
func toStrings(val any, describe func(any) string) ([]string, error) {
	switch v := val.(type) {
	case []string:
		return v, nil
	case string:
		out := []string{}
		for _, p := range strings.Split(v, ",") {
			if p = strings.TrimSpace(p); p != "" {
				out = append(out, p)
			}
		}
		return out, nil
	case []any:
		out := make([]string, 0, len(v))
		for i, e := range v {
			switch e := e.(type) {
			case string:
				out = append(out, e)
			case int:
				out = append(out, strconv.Itoa(e))
			default:
				return nil, fmt.Errorf("entry %d: expected a string, got %s%s", i+1, describe(e), quoteHint(e))
			}
		}
		return out, nil
	case nil:
		return []string{}, nil
	}
	return nil, fmt.Errorf("expected a list of strings (comma-separated in the environment), got %s", describe(val))
}

// describe names a decoded value for an error message.
func describe(val any) string {
	switch v := val.(type) {
	case nil:
		return "nothing (null)"
	case string:
		return strconv.Quote(v)
	case bool:
		return strconv.FormatBool(v)
	case int, int64:
		return fmt.Sprintf("the number %d", v)
	case float64:
		return "the number " + strconv.FormatFloat(v, 'g', -1, 64)
	case []any:
		return "a list"
	case map[string]any:
		return "a mapping"
	}
	return fmt.Sprintf("a %T", val)
}

// describeSecret names a value's kind without showing it: for secrets.
func describeSecret(val any) string {
	switch val.(type) {
	case string:
		return "a string"
	case bool:
		return "a boolean"
	case int, int64, float64:
		return "a number"
	}
	return describe(val)
}

// quoteHint explains a YAML scalar that was not read as a string.
func quoteHint(val any) string {
	switch val.(type) {
	case int, int64, float64:
		return "; put the value in quotes: YAML reads unquoted digits as a number (0123 becomes 83)"
	case bool:
		return "; put the value in quotes: YAML reads unquoted true and false as booleans"
	}
	return ""
}

func isOption(key string) bool { _, ok := option(key); return ok }

// option finds an Option by its key.
func option(key string) (Option, bool) {
	for _, o := range Options {
		if o.Key == key {
			return o, true
		}
	}
	return Option{}, false
}

// isSection reports whether key holds other keys: kafka, kafka.tls, ...
func isSection(key string) bool {
	for _, o := range Options {
		if strings.HasPrefix(o.Key, key+".") {
			return true
		}
	}
	return false
}

// sectionHasSecret reports whether a secret option lies under the section.
func sectionHasSecret(key string) bool {
	for _, o := range Options {
		if o.Secret && strings.HasPrefix(o.Key, key+".") {
			return true
		}
	}
	return false
}

// fileKeys are what a file may name: every option and section.
func fileKeys() []string {
	seen := map[string]bool{}
	var keys []string
	for _, o := range Options {
		for i := strings.IndexByte(o.Key, '.'); i >= 0; i = nextDot(o.Key, i) {
			if s := o.Key[:i]; !seen[s] {
				seen[s] = true
				keys = append(keys, s)
			}
		}
		keys = append(keys, o.Key)
	}
	return keys
}

func nextDot(s string, i int) int {
	j := strings.IndexByte(s[i+1:], '.')
	if j < 0 {
		return -1
	}
	return i + 1 + j
}

// sectionExample names a section's first keys, for an error message.
func sectionExample(section string) string {
	var keys []string
	for _, o := range Options {
		if strings.HasPrefix(o.Key, section+".") {
			keys = append(keys, o.Key)
		}
	}
	if len(keys) > 2 {
		keys = append(keys[:2], "...")
	}
	return strings.Join(keys, ", ")
}

func sortedKeys(m map[string]any) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
