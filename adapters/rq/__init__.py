"""Redis/RQ adapters: the background job queue and the periodic schedule."""
