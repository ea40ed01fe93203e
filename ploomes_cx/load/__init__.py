"""Load layer: CustomerX made to hold what staging says, with the crosswalk and ledger that remember
what was sent, so a re-run writes nothing and a killed run resumes."""
