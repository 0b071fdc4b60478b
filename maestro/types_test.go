package maestro

import "testing"

// Every package tells specs from statuses, and names event types in
// labels, by these; an unknown type is never mistaken for a known one and
// always gets the one bounded name.
func TestEventTypePredicates(t *testing.T) {
	for _, tc := range []struct {
		typ          string
		spec, status bool
		short        string
	}{
		{TypeSpecCreate, true, false, "spec.create_request"},
		{TypeSpecUpdate, true, false, "spec.update_request"},
		{TypeSpecDelete, true, false, "spec.delete_request"},
		{TypeSpecResyncRequest, true, false, "spec.resync_request"},
		{TypeSpecResyncResponse, true, false, "spec.resync_response"},
		{TypeStatusUpdate, false, true, "status.update_request"},
		{TypeStatusResyncRequest, false, true, "status.resync_request"},
		{TypeHeartbeat, false, false, OtherType},
		{"", false, false, OtherType},
		{"com.example.spec.create_request", false, false, OtherType},
		{DataType + ".spec.made_up", true, false, OtherType},
		{DataType + ".status.made_up", false, true, OtherType},
	} {
		if got := IsSpec(tc.typ); got != tc.spec {
			t.Errorf("IsSpec(%q) = %v", tc.typ, got)
		}
		if got := IsStatus(tc.typ); got != tc.status {
			t.Errorf("IsStatus(%q) = %v", tc.typ, got)
		}
		if got := ShortType(tc.typ); got != tc.short {
			t.Errorf("ShortType(%q) = %q, want %q", tc.typ, got, tc.short)
		}
	}
}
