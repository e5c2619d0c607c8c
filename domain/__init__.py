"""starpromo's pure core: models, rules and services. Imports only the standard library and attrs."""
