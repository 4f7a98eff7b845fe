"""User-facing errors: each one is printed as a single line and ends the command."""


class ApplianceError(Exception):
    """A problem the user can fix (bad file, bad config, bad model, unreachable source)."""


class ConfigError(ApplianceError):
    pass


class ModelError(ApplianceError):
    pass


class SourceError(ApplianceError):
    pass
