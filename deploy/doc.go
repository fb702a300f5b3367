// Package deploy holds the deployment manifests; its test checks them against the code.
package deploy
