// Package msg has helpers for error messages.
package msg

import (
	"fmt"
	"unicode/utf8"
)

// Truncate shortens s to at most n bytes (on a rune boundary) for an error
// message, saying how long it was.
func Truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	cut := n
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return fmt.Sprintf("%s... (%d bytes)", s[:cut], len(s))
}
