package conformance

import (
	"encoding/hex"
	"encoding/json"
	"fmt"
)

// hexBytes is a JSON string of hex digits, the encoding test-vectors.md uses
// for every binary field. JSON null decodes as nil.
type hexBytes []byte

// UnmarshalJSON decodes a hex string.
func (h *hexBytes) UnmarshalJSON(data []byte) error {
	if string(data) == "null" {
		*h = nil
		return nil
	}
	var s string
	if err := json.Unmarshal(data, &s); err != nil {
		return fmt.Errorf("conformance: want a hex string: %w", err)
	}
	b, err := hex.DecodeString(s)
	if err != nil {
		return fmt.Errorf("conformance: bad hex: %w", err)
	}
	*h = b
	return nil
}
