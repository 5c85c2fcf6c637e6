// Package ent is the ent client generated from ./schema (go generate).
package ent

//go:generate go tool ent generate ./schema
