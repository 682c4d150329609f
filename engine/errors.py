"""The one way a deploy step fails: it raises DeployError with a reason a person can act on.
Deploy.run catches it (and any bug) once and writes it, redacted, into the report."""


class DeployError(Exception):
    """A deploy stopped with a reason a person can act on."""
