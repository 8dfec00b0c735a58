// The main package of pulumi-resource-kubernetes, as upstream's
// github.com/pulumi/pulumi-kubernetes/provider/v4/cmd/pulumi-resource-kubernetes/main.go has it
// (Apache-2.0, Copyright 2016-2018 Pulumi Corporation), in a module of our own: upstream embeds two
// files that its `go generate` (generate.go) writes beside main.go and that are therefore not in the
// module zip. tools/pulumi/build.sh copies this directory to a temporary one, runs upstream's
// generate.go there and builds from it, so the embedded schema is upstream's schema.json stamped
// with the release version, exactly as upstream's release build makes it.
package main

import (
	_ "embed"

	"github.com/pulumi/pulumi-kubernetes/provider/v4/pkg/provider"
	"github.com/pulumi/pulumi-kubernetes/provider/v4/pkg/version"
)

var providerName = "kubernetes"

//go:embed schema-embed.json
var pulumiSchema []byte

//go:embed terraform-mapping-embed.json
var terraformMapping []byte

func main() {
	provider.Serve(providerName, version.Version, pulumiSchema, terraformMapping)
}
