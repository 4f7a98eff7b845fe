"""The SQL that differs between SQLite and PostgreSQL: reading the stored JSON documents.

A path is dot-separated keys ("dwell.histogram"). A JSON null and a missing key both read
as SQL NULL, except in `present`, which is true for a key holding null.
"""

from __future__ import annotations


class JsonSql:
    def __init__(self, postgres: bool):
        self.postgres = postgres
        self.document = "CAST(w.document AS jsonb)" if postgres else "w.document"

    def _path(self, path: str) -> str:
        keys = path.split(".")
        if self.postgres:
            return "'{" + ",".join(keys) + "}'"
        return "'$" + "".join(f'."{key}"' for key in keys) + "'"

    def each(self, value: str, path: str, alias: str) -> str:
        """A join on the entries (alias.key, alias.value) of the object at `path`."""
        if self.postgres:
            return f"CROSS JOIN LATERAL jsonb_each({value} #> {self._path(path)}) {alias}"
        return f"CROSS JOIN json_each({value}, {self._path(path)}) {alias}"

    def number(self, value: str, path: str, kind: str = "bigint") -> str:
        """The number at `path` (kind: bigint or double precision)."""
        if self.postgres:
            return f"CAST({value} #>> {self._path(path)} AS {kind})"
        return f"json_extract({value}, {self._path(path)})"

    def entry_number(self, alias: str) -> str:
        """The number that an entry of `each` holds."""
        return f"CAST({alias}.value #>> '{{}}' AS bigint)" if self.postgres else f"{alias}.value"

    def text(self, value: str, path: str) -> str:
        """A string as itself, an object as JSON text."""
        if self.postgres:
            return f"{value} #>> {self._path(path)}"
        return f"json_extract({value}, {self._path(path)})"

    def present(self, value: str, path: str) -> str:
        if self.postgres:
            return f"{value} #> {self._path(path)} IS NOT NULL"
        return f"json_type({value}, {self._path(path)}) IS NOT NULL"

    def filled(self, value: str, path: str) -> str:
        """Whether `path` holds an object with any key (a Python dict that is true)."""
        if self.postgres:
            at = f"{value} #> {self._path(path)}"
            return f"(jsonb_typeof({at}) = 'object' AND {at} <> '{{}}'::jsonb)"
        return (f"(json_type({value}, {self._path(path)}) = 'object' AND "
                f"json_extract({value}, {self._path(path)}) <> '{{}}')")
