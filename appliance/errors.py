"""User-facing errors: each one is printed as a single line and ends the command."""


class ApplianceError(Exception):
    """A problem the user can fix (bad file, bad config, bad model, unreachable source)."""


class ConfigError(ApplianceError):
    pass


class ModelError(ApplianceError):
    pass


class SourceError(ApplianceError):
    pass


def redact_url(url: str) -> str:
    """A URL fit for messages: a password inside it (user:pass@host) is never printed."""
    if "@" in url and "://" in url:
        scheme, rest = url.split("://", 1)
        return f"{scheme}://***@{rest.rsplit('@', 1)[1]}"
    return url
