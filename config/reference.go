package config

import (
	"fmt"
	"strings"
	"time"
)

// Reference renders every option as a Markdown table: key, environment
// variable, default, and what it trades. The README embeds it; a test keeps
// the two equal, so the documentation cannot drift from the code.
func Reference() string {
	var b strings.Builder
	b.WriteString("| key | environment variable | default | what it does / trades |\n")
	b.WriteString("|---|---|---|---|\n")
	for _, o := range Options {
		fmt.Fprintf(&b, "| `%s` | `%s` | %s | %s |\n", o.Key, o.Env(), formatDefault(o.Default), o.Help)
	}
	return b.String()
}

func formatDefault(v any) string {
	switch d := v.(type) {
	case string:
		if d == "" {
			return "(empty)"
		}
		return "`" + d + "`"
	case []string:
		return "`" + strings.Join(d, ",") + "`"
	case time.Duration:
		return "`" + d.String() + "`"
	default:
		return fmt.Sprintf("`%v`", d)
	}
}
