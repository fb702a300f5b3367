// Package docs holds webhookd's documentation pages. It has no code: its
// test keeps README.md and the pages true, by running the blocks marked
// "<!-- test: run -->" with a freshly built webhookd on the suite's Kafka
// and Redis, holding the partner guide's payloads ("<!-- test: payload -->")
// to what webhookd renders, checking every webhookd command and flag the
// pages show, and every link.
package docs
