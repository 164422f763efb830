"""Migration files: naming, up/down sections, and the files shipped with A2N."""

from __future__ import annotations

import pytest

from application.migrations import MigrationError, load_migrations, parse_migration


def test_a_file_splits_into_up_and_down() -> None:
    migration = parse_migration(
        "0007_add_thing.sql",
        "-- comment\n-- migrate:up\nCREATE TABLE t ();\n-- migrate:down\nDROP TABLE t;\n",
    )
    assert (migration.version, migration.name) == (7, "add_thing")
    assert migration.up == "CREATE TABLE t ();"
    assert migration.down == "DROP TABLE t;"
    assert len(migration.checksum) == 64


@pytest.mark.parametrize(
    ("filename", "text", "message"),
    [
        ("7_thing.sql", "-- migrate:up\nx\n-- migrate:down\n", "NNNN_lower_snake_name.sql"),
        ("0001_x.sql", "CREATE TABLE t ();", "needs a '-- migrate:up' section"),
        ("0001_x.sql", "-- migrate:down\nx\n-- migrate:up\ny", "needs a '-- migrate:up' section"),
        ("0001_x.sql", "-- migrate:up\n\n-- migrate:down\nx", "the up section is empty"),
    ],
)
def test_malformed_files_are_refused(filename: str, text: str, message: str) -> None:
    with pytest.raises(MigrationError, match=message):
        parse_migration(filename, text)


def test_shipped_migrations_are_numbered_without_gaps_and_all_revert() -> None:
    migrations = load_migrations()
    assert [m.version for m in migrations] == list(range(1, len(migrations) + 1))
    assert all(m.down for m in migrations)
