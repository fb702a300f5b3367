package config

import (
	"fmt"
	"strings"
	"time"
)

// Reference renders every option as a Markdown table: key, environment
// variable, default, and what it trades, as `webhookd config reference`
// prints it; ReferenceDoc wraps it into docs/configuration.md, which a test
// keeps equal to the code.
func Reference() string {
	var b strings.Builder
	b.WriteString("| key | environment variable | default | what it does / trades |\n")
	b.WriteString("|---|---|---|---|\n")
	for _, o := range Options {
		fmt.Fprintf(&b, "| `%s` | `%s` | %s | %s |\n", o.Key, o.Env(), formatDefault(o.Default), o.Help)
	}
	return b.String()
}

// ReferenceDoc is docs/configuration.md: the same options with their types.
func ReferenceDoc() string {
	var b strings.Builder
	b.WriteString("# webhookd configuration reference\n\n")
	b.WriteString("Generated from the code by `webhookd config reference --doc`; a test keeps this file equal to it.\n")
	b.WriteString("Precedence: defaults, then the YAML file given with `--config`, then `WEBHOOKD_*` environment variables\n")
	b.WriteString("(list values comma-separated). `webhookd config validate -f FILE` checks a file with the environment\n")
	b.WriteString("on top, `webhookd config validate` the defaults and the environment alone (a deployment configured only\n")
	b.WriteString("by environment); `webhookd config print` shows the effective configuration with secrets masked.\n\n")
	b.WriteString("Every problem is reported at once, each naming its key and variable:\n\n")
	b.WriteString("- a duration needs a unit, in the file as in the environment: `30s`, `500ms`, `5m`, `1h30m`\n")
	b.WriteString("  (`timeout: 30` is refused, not read as 30 nanoseconds; a bare `0` is zero);\n")
	b.WriteString("- a value of the wrong type is refused with the type expected; a string option given unquoted\n")
	b.WriteString("  digits in YAML is refused too (YAML reads `0123` as the number 83): quote it;\n")
	b.WriteString("- a key of the file that is no option is an error, with the nearest key when one is close;\n")
	b.WriteString("- a `WEBHOOKD_*` variable that names no option is ignored with a warning at startup (one per\n")
	b.WriteString("  variable, with the nearest option's variable), and makes `config validate` fail. Variables starting\n")
	b.WriteString("  `" + TestEnvPrefix + "` are the test suite's, never options, and are left alone.\n\n")
	b.WriteString("Options of type *secret* are masked (`****` and at most their last four characters) in the startup\n")
	b.WriteString("log line and in `config print`, and never quoted in an error.\n\n")
	b.WriteString("| key | type | default | environment variable | what it does / trades |\n")
	b.WriteString("|---|---|---|---|---|\n")
	for _, o := range Options {
		typ := typeName(o.Default)
		if o.Secret {
			typ += ", *secret*"
		}
		fmt.Fprintf(&b, "| `%s` | %s | %s | `%s` | %s |\n", o.Key, typ, formatDefault(o.Default), o.Env(), o.Help)
	}
	return b.String()
}

func typeName(v any) string {
	switch v.(type) {
	case string:
		return "string"
	case []string:
		return "list of strings"
	case time.Duration:
		return "duration"
	case bool:
		return "bool"
	case int, int64:
		return "integer"
	}
	return fmt.Sprintf("%T", v)
}

func formatDefault(v any) string {
	switch d := v.(type) {
	case string:
		if d == "" {
			return "(empty)"
		}
		return "`" + d + "`"
	case []string:
		if len(d) == 0 {
			return "(empty)"
		}
		return "`" + strings.Join(d, ",") + "`"
	case time.Duration:
		return "`" + d.String() + "`"
	default:
		return fmt.Sprintf("`%v`", d)
	}
}
