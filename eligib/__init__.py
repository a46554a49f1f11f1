"""eligib: clinical-trial eligibility criteria that a machine can check, prove and explain."""

__version__ = "0.1.0"
