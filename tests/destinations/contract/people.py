"""The people every connector is proven on: a SQLite source with the identifiers platforms
match on, written raw (mixed case, spaces, national phone numbers) so normalisation matters."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable
from dataclasses import dataclass, replace
from pathlib import Path

from tests.services import unique_name

#: Who is in the audience: `ltv >= AUDIENCE_MIN_LTV`.
AUDIENCE_MIN_LTV = 500
COLUMNS = ("id", "email", "phone", "first_name", "last_name", "country", "zip", "plan", "ltv")


@dataclass(frozen=True)
class Person:
    id: int
    email: str | None
    phone: str | None
    first_name: str
    last_name: str
    country: str
    zip: str
    plan: str
    ltv: float

    @property
    def member(self) -> bool:
        return self.ltv >= AUDIENCE_MIN_LTV

    def row(self) -> tuple[object, ...]:
        return tuple(getattr(self, name) for name in COLUMNS)

    def leaving(self) -> Person:
        return replace(self, ltv=0.0)

    def joining(self) -> Person:
        return replace(self, ltv=900.0)


def person(i: int, *, ltv: float | None = None) -> Person:
    """Person `i`: written the way real tables hold people (case, spaces, national numbers)."""
    return Person(
        id=i,
        email=f"  Person.{i}@Example.COM " if i % 3 == 0 else f"person{i}@example.com",
        # Valid North American numbers, in national format for every other person.
        phone=f"(650) 2{53 + i // 10000:02d}-{i % 10000:04d}"
        if i % 2
        else f"+1 650 2{53 + i // 10000:02d} {i % 10000:04d}",
        first_name=f" Ada{i} ",
        last_name="Lovelace",
        country="us",
        zip="94043",
        plan="pro" if i % 2 else "basic",
        ltv=1000.0 if ltv is None and i % 4 != 0 else (ltv if ltv is not None else 10.0),
    )


def people(count: int, start: int = 1) -> list[Person]:
    return [person(i) for i in range(start, start + count)]


def unusable(i: int) -> Person:
    """In the audience, but with no identifier a platform could match."""
    return replace(person(i, ltv=2000.0), email="not-an-email", phone="12")


def write_people(folder: Path, rows: Iterable[Person]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{unique_name('people')}.db"
    with sqlite3.connect(path) as connection:
        connection.execute(
            "CREATE TABLE people (id INTEGER PRIMARY KEY, email TEXT, phone TEXT, "
            "first_name TEXT, last_name TEXT, country TEXT, zip TEXT, plan TEXT, ltv REAL)"
        )
        connection.executemany(
            f"INSERT INTO people VALUES ({', '.join('?' * len(COLUMNS))})",
            [p.row() for p in rows],
        )
    connection.close()
    return path


def save(path: Path, rows: Iterable[Person]) -> None:
    """Insert or replace these people in the source file."""
    with sqlite3.connect(path) as connection:
        connection.executemany(
            f"INSERT OR REPLACE INTO people VALUES ({', '.join('?' * len(COLUMNS))})",
            [p.row() for p in rows],
        )
    connection.close()
