// Package deploy holds what runs a sharded replay on Kubernetes: the
// image's Dockerfile and the manifests (an Indexed Job, its ConfigMap, the
// results volume, an example Secret, a kustomization). It has no code; its
// test decodes every manifest strictly into the Kubernetes API types and
// checks what a sharded run depends on.
package deploy
