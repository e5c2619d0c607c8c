"""Console pages, one module per part of the product (SPEC 14)."""
