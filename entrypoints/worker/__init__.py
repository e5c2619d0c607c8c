"""The worker entrypoint: maintenance job functions (SPEC 6), alert delivery job, in-process timer."""
