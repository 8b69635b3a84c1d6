// Package cmd holds the rhizome command-line interface as a library: the
// command tree, flag parsing, help texts and each subcommand's behaviour.
// cmd/rhizome is its small main.
//
// A command is a [Command] value registered in the tree; later work adds
// commands by appending to it, never by growing main.
package cmd
