package format

import "testing"

// Every outcome status prints a name that parses back to it; the numbers
// past the last one are invalid.
func TestOutcomeStatusNames(t *testing.T) {
	t.Parallel()
	for s := OutcomeSent; s <= OutcomeNotSent; s++ {
		back, err := ParseOutcomeStatus(s.String())
		if !s.Valid() || err != nil || back != s {
			t.Errorf("status %d (%s): parsed %d, %v", s, s, back, err)
		}
	}
	if OutcomeNotSent.String() != "not-sent" || OutcomeNotTriggered.String() != "not-triggered" {
		t.Errorf("status 7 is %q", OutcomeNotTriggered)
	}
	if OutcomeStatus(9).Valid() || OutcomeStatus(0).Valid() {
		t.Error("statuses 0 and 9 are valid")
	}
}
