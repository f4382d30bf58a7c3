"""Buy-till-you-die models of a store's customers: BG/NBD (how many purchases, and whether the
customer is still a customer) and Gamma-Gamma (the value of an order), fitted by maximum
likelihood over per-customer summaries, every formula vectorised over customers.

``summary``: the (frequency, recency, T, monetary value) summary and its conventions;
``bgnbd`` and ``gamma_gamma``: the two models; ``clv``: the lifetime value they give together.
"""
