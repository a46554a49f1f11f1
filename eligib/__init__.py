"""eligib: clinical-trial eligibility criteria that a machine can check, prove and explain."""
