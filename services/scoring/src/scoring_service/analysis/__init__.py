"""The analysis a store manager reads (DOMAIN.md §10): consumption structure, churn and the best
contact times, from scoring's purchase facts and the few side tables this package keeps."""
