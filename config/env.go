package config

import (
	"sort"
	"strings"
)

// TestEnvPrefix starts the variables that point webhookd's test suite at
// real services (WEBHOOKD_TEST_KAFKA_BROKERS, ...). They are not options,
// and no option may start with test: UnknownEnv leaves them alone, so that a
// worker started from a shell or CI job that exports them does not warn.
const TestEnvPrefix = EnvPrefix + "_TEST_"

// UnknownVar is a WEBHOOKD_* environment variable that sets no option:
// webhookd ignores it, which is rarely what was meant.
type UnknownVar struct {
	Name string
	// Suggestion is the variable of the nearest option, "" when none is
	// close.
	Suggestion string
}

func (u UnknownVar) Error() string {
	s := u.Name + ": no option has this variable, so it is ignored"
	if u.Suggestion != "" {
		return s + "; did you mean " + u.Suggestion + " (" + envKey(u.Suggestion) + ")?"
	}
	return s + " (`webhookd config reference` lists the options)"
}

// UnknownEnv returns the variables of environ (as os.Environ writes them)
// that start with WEBHOOKD_, in any case, and name no option, sorted, with
// the nearest option's variable. Those starting with TestEnvPrefix are left
// out. The worker logs a warning for each; `config validate` fails.
func UnknownEnv(environ []string) []UnknownVar {
	var out []UnknownVar
	for _, kv := range environ {
		name, _, _ := strings.Cut(kv, "=")
		upper := strings.ToUpper(name)
		if !strings.HasPrefix(upper, EnvPrefix+"_") || strings.HasPrefix(upper, TestEnvPrefix) {
			continue
		}
		if envKey(name) != "" {
			continue
		}
		u := UnknownVar{Name: name}
		if envKey(upper) != "" {
			u.Suggestion = upper // names are case-sensitive
		} else if near, ok := Closest(upper, envNames()); ok {
			u.Suggestion = near
		}
		out = append(out, u)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// envKey is the key of the option whose variable is name, "" when none.
func envKey(name string) string {
	for _, o := range Options {
		if o.Env() == name {
			return o.Key
		}
	}
	return ""
}

func envNames() []string {
	names := make([]string, 0, len(Options))
	for _, o := range Options {
		names = append(names, o.Env())
	}
	return names
}
